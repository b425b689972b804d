"""Step-level micro-benchmark of the conv network: channels-last, oneDNN off, 256 dense units.

One torch thread; the default conv network (then 512 dense units) of a
VAETransformer fitted briefly on MNIST-8k, stepped with fused Adam at batch 32 on
1,024 rows, each variant 3 times in alternating order; prints the median CPU ms
per step. Run: ``PYTHONPATH=. python benchmarks/_conv_step_variants.py``
(issue 20, benchmarks/results_conv_cost.md).
"""
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skvae import VAETransformer
from skvae.datasets import load_mnist_split

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
warnings.simplefilter("ignore")
torch.set_num_threads(1)
Xtr, *_ = load_mnist_split(str(MNIST))
X = torch.as_tensor(Xtr[:1024], dtype=torch.float32)
def net(**kw):
    v = VAETransformer(architecture="conv", image_shape=(1,28,28), n_components=16, likelihood="bernoulli", max_iter=1, random_state=0, sampling_prior="standard", **kw).fit(Xtr[:64])
    return v.module_.train()
def run(variant, bs=32):
    m = net(conv_dense_width=256 if variant == "w256" else 512)
    if variant == "channels_last":
        m = m.to(memory_format=torch.channels_last)
        enc = m.encoder
        def fwd(x, enc=enc):
            images = x.reshape(x.shape[:-1] + enc.image_shape).contiguous(memory_format=torch.channels_last)
            f = enc.convolutions(images).flatten(start_dim=-3)
            mean, lv = enc.head(enc.body(f)).chunk(2, dim=-1)
            return mean, lv.clamp(-20, 20)
        enc.forward = fwd
        dec = m.decoder
        def dfwd(z, dec=dec):
            im = dec.body(z).reshape(z.shape[:-1] + dec.start_shape).contiguous(memory_format=torch.channels_last)
            return dec.deconvolutions(im).flatten(start_dim=-3)
        dec.forward = dfwd
    torch.backends.mkldnn.enabled = variant != "no_onednn"
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, fused=True); g = torch.Generator().manual_seed(0)
    def step(b):
        opt.zero_grad(set_to_none=True); m.loss(b, torch.randn(b.shape[0], 16, generator=g), 1.0).mean().backward(); opt.step()
    for i in range(0, 128, bs): step(X[i:i+bs])
    t = time.process_time()
    for i in range(0, 1024, bs): step(X[i:i+bs])
    torch.backends.mkldnn.enabled = True
    return 1e3 * (time.process_time() - t) / (1024 // bs)
variants = ["baseline", "channels_last", "no_onednn", "w256"]
res = {v: [] for v in variants}
for r in range(3):
    for v in (variants if r % 2 == 0 else variants[::-1]):
        res[v].append(run(v))
for v in variants: print(v, round(statistics.median(res[v]), 1), [round(x, 1) for x in res[v]])
