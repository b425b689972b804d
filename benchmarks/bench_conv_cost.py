"""The conv network's cost on the CPU against the dense network's (issue 20).

Parts, each printing Markdown tables:

- ``profile``: where a conv training step's CPU time goes (each phase timed
  on its own, and torch.profiler's operators of a whole ``fit`` epoch), at
  each batch size of ``--batch-sizes``, one torch thread.
- ``epoch-cost``: CPU s of the training epochs alone (a fit's fixed costs
  left out: torch's imports at the first optimizer, the mixture prior) for
  each network of ``--candidates``, the first the reference, fitted for
  ``--epochs`` epochs ``--repeats`` times in alternating order.
- ``candidates``: for each of ``--candidates`` and ``--seeds``, a cosine fit
  of ``--short-epochs`` epochs: its epoch CPU s and held-out IW log-likelihood.

The parts of the first measurements (their ``epochs`` part counts a fit's
fixed costs as its epoch's, and they build the estimator's current conv
defaults, 256 dense units and "auto" batches of 64 since the second pass):

- ``epochs``: CPU and wall seconds per training epoch of the default dense
  network (512, 256) and of the conv network with the decoder layout of files
  written before this benchmark (``full_resolution``) and the new default
  (``mirror``, and ``mirror`` with each ``--extra-channels``), side by side in
  one run, each fitted for ``--epochs`` epochs on
  MNIST-8k (Bernoulli, 16-D code) at each batch size of ``--batch-sizes``, on
  each torch thread count of ``--threads``; medians of ``--repeats`` runs in alternating order.
- ``quality``: held-out IW log-likelihood (``score``, 50 draws, 2,000 images)
  after each epoch count of ``--checkpoints`` (the dense and ``full_resolution``
  networks stop at ``--short-epochs``), trained one epoch per
  ``partial_fit`` call (batch size "auto"), one torch thread, with the fit's CPU
  seconds so far: the same epochs, and the same time budget, compared.
- ``score``: CPU and wall seconds of ``score_samples`` on 2,000 held-out images
  with 50 draws, for a conv model of each layout, with the conv network's
  importance chunks of before (16,384 decoder rows, the dense network's) and
  now (``CONV_CHUNK_DECODER_ROWS``), and how far the two chunkings' results
  differ.

The "before" decoder layout is reproduced by giving each new spec
``conv_decoder="full_resolution"``, the layout that old files load with::

    PYTHONPATH=. python benchmarks/bench_conv_cost.py --parts epochs,quality,score \\
        --output benchmarks/results_conv_cost.md
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import skvae._model as model_module
import skvae._training as training_module
from skvae import VAETransformer
from skvae._inference import CONV_CHUNK_DECODER_ROWS
from skvae._networks import NetworkSpec
from skvae.datasets import load_mnist_split

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
# "architecture [decoder layout [conv channels]]"; the first is the reference.
NETWORKS = ("dense", "conv full_resolution", "conv mirror")


@contextmanager
def decoder_layout(layout):
    """New conv specs get the decoder ``layout`` while the block runs."""
    original = NetworkSpec.from_params.__func__

    def from_params(cls, *args, **kwargs):
        spec = original(cls, *args, **kwargs)
        if spec.architecture == "conv" and layout is not None:
            spec = dataclasses.replace(spec, conv_decoder=layout)
        return spec

    NetworkSpec.from_params = classmethod(from_params)
    try:
        yield
    finally:
        NetworkSpec.from_params = classmethod(original)


@contextmanager
def conv_chunk_rows(decoder_rows):
    """Conv models decode ``decoder_rows`` rows per importance chunk in the block."""
    saved = model_module.CONV_CHUNK_DECODER_ROWS
    model_module.CONV_CHUNK_DECODER_ROWS = decoder_rows
    try:
        yield
    finally:
        model_module.CONV_CHUNK_DECODER_ROWS = saved


def estimator(network, seed, **params):
    architecture, *rest = network.split()
    extra = {"image_shape": (1, 28, 28)} if architecture == "conv" else {}
    if len(rest) == 2:
        extra["conv_channels"] = tuple(int(c) for c in rest[1].split("-"))
    return VAETransformer(
        architecture=architecture, n_components=16, likelihood="bernoulli", tol=0,
        random_state=seed, **extra, **params,
    )


def layout_of(network):
    return network.split()[1] if " " in network else None


def networks_of(args):
    networks = NETWORKS + tuple(f"conv mirror {c}" for c in args.extra_channels)
    return tuple(n for n in networks if not args.only or n in args.only)


def timed(function):
    """``(result, CPU s, wall s)`` of ``function()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def epochs_part(X_train, args):
    networks = networks_of(args)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch_size in args.batch_sizes:
            times = {network: [] for network in networks}
            for repeat in range(args.repeats):
                order = networks if repeat % 2 == 0 else networks[::-1]
                for network in order:
                    vae = estimator(network, repeat, max_iter=args.epochs,
                                    batch_size=batch_size)
                    with decoder_layout(layout_of(network)):
                        _, cpu, wall = timed(lambda vae=vae: vae.fit(X_train))
                    times[network].append((cpu / args.epochs, wall / args.epochs))
                    print(threads, batch_size, network, times[network][-1], flush=True)
            dense_cpu = statistics.median(c for c, _ in times["dense"])
            dense_wall = statistics.median(w for _, w in times["dense"])
            for network in networks:
                cpu = statistics.median(c for c, _ in times[network])
                wall = statistics.median(w for _, w in times[network])
                rows.append(
                    f"| {threads} | {batch_size} | {network} | {cpu:.2f} | "
                    f"{cpu / dense_cpu:.2f} | {wall:.2f} | {wall / dense_wall:.2f} |"
                )
    torch.set_num_threads(1)
    header = (
        "| torch threads | batch | network | CPU s / epoch | x dense (CPU) | "
        "wall s / epoch | x dense (wall) |\n|---|---|---|---|---|---|---|"
    )
    return header + "\n" + "\n".join(rows)


