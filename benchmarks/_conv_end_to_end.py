"""End to end through skvae: the default conv VAE (after the linear-bottleneck fix) with one
parameter changed, 30 epochs on MNIST-8k, seed 0, one thread; prints CPU s, held-out IW
log-likelihood (score) and 10-NN accuracy of the 2-D codes.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/_conv_end_to_end.py conv_dense_width=64
"""
import sys, time, warnings, torch
warnings.simplefilter("ignore")
torch.set_num_threads(1)
from sklearn.neighbors import KNeighborsClassifier
from skvae import VAETransformer
from skvae.datasets import load_mnist_split
Xtr, Xte, ytr, yte = load_mnist_split(__import__("os").path.join(__import__("os").path.dirname(__file__), "..", "..", "shared", "data", "mnist"))
import ast
params = {key: ast.literal_eval(value) for key, value in (a.split("=", 1) for a in sys.argv[1:])}
vae = VAETransformer(architecture="conv", image_shape=(1, 28, 28), n_components=2, likelihood="bernoulli",
                     max_iter=30, tol=0, random_state=0, **params)
t = time.process_time(); vae.fit(Xtr); cpu = time.process_time() - t
Z, Zt = vae.transform(Xtr), vae.transform(Xte)
acc = KNeighborsClassifier(10).fit(Z, ytr).score(Zt, yte)
print(params, "cpu", round(cpu), "IW", round(vae.score(Xte), 2), "10NN", round(acc, 3), flush=True)
