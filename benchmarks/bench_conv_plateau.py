"""Why the conv VAE stays on the "average digit" plateau: one change at a time.

Trains a plain PyTorch copy (written here, independent of skvae) of skvae's
default conv network -- Conv(32, 3, stride 2) -> Conv(64, 3, stride 2) ->
Dense(16) -> 2-D latent; Dense(7*7*64) -> ConvT(64, stride 2) -> ConvT(32,
stride 2) -> ConvT(1, 3x3) Bernoulli logits, ReLU everywhere, log-variance
clamped to [-20, 20] as in ``skvae/_networks.py`` -- on the fixed MNIST-8k split
(8,000 training / 2,000 held-out images, ``skvae.datasets.load_mnist_split``),
batch 128, Adam, one reparameterised draw per image, for ``--steps`` optimiser
steps (default 1,890 = 30 epochs of 63 batches), and reports for each variant:

- held-out importance-weighted log-likelihood (50 draws, same noise for every
  variant) and ELBO, nats per image, and the held-out KL(q(z|x) || p(z));
- 10-NN accuracy: ``KNeighborsClassifier(10)`` fitted on the 2-D posterior means
  of the training images and their labels, scored on the held-out images;
- diagnostics: how many of the encoder's ``dense_width`` ReLU units are ever
  active on the held-out images, the latent dimensions in use
  (variance over images of the posterior mean > 0.01) and the training loss at
  10%, 50% and 100% of the steps;
- CPU seconds per epoch of 8,000 images (``time.process_time`` around the
  training loop only, one torch thread).

A variant is a ``+``-joined list of the changes below against the baseline (torch's
default initialisation, lr 1e-3, Dense(16), no warm-up, no normalisation, batch
128, contiguous memory): ``glorot`` (Keras initialisation: Glorot-uniform weights,
zero biases for every Conv/ConvT/Linear), ``lr3e-3``, ``width64``, ``width128``,
``biasmean`` (the last ConvT's bias -- one scalar, since it is per channel -- set
to the logit of the mean training pixel), ``pixelbias`` (a learned per-pixel bias
added to the logits, initialised to the logit of the mean training image),
``warmup`` (beta ramped linearly 0 -> 1 over the first 10% of the steps),
``bn`` (BatchNorm after every convolution but the last; evaluated in eval mode,
so deterministic), ``channels_last`` (memory format of images and conv weights),
``batch256`` (batch 256, for the same number of epochs, i.e. half the steps),
``linear16`` (no ReLU after the Dense(16) bottleneck), ``leaky`` / ``elu``
(LeakyReLU / ELU instead of ReLU everywhere).
For example ``glorot+width64``.

Run from the repository root, one torch thread::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_conv_plateau.py \\
        --steps 1890 --seeds 0,1 --output benchmarks/results_conv_plateau.md
"""

import argparse
import datetime
import math
import os
import platform
import sys
import time

import numpy as np
import sklearn
import torch
from sklearn.neighbors import KNeighborsClassifier
from torch import nn
from torch.nn import functional as F

from skvae.datasets import load_mnist_split

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
LATENT = 2
EPOCH_IMAGES = 8000

BASELINE = dict(
    init="torch", lr=1e-3, width=16, out_bias="default", warmup=0.0, norm=False,
    channels_last=False, batch=128, activation="relu", bottleneck_relu=True,
)
CHANGES = {
    "baseline": {},
    "glorot": dict(init="glorot"),
    "lr3e-3": dict(lr=3e-3),
    "lr2e-3": dict(lr=2e-3),
    "width64": dict(width=64),
    "width128": dict(width=128),
    "biasmean": dict(out_bias="scalar"),
    "pixelbias": dict(out_bias="pixel"),
    "warmup": dict(warmup=0.1),
    "bn": dict(norm=True),
    "channels_last": dict(channels_last=True),
    "batch256": dict(batch=256),
    "linear16": dict(bottleneck_relu=False),
    "leaky": dict(activation="leaky_relu"),
    "elu": dict(activation="elu"),
}
DEFAULT_VARIANTS = (
    "baseline,glorot,lr3e-3,width64,width128,biasmean,pixelbias,warmup,bn,"
    "channels_last,batch256"
)