def quality_part(X_train, X_test, args):
    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        for network in networks_of(args):
            vae = estimator(network, seed)
            cpu_total = 0.0
            with decoder_layout(layout_of(network)):
                for epoch in range(1, max(args.checkpoints) + 1):
                    _, cpu, _ = timed(lambda vae=vae: vae.partial_fit(X_train))
                    cpu_total += cpu
                    last = epoch >= args.short_epochs and "mirror" not in network
                    if epoch in args.checkpoints or last:
                        score = vae.score(X_test)
                        rows.append(f"| {seed} | {network} | {epoch} | {cpu_total:.0f} | "
                                    f"{score:.2f} |")
                        print(rows[-1], flush=True)
                    if last:
                        break
    header = ("| seed | network | epochs | fit CPU s | held-out IW log-lik. (50 draws) |\n"
              "|---|---|---|---|---|")
    return header + "\n" + "\n".join(rows)


def score_part(X_train, X_test, args):
    torch.set_num_threads(1)
    rows = []
    for layout in ("full_resolution", "mirror"):
        vae = estimator(f"conv {layout}", 0, max_iter=1)
        with decoder_layout(layout):
            vae.fit(X_train)
        results = {}
        for decoder_rows in (16384, CONV_CHUNK_DECODER_ROWS):
            times = []
            for _ in range(args.score_repeats):
                with conv_chunk_rows(decoder_rows):
                    values, cpu, wall = timed(lambda vae=vae: vae.score_samples(X_test))
                times.append((cpu, wall))
            results[decoder_rows] = values
            cpu = statistics.median(c for c, _ in times)
            wall = statistics.median(w for _, w in times)
            rows.append(f"| {layout} | {decoder_rows} | {cpu:.1f} | {wall:.1f} | |")
            print(rows[-1], flush=True)
        difference = np.max(np.abs(results[16384] - results[CONV_CHUNK_DECODER_ROWS]))
        identical = np.array_equal(results[16384], results[CONV_CHUNK_DECODER_ROWS])
        rows[-1] = rows[-1][:-2] + (
            f"| {'bit-identical' if identical else f'max abs diff {difference:.2e} nats'} |"
        )
    header = ("| decoder layout | decoder rows per chunk | CPU s | wall s | "
              "against 16,384-row chunks |\n|---|---|---|---|---|")
    return header + "\n" + "\n".join(rows)


