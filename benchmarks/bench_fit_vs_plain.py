"""Fit time and held-out ELBO: skvae's VAETransformer against a hand-written PyTorch loop.

Both sides train the same network (dense encoder 512-256 -> 2 * n_components, mirrored
decoder, Bernoulli logits), with Adam (lr 1e-3), the same batch size and number of
epochs, on the same data and with the same torch thread count. The plain side is the
loop a competent PyTorch user writes by hand: its own ``nn.Module``, ``torch.randperm``
minibatches, BCE-with-logits summed over pixels plus the analytic KL, mean over the
batch.

Timing: wall-clock of ``VAETransformer.fit`` (validation, conversion and all) against
the plain loop including its numpy -> tensor conversion and model construction. The
two sides alternate (the order flips every repeat) so a busy, shared CPU slows both
alike; each repeat uses a different seed and gives one time ratio skvae / plain; the
table reports the medians. Besides wall-clock time it records the process's CPU time
(``time.process_time``): with one torch thread (``--threads 1``, the default) that is
the work the fit did, which other jobs on a shared machine disturb much less.

Quality: both fitted models are scored on the held-out rows by one function,
:func:`heldout_bounds`, given each model's encoder (x -> mean, log-variance) and
decoder (z -> logits) and the same noise: the single-sample ELBO
``log p(x | z) - KL(q(z | x) || N(0, I))`` averaged over 10 noise draws per row, and
the importance-weighted bound with K = 50 (Burda et al., 2016). skvae's own
``score`` (n_importance_samples=1 and 50) is reported as a cross-check.

Data: scikit-learn's digits / 16 (75 / 25 split, random_state=0) and the MNIST
images in ``../shared/data/mnist`` with the fixed 8,000 / 2,000 split, grey levels in
[0, 1], Bernoulli likelihood on grey levels on both sides.

Run from the repository root::

    python benchmarks/bench_fit_vs_plain.py --output benchmarks/results_fit_vs_plain.md
    python benchmarks/bench_fit_vs_plain.py --quick          # smoke run, seconds
"""

import argparse
import datetime
import gc
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

import skvae
from skvae import VAETransformer
from skvae.datasets import load_mnist_split

HIDDEN = (512, 256)
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
LOG_2PI = math.log(2.0 * math.pi)
REPO = Path(__file__).resolve().parent.parent
DEFAULT_MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"


# --------------------------------------------------------------------------- data


def load_data(name, data_dir):
    """(X_train, X_test) as float32 in [0, 1], and a note on where they came from."""
    if name == "digits":
        X, _ = load_digits(return_X_y=True)
        X_train, X_test = train_test_split(X / 16.0, random_state=0)
        return X_train.astype(np.float32), X_test.astype(np.float32), "sklearn load_digits / 16"
    X_train, X_test, _, _ = load_mnist_split(data_dir)
    return X_train, X_test, "skvae.datasets.load_mnist_split (fixed 8,000 / 2,000 split)"


# ----------------------------------------------------------------- plain PyTorch


class PlainVAE(nn.Module):
    """The hand-written model: 512-256 MLP encoder, mirrored decoder, logits out."""

    def __init__(self, n_features, n_components):
        super().__init__()
        self.encoder_net = nn.Sequential(
            nn.Linear(n_features, HIDDEN[0]), nn.ReLU(),
            nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
            nn.Linear(HIDDEN[1], 2 * n_components),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(n_components, HIDDEN[1]), nn.ReLU(),
            nn.Linear(HIDDEN[1], HIDDEN[0]), nn.ReLU(),
            nn.Linear(HIDDEN[0], n_features),
        )  # fmt: skip

    def encode(self, x):
        mean, log_variance = self.encoder_net(x).chunk(2, dim=-1)
        return mean, log_variance

    def forward(self, x):
        mean, log_variance = self.encode(x)
        z = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
        logits = self.decoder(z)
        reconstruction = F.binary_cross_entropy_with_logits(
            logits, x, reduction="none"
        ).sum(dim=1)
        kl = 0.5 * (log_variance.exp() + mean**2 - 1.0 - log_variance).sum(dim=1)
        return (reconstruction + kl).mean()