def parse_variant(name):
    config = dict(BASELINE)
    for part in name.split("+"):
        if part not in CHANGES:
            raise SystemExit(f"unknown change {part!r}; known: {', '.join(CHANGES)}")
        config.update(CHANGES[part])
    return config


# ----------------------------------------------------------- the network


ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


class Encoder(nn.Module):
    def __init__(self, width, norm, activation="relu", bottleneck_relu=True):
        super().__init__()
        act = ACTIVATIONS[activation]
        layers, n_in = [], 1
        for channels in (32, 64):
            layers.append(nn.Conv2d(n_in, channels, 3, stride=2, padding=1))
            if norm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(act())
            n_in = channels
        self.convolutions = nn.Sequential(*layers)
        self.body = nn.Sequential(
            nn.Linear(7 * 7 * 64, width), act() if bottleneck_relu else nn.Identity()
        )
        self.head = nn.Linear(width, 2 * LATENT)

    def features(self, images):
        return self.body(self.convolutions(images).flatten(1))

    def forward(self, images):
        mean, log_var = self.head(self.features(images)).chunk(2, dim=1)
        return mean, log_var.clamp(-20.0, 20.0)


class Decoder(nn.Module):
    def __init__(self, norm, pixel_bias, activation="relu"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.body = nn.Sequential(nn.Linear(LATENT, 7 * 7 * 64), act())
        layers = []
        for n_in, n_out in ((64, 64), (64, 32)):
            layers.append(
                nn.ConvTranspose2d(n_in, n_out, 3, stride=2, padding=1, output_padding=1)
            )
            if norm:
                layers.append(nn.BatchNorm2d(n_out))
            layers.append(act())
        layers.append(nn.ConvTranspose2d(32, 1, 3, padding=1))
        self.deconvolutions = nn.Sequential(*layers)
        self.pixel_bias = nn.Parameter(torch.zeros(784)) if pixel_bias else None
        self.memory_format = torch.contiguous_format

    def forward(self, z):
        images = self.body(z).reshape(-1, 64, 7, 7).contiguous(
            memory_format=self.memory_format
        )
        logits = self.deconvolutions(images).reshape(len(z), 784)
        return logits if self.pixel_bias is None else logits + self.pixel_bias


def build(config, mean_image):
    """Encoder and decoder of ``config``, weights from torch's global generator."""
    encoder = Encoder(config["width"], config["norm"], config["activation"],
                      config["bottleneck_relu"])
    decoder = Decoder(config["norm"], config["out_bias"] == "pixel", config["activation"])
    if config["init"] == "glorot":
        for module in list(encoder.modules()) + list(decoder.modules()):
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
    last = decoder.deconvolutions[-1]
    p = np.clip(mean_image, 1e-3, 1 - 1e-3)
    with torch.no_grad():
        if config["out_bias"] == "scalar":
            last.bias.fill_(float(np.log(p.mean() / (1 - p.mean()))))
        elif config["out_bias"] == "pixel":
            decoder.pixel_bias.copy_(torch.as_tensor(np.log(p / (1 - p)), dtype=torch.float32))
    if config["channels_last"]:
        encoder.to(memory_format=torch.channels_last)
        decoder.to(memory_format=torch.channels_last)
        decoder.memory_format = torch.channels_last
    return encoder, decoder


def as_images(x, config):
    images = x.reshape(-1, 1, 28, 28)
    if config["channels_last"]:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def train(config, X, steps, seed):
    """Train ``steps`` batch-128-equivalent steps; returns the models and timings."""
    torch.manual_seed(seed)
    mean_image = X.mean(0).numpy()
    encoder, decoder = build(config, mean_image)
    parameters = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(parameters, lr=config["lr"])
    batch = config["batch"]
    # Same number of images (epochs) whatever the batch size.
    n_steps = round(steps * 128 / batch)
    warmup_steps = config["warmup"] * n_steps
    order_generator = torch.Generator().manual_seed(seed)
    encoder.train()
    decoder.train()
    losses, checkpoints, alive = [], {}, {}
    marks = {max(1, round(n_steps * f)): f for f in (0.02, 0.1, 0.5, 1.0)}
    probe = X[:500]  # bottleneck units alive on these, at init and at the marks
    alive[0.0] = count_alive(encoder, config, probe)
    step, images_seen = 0, 0
    start = time.process_time(), time.perf_counter()
    while step < n_steps:
        order = torch.randperm(len(X), generator=order_generator)
        for i in range(0, len(X), batch):
            x = X[order[i : i + batch]]
            mean, log_var = encoder(as_images(x, config))
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            logits = decoder(z)
            reconstruction = F.binary_cross_entropy_with_logits(
                logits, x, reduction="none"
            ).sum(1)
            kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1)
            beta = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
            loss = (reconstruction + beta * kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append((reconstruction + kl).mean().item())
            step += 1
            images_seen += len(x)
            if step in marks:  # mean negative ELBO over the last 63 steps
                checkpoints[marks[step]] = float(np.mean(losses[-63:]))
                alive[marks[step]] = count_alive(encoder, config, probe)
            if step >= n_steps:
                break
    cpu, wall = time.process_time() - start[0], time.perf_counter() - start[1]
    epochs = images_seen / EPOCH_IMAGES
    return encoder.eval(), decoder.eval(), cpu / epochs, wall / epochs, checkpoints, alive


@torch.no_grad()
def count_alive(encoder, config, X):
    """Bottleneck units non-zero for at least one row of ``X`` (in eval mode)."""
    training = encoder.training
    encoder.eval()  # BatchNorm: running statistics, and no update of them
    features = encoder.features(as_images(X, config))
    encoder.train(training)
    return int(((features > 0).any(0) | (features < 0).any(0)).sum())


@torch.no_grad()
def evaluate(encoder, decoder, config, X, n_samples, seed=123, chunk=100):
    """Mean ELBO, IW bound (``n_samples`` draws) and KL per held-out image, in nats."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((n_samples, len(X), LATENT), generator=generator)
    elbos, iws, kls = [], [], []
    for i in range(0, len(X), chunk):
        x = X[i : i + chunk]
        mean, log_var = encoder(as_images(x, config))
        eps = noise[:, i : i + chunk]
        z = mean + torch.exp(0.5 * log_var) * eps
        logits = decoder(z.reshape(-1, LATENT)).reshape(n_samples, len(x), -1)
        log_px_z = -F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none"
        ).sum(-1)
        log_pz = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)
        log_qz = -0.5 * (eps**2 + log_var + math.log(2 * math.pi)).sum(-1)
        log_w = log_px_z + log_pz - log_qz
        elbos.append(log_w.mean(0))
        iws.append(torch.logsumexp(log_w, 0) - math.log(n_samples))
        kls.append(0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1))
    return (torch.cat(elbos).mean().item(), torch.cat(iws).mean().item(),
            torch.cat(kls).mean().item())


@torch.no_grad()
def codes_and_units(encoder, config, X):
    means, active = [], None
    for i in range(0, len(X), 500):
        images = as_images(X[i : i + 500], config)
        features = encoder.features(images)
        on = (features > 0).any(0) | (features < 0).any(0)  # ELU/leaky/linear: non-zero
        active = on if active is None else active | on
        means.append(encoder.head(features).chunk(2, dim=1)[0])
    return torch.cat(means).numpy(), int(active.sum())


def run(name, X_train, y_train, X_test, y_test, steps, seed, n_importance):
    config = parse_variant(name)
    encoder, decoder, cpu, wall, checkpoints, alive = train(config, X_train, steps, seed)
    elbo, iw, kl = evaluate(encoder, decoder, config, X_test, n_importance)
    train_codes, _ = codes_and_units(encoder, config, X_train)
    test_codes, units = codes_and_units(encoder, config, X_test)
    knn = KNeighborsClassifier(10).fit(train_codes, y_train).score(test_codes, y_test)
    latent_in_use = int((test_codes.var(0) > 0.01).sum())
    return dict(
        variant=name, seed=seed, iw=iw, elbo=elbo, kl=kl, knn=knn, cpu=cpu, wall=wall,
        units=units, width=config["width"], latent=latent_in_use,
        curve=[checkpoints.get(f, float("nan")) for f in (0.1, 0.5, 1.0)],
        alive=[alive.get(f, -1) for f in (0.0, 0.02, 0.1, 0.5, 1.0)],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1890,
                        help="optimiser steps at batch 128 (63 per epoch of 8,000)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help="comma-separated variants, each a +-joined list of changes")
    parser.add_argument("--n-importance", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--output", default=None, help="write a Markdown table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    for name in variants:
        parse_variant(name)

    X_train, X_test, y_train, y_test = load_mnist_split(args.data_dir)
    X_train, X_test = torch.as_tensor(X_train), torch.as_tensor(X_test)
    command = "python benchmarks/bench_conv_plateau.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    header = [
        f"Date: {datetime.date.today().isoformat()}. Command: `{command}`",
        "",
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, Python "
        f"{platform.python_version()}, {torch.get_num_threads()} torch thread(s), "
        f"{os.cpu_count()} CPU cores (shared with other jobs).",
        "",
        f"MNIST {len(X_train)} training / {len(X_test)} held-out images, Bernoulli "
        f"likelihood, 2-D latent, Adam, {args.steps} steps at batch 128 "
        f"({args.steps * 128 / EPOCH_IMAGES:.1f} epochs; batch-256 variants run the "
        f"same epochs), seeds {args.seeds}. IW log-lik. with {args.n_importance} "
        "draws, nats per held-out image; values are the mean over seeds, with each "
        "seed's value in brackets when there are several. CPU s / epoch: mean over "
        "seeds, training loop only.",
        "",
        "| variant | held-out IW log-lik. | held-out ELBO | KL | 10-NN acc. "
        "| bottleneck units alive: init / 2% / 10% / end of training / held-out "
        "| latent dims used | train -ELBO at 10% / 50% / 100% | CPU s / epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(header[:-2]), flush=True)
    rows = []
    for name in variants:
        results = []
        for seed in seeds:
            result = run(name, X_train, y_train, X_test, y_test, args.steps, seed,
                         args.n_importance)
            results.append(result)
            print(f"  {name} seed {seed}: IW {result['iw']:.2f} ELBO {result['elbo']:.2f} "
                  f"KL {result['kl']:.2f} 10-NN {result['knn']:.3f} units "
                  f"{result['units']}/{result['width']} latent {result['latent']} curve "
                  + "/".join(f"{c:.1f}" for c in result["curve"])
                  + " alive@0/2/10/50/100% " + "/".join(map(str, result["alive"]))
                  + f" CPU {result['cpu']:.2f} s/epoch (wall {result['wall']:.2f})",
                  flush=True)

        def cell(key, fmt):
            values = [r[key] for r in results]
            text = format(np.mean(values), fmt)
            if len(values) > 1:
                text += " (" + ", ".join(format(v, fmt) for v in values) + ")"
            return text

        curve = np.mean([r["curve"] for r in results], axis=0)
        row = (
            f"| {name} | {cell('iw', '.1f')} | {cell('elbo', '.1f')} | "
            f"{cell('kl', '.2f')} | {cell('knn', '.3f')} | "
            + "; ".join(" / ".join(map(str, r["alive"][:3] + [r["alive"][4], r["units"]]))
                        for r in results)
            + f" of {results[0]['width']} | "
            f"{'/'.join(str(r['latent']) for r in results)} | "
            f"{curve[0]:.1f} / {curve[1]:.1f} / {curve[2]:.1f} | {cell('cpu', '.2f')} |"
        )
        rows.append(row)
        print(row, flush=True)
    if args.output:
        with open(args.output, "w") as file:
            file.write("# Conv VAE plateau: one change at a time\n\n")
            file.write("\n".join(header + rows) + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