def _phase_step(module, optimizer, batch, noise, times):
    """One training step of ``module`` (a conv VAE), timing each phase's CPU s into ``times``."""
    clock = time.process_time

    def mark(name, start):
        now = clock()
        times[name] = times.get(name, 0.0) + now - start
        return now

    start = clock()
    optimizer.zero_grad(set_to_none=True)
    encoder, decoder = module.encoder, module.decoder
    images = batch.reshape(batch.shape[:-1] + encoder.image_shape)
    features = encoder.convolutions(images).flatten(start_dim=-3)
    start = mark("encoder convolutions", start)
    hidden = encoder.body(features)
    start = mark(f"encoder dense {features.shape[-1]} -> {hidden.shape[-1]}", start)
    mean, log_variance = encoder.head(hidden).chunk(2, dim=-1)
    z = mean + torch.exp(0.5 * log_variance) * noise
    start = mark("encoder head + sampling", start)
    grid = decoder.body(z).reshape(z.shape[:-1] + decoder.start_shape)
    start = mark("decoder dense", start)
    logits = decoder.deconvolutions(grid).flatten(start_dim=-3)
    start = mark("decoder transposed convolutions", start)
    reconstruction = module.likelihood.log_prob(batch, logits, None)
    kl = 0.5 * (mean**2 + log_variance.exp() - 1 - log_variance).sum(-1)
    loss = (kl - reconstruction).mean()
    start = mark("loss", start)
    loss.backward()
    start = mark("backward (all layers)", start)
    optimizer.step()
    mark("Adam step", start)


def epoch_cost_part(X_train, args):
    """CPU s of a training epoch alone, for each ``--candidates`` network, one thread.

    Each candidate is fitted for ``--epochs`` epochs (cosine schedule, its own
    batch size), ``--repeats`` times in alternating order so that the
    machine's load falls on all alike; the median of all their epochs, timed
    by :func:`epoch_clock`, and of the whole fits' CPU s.
    """
    torch.set_num_threads(1)
    epochs, fits = ({c: [] for c in args.candidates} for _ in range(2))
    for repeat in range(args.repeats):
        order = args.candidates if repeat % 2 == 0 else args.candidates[::-1]
        for candidate in order:
            vae = candidate_estimator(candidate, repeat, args.epochs)
            with epoch_clock(epochs[candidate]):
                _, cpu, _ = timed(lambda vae=vae: vae.fit(X_train))
            fits[candidate].append(cpu)
            print(candidate, epochs[candidate][-args.epochs:], cpu, flush=True)
    dense = statistics.median(epochs[args.candidates[0]])
    rows = []
    for candidate in args.candidates:
        per_epoch = statistics.median(epochs[candidate])
        runs = ", ".join(f"{e:.2f}" for e in epochs[candidate])
        rows.append(f"| {candidate} | {per_epoch:.2f} | {per_epoch / dense:.2f} | "
                    f"{statistics.median(fits[candidate]):.1f} | {runs} |")
    header = (f"| network | CPU s / epoch | x dense | CPU s of the {args.epochs}-epoch fit | "
              "every epoch (CPU s) |\n|---|---|---|---|---|")
    return header + "\n" + "\n".join(rows)