def fit_plain(X_train, n_components, epochs, seed):
    """The plain training loop; returns the fitted module and the last epoch's loss."""
    torch.manual_seed(seed)
    X = torch.from_numpy(np.ascontiguousarray(X_train, dtype=np.float32))
    model = PlainVAE(X.shape[1], n_components)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    n_samples = X.shape[0]
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n_samples)
        total = 0.0
        for start in range(0, n_samples, BATCH_SIZE):
            batch = X[order[start : start + BATCH_SIZE]]
            loss = model(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.shape[0]
    model.eval()
    return model, total / n_samples


def fit_skvae(X_train, n_components, epochs, seed):
    vae = VAETransformer(
        n_components=n_components,
        hidden_layer_sizes=HIDDEN,
        likelihood="bernoulli",
        batch_size=BATCH_SIZE,
        learning_rate="constant",  # the plain loop's constant rate
        learning_rate_init=LEARNING_RATE,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,  # never stop early: exactly `epochs` epochs
        device="cpu",
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X_train)
    if vae.n_iter_ != epochs:
        raise RuntimeError(f"skvae ran {vae.n_iter_} epochs, expected {epochs}")
    if vae.likelihood_ != "bernoulli":
        raise RuntimeError(f"skvae chose likelihood {vae.likelihood_!r}")
    return vae


# ------------------------------------------------------------------- evaluation


@torch.no_grad()
def heldout_bounds(encode, decode, X, *, n_elbo_draws=10, n_iw=50, seed=2024, chunk=200):
    """Mean held-out ELBO and IW-K bound per row, in nats, for any encoder / decoder.

    ``encode(x) -> (mean, log_variance)``, ``decode(z) -> Bernoulli logits``. The
    noise comes from a generator seeded with ``seed``, so two models given the same
    ``X`` see exactly the same standard-normal draws.
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    elbo_total = iw_total = 0.0
    for start in range(0, X.shape[0], chunk):
        x = X[start : start + chunk]
        mean, log_variance = encode(x)
        n, d = mean.shape
        kl = 0.5 * (log_variance.exp() + mean**2 - 1.0 - log_variance).sum(-1)
        std = torch.exp(0.5 * log_variance)

        def log_px(eps):  # eps: (S, n, d) -> log p(x | z) of shape (S, n), and z
            z = mean + std * eps
            logits = decode(z.reshape(-1, d)).reshape(eps.shape[0], n, -1)
            bce = F.binary_cross_entropy_with_logits(
                logits, x.expand_as(logits), reduction="none"
            )
            return -bce.sum(-1), z

        eps = torch.randn((n_elbo_draws, n, d), generator=generator)
        rec, _ = log_px(eps)
        elbo_total += (rec - kl).mean(0).sum().item()

        eps = torch.randn((n_iw, n, d), generator=generator)
        rec, z = log_px(eps)
        log_pz = -0.5 * (z**2 + LOG_2PI).sum(-1)
        log_qz = -0.5 * (LOG_2PI + log_variance + eps**2).sum(-1)
        iw = torch.logsumexp(rec + log_pz - log_qz, dim=0) - math.log(n_iw)
        iw_total += iw.sum().item()
    return elbo_total / X.shape[0], iw_total / X.shape[0]


def evaluate_skvae(vae, X_test):
    module = vae.module_
    elbo, iw = heldout_bounds(module.encoder, module.decoder, X_test)
    own_elbo = vae.set_params(n_importance_samples=1).score(X_test)
    own_iw = vae.set_params(n_importance_samples=50).score(X_test)
    return {"elbo": elbo, "iw50": iw, "own_elbo": own_elbo, "own_iw50": own_iw}


def evaluate_plain(model, X_test):
    elbo, iw = heldout_bounds(model.encode, model.decoder, X_test)
    return {"elbo": elbo, "iw50": iw}


# ------------------------------------------------------------------------ runs


def timed(function, *args):
    """Result, wall-clock seconds and CPU seconds of this process (all its threads)."""
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - start, time.process_time() - start_cpu


def run_dataset(name, X_train, X_test, n_components, epochs, seeds):
    rows = []
    for i, seed in enumerate(seeds):
        sides = ["skvae", "plain"] if i % 2 == 0 else ["plain", "skvae"]
        row = {"seed": seed, "order": "/".join(sides)}
        for side in sides:
            if side == "skvae":
                vae, row["skvae_s"], row["skvae_cpu"] = timed(
                    fit_skvae, X_train, n_components, epochs, seed
                )
                row["skvae"] = evaluate_skvae(vae, X_test)
            else:
                (model, _), row["plain_s"], row["plain_cpu"] = timed(
                    fit_plain, X_train, n_components, epochs, seed
                )
                row["plain"] = evaluate_plain(model, X_test)
        row["ratio"] = row["skvae_s"] / row["plain_s"]
        row["cpu_ratio"] = row["skvae_cpu"] / row["plain_cpu"]
        rows.append(row)
        print(
            f"  {name} seed {seed} ({row['order']}): skvae {row['skvae_s']:.2f} s, "
            f"plain {row['plain_s']:.2f} s, ratio {row['ratio']:.3f} (CPU "
            f"{row['skvae_cpu']:.2f} / {row['plain_cpu']:.2f} s = {row['cpu_ratio']:.3f}); ELBO skvae "
            f"{row['skvae']['elbo']:.2f} plain {row['plain']['elbo']:.2f}",
            flush=True,
        )
    return rows


def summarise(rows):
    med = statistics.median
    return {
        "skvae_s": med(r["skvae_s"] for r in rows),
        "plain_s": med(r["plain_s"] for r in rows),
        "ratio": med(r["ratio"] for r in rows),
        "ratio_min": min(r["ratio"] for r in rows),
        "ratio_max": max(r["ratio"] for r in rows),
        "skvae_cpu": med(r["skvae_cpu"] for r in rows),
        "plain_cpu": med(r["plain_cpu"] for r in rows),
        "cpu_ratio": med(r["cpu_ratio"] for r in rows),
        "cpu_ratio_min": min(r["cpu_ratio"] for r in rows),
        "cpu_ratio_max": max(r["cpu_ratio"] for r in rows),
        **{
            f"{side}_{key}": statistics.mean(r[side][key] for r in rows)
            for side in ("skvae", "plain")
            for key in ("elbo", "iw50")
        },
        "skvae_own_elbo": statistics.mean(r["skvae"]["own_elbo"] for r in rows),
        "skvae_own_iw50": statistics.mean(r["skvae"]["own_iw50"] for r in rows),
        "elbo_diff": [r["skvae"]["elbo"] - r["plain"]["elbo"] for r in rows],
    }


def markdown(results, args, command):
    lines = []
    add = lines.append
    add("| data set | n train / test | latent | epochs | skvae fit, wall (s) "
        "| plain fit, wall (s) | wall ratio skvae / plain (min-max) "
        "| CPU ratio skvae / plain (min-max) | held-out ELBO skvae "
        "| held-out ELBO plain | IW-50 skvae | IW-50 plain |")
    add("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["summary"]
        add(
            f"| {r['name']} | {r['n_train']} / {r['n_test']} | {r['latent']} | "
            f"{r['epochs']} | {s['skvae_s']:.2f} | {s['plain_s']:.2f} | "
            f"**{s['ratio']:.3f}** ({s['ratio_min']:.3f}-{s['ratio_max']:.3f}) | "
            f"**{s['cpu_ratio']:.3f}** ({s['cpu_ratio_min']:.3f}-{s['cpu_ratio_max']:.3f}) | "
            f"{s['skvae_elbo']:.2f} | {s['plain_elbo']:.2f} | "
            f"{s['skvae_iw50']:.2f} | {s['plain_iw50']:.2f} |"
        )
    add("")
    add(f"Times: medians over {len(results[0]['rows'])} repeats (seeds "
        f"{', '.join(str(r['seed']) for r in results[0]['rows'])}); ratios: medians of "
        "the per-repeat ratios. CPU: `time.process_time()` of the fit, i.e. the CPU "
        "seconds the process used (one torch thread), which other jobs on a shared "
        "machine disturb much less than wall-clock time. ELBO and IW-50: nats per "
        "held-out row, means over the repeats, computed by one function on both "
        "models with the same noise.")
    add("")
    add("skvae's own `score` as a cross-check (mean over repeats): "
        + "; ".join(
            f"{r['name']}: n_importance_samples=1 {r['summary']['skvae_own_elbo']:.2f}, "
            f"=50 {r['summary']['skvae_own_iw50']:.2f}"
            for r in results
        ) + ".")
    add("")
    add("Per repeat:")
    add("")
    add("| data set | seed | order | skvae wall (s) | plain wall (s) | wall ratio "
        "| skvae CPU (s) | plain CPU (s) | CPU ratio | ELBO skvae | ELBO plain |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for row in r["rows"]:
            add(
                f"| {r['name']} | {row['seed']} | {row['order']} | {row['skvae_s']:.2f} | "
                f"{row['plain_s']:.2f} | {row['ratio']:.3f} | {row['skvae_cpu']:.2f} | "
                f"{row['plain_cpu']:.2f} | {row['cpu_ratio']:.3f} | {row['skvae']['elbo']:.2f} | "
                f"{row['plain']['elbo']:.2f} |"
            )
    return "\n".join(lines)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(args):
    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}, numpy {np.__version__}, skvae {skvae.__version__}; "
        f"{_cpu_model()} ({platform.machine()}), {os.cpu_count()} cores visible, "
        f"torch.set_num_threads({args.threads})"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 1 repeat, subsampled MNIST")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    parser.add_argument("--digits-epochs", type=int, default=50)
    parser.add_argument("--mnist-epochs", type=int, default=10)
    parser.add_argument("--data-dir", default=str(DEFAULT_MNIST_DIR))
    parser.add_argument("--datasets", default="digits,mnist")
    parser.add_argument("--output", help="write the markdown results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python " + " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]])

    settings = {"digits": (8, args.digits_epochs), "mnist": (16, args.mnist_epochs)}
    repeats = 1 if args.quick else args.repeats
    seeds = list(range(repeats))
    print(environment(args), flush=True)

    # Warm-up, untimed: first calls into torch (allocator, kernels, Adam) cost extra.
    X_warm = load_data("digits", args.data_dir)[0][:256]
    fit_skvae(X_warm, 2, 1, 0)
    fit_plain(X_warm, 2, 1, 0)

    results = []
    for name in args.datasets.split(","):
        latent, epochs = settings[name]
        X_train, X_test, source = load_data(name, args.data_dir)
        if args.quick:
            epochs = 2
            X_train, X_test = X_train[:1000], X_test[:500]
        print(f"{name}: {X_train.shape[0]} train / {X_test.shape[0]} test rows, "
              f"{X_train.shape[1]} features, latent {latent}, {epochs} epochs ({source})",
              flush=True)
        rows = run_dataset(name, X_train, X_test, latent, epochs, seeds)
        results.append({
            "name": name, "n_train": X_train.shape[0], "n_test": X_test.shape[0],
            "latent": latent, "epochs": epochs, "source": source, "rows": rows,
            "summary": summarise(rows),
        })

    table = markdown(results, args, command)
    print()
    print(table)
    if args.output:
        date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        text = "\n".join([
            "# skvae fit vs a plain PyTorch loop",
            "",
            "Produced by `benchmarks/bench_fit_vs_plain.py` (see the docstring for what is "
            "measured and how). Goal (issue 2): skvae's fit time at most 1.05x the plain "
            "loop, with an equal or better held-out ELBO at the same number of epochs.",
            "",
            f"- Command (repository root): `PYTHONPATH=. {command}`",
            f"- Date: {date}",
            f"- Machine: {environment(args)}.",
            "- The 2 CPU cores were shared with other jobs during the run (load "
            f"average {os.getloadavg()[0]:.1f} at the end): absolute times are noisy, which "
            "is why the two sides alternate, the ratios are the numbers to read, and "
            "the CPU-time ratio is the steadier of the two.",
            "- Data: " + "; ".join(f"{r['name']}: {r['source']}" for r in results) + ".",
            "- Both sides: dense 512-256 encoder, mirrored decoder, Bernoulli logits, "
            f"Adam lr {LEARNING_RATE}, batch {BATCH_SIZE}, same epochs; skvae with "
            "tol=0 and n_iter_no_change=epochs+1 so it runs exactly the epochs asked "
            "(checked: n_iter_ == epochs).",
            "",
            table,
            "",
        ])
        Path(args.output).write_text(text)
        print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
