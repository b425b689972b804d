"""The conv network's cost on the CPU against the dense network's (issue 20).

Three parts, each printing a Markdown table:

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
    parser.add_argument("--data-dir", default=str(MNIST))
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.threads = [int(t) for t in args.threads.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.extra_channels = [c for c in args.extra_channels.split(",") if c]
    args.only = [n for n in args.only.split(",") if n]
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
        elif part == "score":
            sections.append("## score_samples cost\n\n" + score_part(X_train, X_test, args))
        sections.append(f"(load average after {part}: {os.getloadavg()[0]:.1f})")
    text = "\n\n".join(sections) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