def profile_part(X_train, args):
    """Where one conv training epoch's CPU time goes, at ``--batch-sizes`` and one thread.

    Two views: each phase of a training step timed on its own (the forward
    pass layer by layer, the backward pass as a whole, Adam), and
    torch.profiler's self CPU time of the epoch's operators, the backward
    ones included, grouped by kind.
    """
    torch.set_num_threads(1)
    sections = []
    X = torch.as_tensor(X_train[: args.profile_rows], dtype=torch.float32)
    for batch_size in args.batch_sizes:
        vae = estimator("conv mirror", 0, max_iter=1, batch_size=batch_size)
        vae.fit(X_train[:256])  # builds the default network (weights are incidental)
        module = vae.module_.train()
        # Fused, as fit's own optimizer on the CPU (skvae._fitting._fused_adam).
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)
        generator = torch.Generator().manual_seed(0)
        times = {}
        steps = 0
        start = time.process_time()
        for first in range(0, X.shape[0] - batch_size + 1, batch_size):
            batch = X[first:first + batch_size]
            noise = torch.randn(batch_size, 16, generator=generator)
            _phase_step(module, optimizer, batch, noise, times)
            steps += 1
        total = time.process_time() - start
        rows = [f"| {name} | {1e3 * t / steps:.1f} | {100 * t / total:.0f}% |"
                for name, t in times.items()]
        rows.append(f"| **one step, all phases** | **{1e3 * total / steps:.1f}** | 100% |")
        sections.append(
            f"Batch {batch_size}, {steps} steps (phases timed one by one):\n\n"
            "| phase | CPU ms / step | share |\n|---|---|---|\n" + "\n".join(rows))
        # The whole of fit's epoch under torch.profiler: operators by self CPU time.
        vae = estimator("conv mirror", 0, max_iter=1, batch_size=batch_size)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            _, fit_cpu, _ = timed(lambda vae=vae: vae.fit(X_train[: args.profile_rows]))
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        profiled = sum(e.self_cpu_time_total for e in events)
        rows = [f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e6:.2f} | "
                f"{100 * e.self_cpu_time_total / profiled:.0f}% |"
                for e in events[: args.profile_top]]
        sections.append(
            f"Batch {batch_size}: `fit(max_iter=1)` on {args.profile_rows} rows under "
            f"torch.profiler ({fit_cpu:.1f} CPU s with the profiler's overhead), the "
            f"{args.profile_top} operators with the most self CPU time:\n\n"
            "| operator | calls | self CPU s | share |\n|---|---|---|---|\n" + "\n".join(rows))
    return "\n\n".join(sections)


@contextmanager
def epoch_clock(cpu_seconds):
    """Appends the CPU s of every training epoch run in the block to ``cpu_seconds``.

    Only the epochs: a fit's fixed costs (torch's first-optimizer imports, the
    mixture prior fitted after training, the first-use checks) are left out,
    which a one-epoch ``fit`` would count as its epoch's.
    """
    original = training_module.run_epoch

    def run_epoch(*args, **kwargs):
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            cpu_seconds.append(time.process_time() - start)

    training_module.run_epoch = run_epoch
    try:
        yield
    finally:
        training_module.run_epoch = original


def candidate_estimator(candidate, seed, epochs):
    """The estimator of a ``--candidates`` entry.

    "dense" or "conv C1-C2 [wWIDTH] [bBATCH] [lrRATE]", either followed by
    "eEPOCHS" or "eauto" to replace ``epochs``; what is not given is the
    estimator's default.
    """
    architecture, *rest = candidate.split()
    params = {"max_iter": epochs}
    if architecture == "conv":
        params["conv_channels"] = tuple(int(c) for c in rest.pop(0).split("-"))
    names = {"w": "conv_dense_width", "b": "batch_size", "lr": "learning_rate_init",
             "e": "max_iter"}
    for item in rest:
        key = "lr" if item.startswith("lr") else item[0]
        value = item[len(key):]
        params[names[key]] = (float(value) if key == "lr" else
                              value if value == "auto" else int(value))
    return estimator(architecture, seed, **params)


