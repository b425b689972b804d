"""skvae's conv and dense VAEs against a plain PyTorch loop of the same networks.

Data: the fixed 8,000/2,000 split of the MNIST files in ``../shared/data/mnist``
(see ``../shared/data/README.md``), grey levels scaled to [0, 1], Bernoulli
likelihood (binary cross-entropy), as in the classic Keras VAE example.

For each architecture the script trains, in one process and one after the other:

- ``VAETransformer(architecture=...)`` with ``max_iter=EPOCHS`` (tol=0, so it never
  stops early), timed around ``fit``;
- a plain PyTorch implementation written here, independently of skvae: its own
  ``nn.Module`` s with the same layers, the same batch size, learning rate, Adam,
  epochs, shuffling and reparameterised single-sample ELBO.

It reports the time per epoch and its ratio (skvae / plain; goal <= 1.05), and the
held-out ELBO and importance-weighted log-likelihood of both models after the same
epochs, computed by the same evaluation code below with the same noise (goal:
skvae equal or better). Runs are repeated ``--repeats`` times in alternating order
and the fastest time of each is kept. Time is measured both as wall clock and as
the process's CPU time; the ratio uses CPU time, which stays meaningful when other
jobs share the CPU (wall clock then mostly measures the other jobs). ``--threads``
(default 1) sets torch's thread count for both sides, because several threads
spinning on a shared CPU inflate both measures unpredictably.

Run from the repository root::

    python benchmarks/bench_images.py --output benchmarks/results_images.md
"""

import argparse
import datetime
import math
import os
import platform
import sys
import time
import warnings

import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn
from torch.nn import functional as F

from skvae import VAETransformer
from skvae.datasets import load_mnist_split

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")

LATENT = 2
# Each architecture's default (batch_size="auto"): the conv network trains on 32.
BATCH_SIZE = {"dense": 128, "conv": 32}
LEARNING_RATE = 1e-3
DENSE_WIDTHS = (512, 256)
CONV_CHANNELS = (32, 64)
CONV_DENSE_WIDTH = 512


# ----------------------------------------------------------- plain PyTorch


class PlainConvEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(7 * 7 * 64, CONV_DENSE_WIDTH), nn.ReLU(),
            nn.Linear(CONV_DENSE_WIDTH, 2 * LATENT),
        )

    def forward(self, x):
        mean, log_var = self.net(x.view(-1, 1, 28, 28)).chunk(2, dim=1)
        return mean, log_var


class PlainConvDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(LATENT, 7 * 7 * 64), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 3, padding=1),
        )

    def forward(self, z):
        return self.net(z).view(z.shape[0], 784)


class PlainDenseEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
            nn.Linear(256, 2 * LATENT),
        )

    def forward(self, x):
        mean, log_var = self.net(x).chunk(2, dim=1)
        return mean, log_var


class PlainDenseDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(LATENT, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
            nn.Linear(512, 784),
        )

    def forward(self, z):
        return self.net(z)


def _clock():
    return time.perf_counter(), time.process_time()


