"""Conv encoder/decoder variants through skvae, 30 epochs on MNIST-8k (issue 14).

Replaces the dense layers of skvae's ConvEncoder / ConvDecoder after they are built
(so the initialisation differs from a network built that way directly), fits
``VAETransformer(architecture="conv", n_components=2, likelihood="bernoulli",
max_iter=30, tol=0)`` with the given extra parameters, and prints CPU s, the
held-out IW log-likelihood (``score``, 50 draws) and the 10-NN accuracy of the 2-D
codes. The figures in ``results_conv_plateau.md`` were run at commit 6e4f273, where
the unpatched encoder had the linear 16-unit layer::

    SEED=0 OMP_NUM_THREADS=1 python benchmarks/_conv_variants.py enc_relu256 batch_size=32

Variants (names may be combined): enc_relu256, enc_leaky256, enc_relu512, enc_mlp
(512-256 ReLU), dec_hidden (a 256-unit layer before the decoder's dense layer).
"""
import sys, os, time, warnings, ast, torch
from torch import nn
warnings.simplefilter("ignore"); torch.set_num_threads(1)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import skvae._networks as N
variant = sys.argv[1]
params = {k: ast.literal_eval(v) for k, v in (a.split("=", 1) for a in sys.argv[2:])}
Enc, Dec = N.ConvEncoder, N.ConvDecoder

class Enc2(Enc):
    def __init__(self, image_shape, conv_channels, dense_width, n_components, activation):
        super().__init__(image_shape, conv_channels, dense_width, n_components, activation)
        n_flat = self.body[0].in_features
        if "enc_relu256" in variant:
            self.body = nn.Sequential(nn.Linear(n_flat, 256), nn.ReLU())
            self.head = nn.Linear(256, 2 * n_components)
        if "enc_leaky256" in variant:
            self.body = nn.Sequential(nn.Linear(n_flat, 256), nn.LeakyReLU(0.2))
            self.head = nn.Linear(256, 2 * n_components)
        if "enc_mlp" in variant:
            self.body = nn.Sequential(nn.Linear(n_flat, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
            self.head = nn.Linear(256, 2 * n_components)
        if "enc_relu512" in variant:
            self.body = nn.Sequential(nn.Linear(n_flat, 512), nn.ReLU())
            self.head = nn.Linear(512, 2 * n_components)
        if "enc_lin_relu" in variant:  # linear 16 then relu layer 256
            self.body = nn.Sequential(nn.Linear(n_flat, 64), nn.Linear(64, 256), nn.ReLU())
            self.head = nn.Linear(256, 2 * n_components)

class Dec2(Dec):
    def __init__(self, n_components, conv_channels, image_shape, n_output_channels, activation):
        super().__init__(n_components, conv_channels, image_shape, n_output_channels, activation)
        out = self.body[0].out_features
        if "dec_hidden" in variant:
            self.body = nn.Sequential(nn.Linear(n_components, 256), nn.ReLU(), nn.Linear(256, out), nn.ReLU())
        if "dec_hidden16" in variant:
            self.body = nn.Sequential(nn.Linear(n_components, 16), nn.ReLU(), nn.Linear(16, out), nn.ReLU())

N.ConvEncoder, N.ConvDecoder = Enc2, Dec2
from sklearn.neighbors import KNeighborsClassifier
from skvae import VAETransformer
from skvae.datasets import load_mnist_split
Xtr, Xte, ytr, yte = load_mnist_split(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "mnist"))
vae = VAETransformer(architecture="conv", image_shape=(1, 28, 28), n_components=2, likelihood="bernoulli",
                     max_iter=30, tol=0, random_state=int(os.environ.get("SEED", 0)), **params)
t = time.process_time(); vae.fit(Xtr); cpu = time.process_time() - t
Z, Zt = vae.transform(Xtr), vae.transform(Xte)
acc = KNeighborsClassifier(10).fit(Z, ytr).score(Zt, yte)
print(variant, params, "seed", os.environ.get("SEED", 0), "cpu", round(cpu), "IW", round(vae.score(Xte), 2), "10NN", round(acc, 3), flush=True)