def candidates_part(X_train, X_test, args):
    """Epoch CPU s and held-out likelihood of each ``--candidates`` default, cosine fits."""
    torch.set_num_threads(1)
    rows, epoch_cpu = [], {}
    for seed in args.seeds:
        for candidate in args.candidates:
            vae = candidate_estimator(candidate, seed, args.short_epochs)
            epochs = []
            with epoch_clock(epochs):
                _, fit_cpu, _ = timed(lambda vae=vae: vae.fit(X_train))
            score, score_cpu, _ = timed(lambda vae=vae: vae.score(X_test))
            per_epoch = statistics.median(epochs)
            epoch_cpu.setdefault(candidate, []).append(per_epoch)
            rows.append((seed, candidate, vae.batch_size if vae.batch_size != "auto" else
                         vae._AUTO_BATCH_SIZE[vae.architecture], vae.n_iter_, per_epoch,
                         fit_cpu, score, score_cpu))
            print(rows[-1], flush=True)
    dense = statistics.median(epoch_cpu[args.candidates[0]])
    lines = [
        f"| {seed} | {candidate} | {batch} | {n_iter} | {per_epoch:.2f} | "
        f"{per_epoch / dense:.2f} | {fit_cpu:.0f} | {score:.2f} | {score_cpu:.0f} |"
        for seed, candidate, batch, n_iter, per_epoch, fit_cpu, score, score_cpu in rows
    ]
    header = (
        "| seed | network | batch | epochs | CPU s / epoch | x dense | fit CPU s | "
        "held-out IW log-lik. (50 draws) | score CPU s |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    return header + "\n" + "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="epochs,quality,score")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="torch threads of the epochs part")
    parser.add_argument("--score-repeats", type=int, default=1)
    parser.add_argument("--extra-channels", default="",
                        help="conv_channels of more mirror networks, e.g. 16-32,32-32")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--only", default="",
                        help='networks to run, e.g. "conv mirror" (default: all)')
    parser.add_argument("--checkpoints", default="15,30,60")
    parser.add_argument("--short-epochs", type=int, default=30,
                        help="epochs of the dense and full_resolution networks in quality")
    parser.add_argument(
        "--candidates", default="dense;conv 32-64 w512 b32 lr1e-3;conv 32-64 w256 b64 lr3e-3",
        help='";"-separated networks of the candidates part, the reference first: '
             '"dense" or "conv C1-C2 wWIDTH bBATCH [lrRATE]"')
    parser.add_argument("--profile-rows", type=int, default=2000)
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--data-dir", default=str(MNIST))
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.threads = [int(t) for t in args.threads.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.extra_channels = [c for c in args.extra_channels.split(",") if c]
    args.only = [n for n in args.only.split(",") if n]
    args.candidates = [c.strip() for c in args.candidates.split(";") if c.strip()]
    args.checkpoints = [int(c) for c in args.checkpoints.split(",")]
    warnings.simplefilter("ignore")
    X_train, X_test, _, _ = load_mnist_split(args.data_dir)
    sections = [(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, load average "
                 f"at start {os.getloadavg()[0]:.1f}")]
    for part in args.parts.split(","):
        if part == "epochs":
            sections.append("## Epoch cost\n\n" + epochs_part(X_train, args))
        elif part == "quality":
            sections.append("## Held-out likelihood\n\n" + quality_part(X_train, X_test, args))
        elif part == "epoch-cost":
            sections.append("## Epoch cost, epochs alone\n\n" + epoch_cost_part(X_train, args))
        elif part == "candidates":
            sections.append("## Candidate defaults\n\n" + candidates_part(X_train, X_test, args))
        elif part == "profile":
            sections.append("## Profile of a conv epoch\n\n" + profile_part(X_train, args))
        elif part == "score":
            sections.append("## score_samples cost\n\n" + score_part(X_train, X_test, args))
        sections.append(f"(load average after {part}: {os.getloadavg()[0]:.1f})")
    text = "\n\n".join(sections) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