def _elapsed(start):
    """(wall seconds, CPU seconds) since ``start``."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def plain_fit(architecture, X_train, epochs, seed):
    """The textbook loop; returns (encoder, decoder, seconds)."""
    torch.manual_seed(seed)
    if architecture == "conv":
        encoder, decoder = PlainConvEncoder(), PlainConvDecoder()
    else:
        encoder, decoder = PlainDenseEncoder(), PlainDenseDecoder()
    optimizer = torch.optim.Adam(
        list(encoder.parameters()) + list(decoder.parameters()), lr=LEARNING_RATE
    )
    start = _clock()
    X = torch.as_tensor(X_train)
    for _ in range(epochs):
        order = torch.randperm(len(X))
        batch_size = BATCH_SIZE[architecture]
        for i in range(0, len(X), batch_size):
            x = X[order[i : i + batch_size]]
            mean, log_var = encoder(x)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            logits = decoder(z)
            reconstruction = F.binary_cross_entropy_with_logits(
                logits, x, reduction="none"
            ).sum(1)
            kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1)
            loss = (reconstruction + kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return encoder.eval(), decoder.eval(), _elapsed(start)


def skvae_fit(architecture, X_train, epochs, seed):
    """The same network through VAETransformer; returns (encoder, decoder, seconds)."""
    vae = VAETransformer(
        n_components=LATENT,
        likelihood="bernoulli",
        architecture=architecture,
        hidden_layer_sizes=DENSE_WIDTHS,
        image_shape=(1, 28, 28),
        conv_channels=CONV_CHANNELS,
        conv_dense_width=CONV_DENSE_WIDTH,
        batch_size=BATCH_SIZE[architecture],
        learning_rate_init=LEARNING_RATE,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        device="cpu",
        random_state=seed,
    )
    start = _clock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X_train)
    seconds = _elapsed(start)
    assert vae.n_iter_ == epochs
    return vae.module_.encoder, vae.module_.decoder, seconds


# --------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(encoder, decoder, X, n_samples, seed, chunk=100):
    """Mean ELBO and importance-weighted bound (Burda et al.) per row, in nats.

    Both from the same ``n_samples`` posterior draws per row, with noise fixed by
    ``seed`` so the two implementations are scored on identical draws. The ELBO is
    the average of the single-draw bounds, the IW bound the log-mean-exp.
    """
    generator = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(X)
    noise = torch.randn((n_samples, len(X), LATENT), generator=generator)
    elbos, iws = [], []
    for i in range(0, len(X), chunk):
        x = X[i : i + chunk]
        mean, log_var = encoder(x)
        std = torch.exp(0.5 * log_var)
        eps = noise[:, i : i + chunk]
        z = mean + std * eps  # (K, n, d)
        logits = decoder(z.reshape(-1, LATENT)).reshape(n_samples, len(x), -1)
        log_px_z = -F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none"
        ).sum(-1)
        log_pz = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)
        log_qz = -0.5 * (eps**2 + log_var + math.log(2 * math.pi)).sum(-1)
        log_w = log_px_z + log_pz - log_qz
        elbos.append(log_w.mean(0))
        iws.append(torch.logsumexp(log_w, 0) - math.log(n_samples))
    return torch.cat(elbos).mean().item(), torch.cat(iws).mean().item()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-eval", type=int, default=2000,
                        help="held-out rows scored (of the 2,000 test images)")
    parser.add_argument("--n-importance", type=int, default=50)
    parser.add_argument("--architectures", default="dense,conv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--output", default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    X_train, X_test, _, _ = load_mnist_split(args.data_dir)
    X_train, X_test = X_train[: args.n_train], X_test[: args.n_eval]
    lines = [
        f"Date: {datetime.date.today().isoformat()}. Command: `python "
        f"benchmarks/bench_images.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, Python "
        f"{platform.python_version()}, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} CPU cores (shared with other jobs while this ran).",
        "",
        f"MNIST {len(X_train)} training / {len(X_test)} held-out images, Bernoulli "
        f"likelihood, {LATENT}-D latent, batch {BATCH_SIZE['dense']} (dense) and "
        f"{BATCH_SIZE['conv']} (conv), Adam lr "
        f"{LEARNING_RATE}, {args.epochs} epochs, {args.repeats} runs (seeds 0, 1, "
        "...) in alternating order: times are the fastest run, ELBO and IW "
        f"log-likelihood ({args.n_importance} draws, nats per image) the mean over "
        "the runs, from the same evaluation code and noise for both.",
        "",
        "| network | implementation | CPU s / epoch | ratio (CPU) | wall s / epoch "
        "| held-out ELBO | held-out IW log-lik. |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines[:-2]), flush=True)
    for architecture in args.architectures.split(","):
        seconds = {"plain": [], "skvae": []}
        wall = {"plain": [], "skvae": []}
        models = {}
        for repeat in range(args.repeats):
            order = ("plain", "skvae") if repeat % 2 == 0 else ("skvae", "plain")
            for name in order:
                fit = plain_fit if name == "plain" else skvae_fit
                encoder, decoder, (w, s) = fit(
                    architecture, X_train, args.epochs, seed=repeat
                )
                seconds[name].append(s / args.epochs)
                wall[name].append(w / args.epochs)
                models.setdefault(name, []).append((encoder, decoder))
                print(f"{architecture} {name} run {repeat}: {s / args.epochs:.2f} CPU s, "
                      f"{w / args.epochs:.2f} wall s per epoch", flush=True)
        best = {name: min(values) for name, values in seconds.items()}
        for name in ("plain", "skvae"):
            # Mean over the repeats (seeds 0, 1, ...) of each model's bounds.
            bounds = [
                evaluate(*model, X_test, args.n_importance, seed=123)
                for model in models[name]
            ]
            print(f"{architecture} {name} per-seed (ELBO, IW): "
                  + ", ".join(f"({e:.2f}, {i:.2f})" for e, i in bounds), flush=True)
            elbo, iw = np.mean(bounds, axis=0)
            ratio = "1" if name == "plain" else f"{best['skvae'] / best['plain']:.3f}"
            line = (
                f"| {architecture} | {name} | {best[name]:.2f} | {ratio} | "
                f"{min(wall[name]):.2f} | {elbo:.2f} | {iw:.2f} |"
            )
            lines.append(line)
            print(line, flush=True)
    if args.output:
        with open(args.output, "w") as file:
            file.write("# Image benchmark: skvae against plain PyTorch\n\n")
            file.write("\n".join(lines) + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
