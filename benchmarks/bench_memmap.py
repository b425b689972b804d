"""Fitting from a numpy.memmap against the same data in memory: throughput and memory.

Issue 10: ``fit`` on data larger than memory trains on minibatches read from a
memmap, never copying it whole into a tensor. For memmaps of 10^6 and 10^7 rows x
50 float32 columns (written once to ``benchmarks/output/``), each run in a fresh
process fits one epoch of ``VAETransformer(hidden_layer_sizes=(64, 32),
n_components=4, batch_size=1024)`` with one torch thread and reports rows per
second and the peak anonymous memory (RssAnon, sampled every 20 ms) beyond what
the process held before ``fit``: the memmap's pages are file-backed, so they do
not count, and a copy of the data would. The in-memory reference loads the same
rows into RAM and fits through the usual path (one float32 tensor of all rows).
Goal: throughput within 10% of in-memory, memory flat in the row count.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_memmap.py --output benchmarks/results_memmap.md
"""

import argparse
import datetime
import json
import platform
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

N_FEATURES = 50
OUTPUT = Path(__file__).resolve().parent / "output"


def _rss_anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def data_file(n_rows):
    path = OUTPUT / f"memmap_{n_rows}x{N_FEATURES}.f32"
    if not path.exists() or path.stat().st_size != n_rows * N_FEATURES * 4:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, N_FEATURES))
        rng = np.random.default_rng(0)
        mixing = rng.standard_normal((8, N_FEATURES)).astype(np.float32)
        for start in range(0, n_rows, 1_000_000):
            stop = min(n_rows, start + 1_000_000)
            latent = rng.standard_normal((stop - start, 8), dtype=np.float32)
            X[start:stop] = np.tanh(latent @ mixing) + 0.1 * rng.standard_normal(
                (stop - start, N_FEATURES), dtype=np.float32)
        X.flush()
        del X
    return path


def measure(path, n_rows, mode):
    """In a child process: fit one epoch; rows per second and peak extra memory."""
    import torch

    import skvae._data
    from skvae import VAETransformer

    torch.set_num_threads(1)
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, N_FEATURES))
    if mode == "in memory":
        X = np.array(X)  # loaded whole, before the measurement starts
        skvae._data.STREAM_VALUES = float("inf")  # the usual path: one tensor of all rows
    vae = VAETransformer(hidden_layer_sizes=(64, 32), n_components=4, batch_size=1024,
                         max_iter=1, likelihood="gaussian", random_state=0, device="cpu")
    before, peak, done = _rss_anon(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_anon())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(X)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak[0] = max(peak[0], _rss_anon())
    return {"rows_per_second": n_rows / seconds, "seconds": seconds,
            "extra_mb": (peak[0] - before) / 2**20}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="benchmarks/output/results_memmap.md")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), int(args.child[1]), args.child[2])))
        return
    started = time.perf_counter()
    rows = []
    for n_rows in args.rows:
        path = data_file(n_rows)
        for mode in ("memmap", "in memory"):
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(path), str(n_rows), mode],
                capture_output=True, text=True, check=True,
            )
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append((n_rows, mode, figures))
            print(n_rows, mode, figures, flush=True)
    data_mb = {n: n * N_FEATURES * 4 / 2**20 for n in args.rows}
    lines = [
        "# Fitting from a memmap against the same data in memory",
        "",
        f"Produced by `PYTHONPATH=. python benchmarks/bench_memmap.py --output "
        f"{args.output}` on {datetime.date.today()} "
        f"({(time.perf_counter() - started) / 60:.0f} min), Python "
        f"{platform.python_version()}, one torch thread, {platform.machine()}.",
        "",
        "One epoch of `VAETransformer(hidden_layer_sizes=(64, 32), n_components=4, "
        "batch_size=1024, likelihood=\"gaussian\")` on float32 rows of "
        f"{N_FEATURES} columns. Extra memory: peak anonymous memory (RssAnon) during "
        "`fit` minus before it; the memmap's pages are file-backed and do not count, "
        "the in-memory run's data were loaded before.",
        "",
        "| rows | data (MB) | source | fit (s) | rows / s | extra memory (MB) | "
        "throughput vs in memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for n_rows, mode, figures in rows:
        reference = next(f for n, m, f in rows if n == n_rows and m == "in memory")
        lines.append(
            f"| {n_rows:,} | {data_mb[n_rows]:,.0f} | {mode} | {figures['seconds']:.1f} | "
            f"{figures['rows_per_second']:,.0f} | {figures['extra_mb']:,.0f} | "
            f"{figures['rows_per_second'] / reference['rows_per_second']:.3f} |"
        )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
