"""Today's defaults against the new ones, side by side in one run, as users run them.

Each fit runs in a fresh process of a checkout of skvae: ``--before`` (the code
and defaults before the change) and ``--after`` (this checkout), alternated per
data set, with the environment a user has (no ``OMP_NUM_THREADS``, no
``SKVAE_THREADS``: each checkout picks its threads its own way). For each data
set it reports the fit's CPU seconds (all threads of the process) and wall
seconds, the time in units of a plain 5-epoch PyTorch loop on the same data
measured in the same run (``bench_fit_vs_plain.fit_plain``: 512-256 network,
Bernoulli, batch 128, Adam 1e-3; for the image sets only, whose data it models),
and the held-out quality: the IW log-likelihood (50 draws, ``score``) for the
transformer, the mean ROC-AUC for the detector.

Data: MNIST-8k (``skvae.datasets.load_mnist_split``, 16-D, Bernoulli), the
digits / 16 (8-D, Bernoulli, the README's quickstart), two real mixed tables of
``../shared/data/tabular`` (penguins, creditcard; 75 / 25 split, default
parameters), and ``VAEOutlierDetector`` at its defaults on the 12 ADBench sets
(one split each, as ``bench_adbench.py`` makes it).

    python benchmarks/bench_defaults.py --before /path/to/old/checkout --after . \\
        --output benchmarks/results_defaults.md
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
ADBENCH_SETS = ("18_Ionosphere", "23_mammography", "29_Pima", "2_annthyroid",
                "31_satimage-2", "35_SpamBase", "38_thyroid", "40_vowels", "42_WBC",
                "45_wine", "47_yeast", "6_cardio")

# Runs in a fresh process of a checkout; prints one JSON line.
_CHILD = r'''
import json, math, sys, time, warnings
import numpy as np
task = json.loads(sys.argv[1])
warnings.simplefilter("ignore")
def load(name):
    from sklearn.model_selection import train_test_split
    if name == "mnist":
        from skvae.datasets import load_mnist_split
        X_train, X_test, _, _ = load_mnist_split(task["shared"] + "/mnist")
        return X_train.astype(np.float64), X_test.astype(np.float64)
    if name == "digits":
        from sklearn.datasets import load_digits
        return train_test_split(load_digits().data / 16, random_state=0)
    import pandas as pd
    frame = pd.read_csv(task["shared"] + f"/tabular/{name}.csv")
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("category")
    return train_test_split(frame, test_size=0.25, random_state=0)
start_cpu, start = time.process_time(), time.perf_counter()
if task["kind"] == "plain":
    sys.path.insert(0, task["benchmarks"])
    from bench_fit_vs_plain import fit_plain
    X_train, X_test = load(task["data"])
    start_cpu, start = time.process_time(), time.perf_counter()
    fit_plain(X_train, task["params"]["n_components"], 5, 0)
    result = {}
elif task["kind"] == "transformer":
    from skvae import VAETransformer
    X_train, X_test = load(task["data"])
    epochs, scores, cpu, wall = [], [], 0.0, 0.0
    for seed in task["seeds"]:
        start_cpu, start = time.process_time(), time.perf_counter()
        vae = VAETransformer(random_state=seed, **task["params"]).fit(X_train)
        cpu += time.process_time() - start_cpu
        wall += time.perf_counter() - start
        epochs.append(vae.n_iter_)
        scores.append(float(vae.score(X_test)))
    n = len(task["seeds"])
    result = {"epochs": float(np.mean(epochs)), "quality": float(np.mean(scores)),
              "sd": float(np.std(scores)), "scores": scores, "cpu": cpu / n, "wall": wall / n}
else:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler
    from skvae import VAEOutlierDetector
    aucs, cpu, wall, epochs = [], 0.0, 0.0, []
    for name in task["sets"]:
        data = np.load(task["shared"] + f"/adbench/{name}.npz")
        X, y = data["X"].astype(np.float64), data["y"].astype(int)
        if X.shape[0] > 10_000:
            rows = np.random.RandomState(1).choice(X.shape[0], 10_000, replace=False)
            X, y = X[rows], y[rows]
        X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                      random_state=1)
        scaler = MinMaxScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        start_cpu, start = time.process_time(), time.perf_counter()
        detector = VAEOutlierDetector(random_state=1, **task["params"]).fit(X_train)
        cpu += time.process_time() - start_cpu
        wall += time.perf_counter() - start
        epochs.append(detector.n_iter_)
        aucs.append(roc_auc_score(y_test, -detector.score_samples(X_test)))
    result = {"epochs": float(np.mean(epochs)), "quality": float(np.mean(aucs)),
              "cpu": cpu, "wall": wall, "aucs": aucs}
if task["kind"] == "plain":
    result = {"cpu": time.process_time() - start_cpu, "wall": time.perf_counter() - start}
print(json.dumps(result))
'''

CASES = (
    # (data, estimator kind, parameters both sides share, seeds: one for MNIST,
    # whose held-out set of 2,000 rows is large; the mean of three elsewhere,
    # where one seed's score moves by 0.1-0.3 nats)
    ("mnist", "transformer", {"n_components": 16, "likelihood": "bernoulli"}, (0,)),
    ("digits", "transformer", {"n_components": 8, "likelihood": "bernoulli"}, (0, 1, 2)),
    ("penguins", "transformer", {}, (0, 1, 2)),
    ("creditcard", "transformer", {}, (0, 1, 2)),
    ("adbench (12 sets)", "detector", {}, (1,)),
)


def run(checkout, task, threads=None):
    """The child's JSON result for ``task`` in a fresh process of ``checkout``.

    ``threads``: None for the user's environment (no thread variable), or a count
    set through ``OMP_NUM_THREADS``, which both checkouts honour.
    """
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SKVAE_THREADS")}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    environment["PYTHONPATH"] = os.path.abspath(checkout)
    task = {**task, "shared": str(SHARED), "benchmarks": str(REPO / "benchmarks")}
    completed = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(task)],
                               cwd=checkout, env=environment, capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(completed.stderr[-3000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="checkout with today's defaults")
    parser.add_argument("--after", default=str(REPO))
    parser.add_argument("--only", nargs="*", help="data sets to run (default: all)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for both sides (default: unset, as a user runs)")
    parser.add_argument("--output")
    args = parser.parse_args()
    rows = []
    for index, (data, kind, params, seeds) in enumerate(CASES):
        if args.only and data.split()[0] not in args.only:
            continue
        task = {"data": data, "kind": kind, "params": params, "sets": ADBENCH_SETS,
                "seeds": seeds}
        plain = (run(args.after, {**task, "kind": "plain"}, args.threads)
                 if data in ("mnist", "digits") else None)
        order = ("before", "after") if index % 2 == 0 else ("after", "before")
        results = {side: run(getattr(args, side), task, args.threads) for side in order}
        rows.append((data, plain, results))
        print(data, json.dumps(plain), json.dumps(results), flush=True)
    text = markdown(rows, args)
    print(text)
    if args.output:
        Path(args.output).write_text(text)


def markdown(rows, args):
    import sklearn
    import torch

    lines = [
        "# Today's defaults against the new ones (issue 20)", "",
        f"Date: {datetime.date.today()}. Command: `python benchmarks/bench_defaults.py "
        f"--before <checkout of the previous defaults> --after ."
        + (f" --only {' '.join(args.only)}" if args.only else "")
        + (f" --threads {args.threads}" if args.threads is not None else "")
        + (f" --output {args.output}`" if args.output else "`"), "",
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; "
        + ("no OMP_NUM_THREADS or SKVAE_THREADS set (threads as a user gets them)"
           if args.threads is None else f"OMP_NUM_THREADS={args.threads} on both sides")
        + "; each fit in a fresh process.",
        "",
        "Transformer rows: the mean over the seeds listed (epochs, seconds per fit,"
        " held-out quality, with its standard deviation over seeds).", "",
        "| data | seeds | defaults | epochs | CPU s | wall s | CPU / plain 5-epoch loop | "
        "held-out quality | CPU ratio new / today | quality new - today |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    seeds_of = {case[0]: case[3] for case in CASES}
    for data, plain, results in rows:
        before, after = results["before"], results["after"]
        measure = "ROC-AUC" if data.startswith("adbench") else "IW log-lik (nats)"
        for side, result in (("today", before), ("new", after)):
            units = f"{result['cpu'] / plain['cpu']:.1f}" if plain else "-"
            ratio = f"{after['cpu'] / before['cpu']:.2f}" if side == "new" else ""
            delta = f"{after['quality'] - before['quality']:+.3f}" if side == "new" else ""
            spread = f" (sd {result['sd']:.3f})" if len(seeds_of[data]) > 1 and "sd" in result \
                else ""
            lines.append(
                f"| {data} | {len(seeds_of[data])} | {side} | {result['epochs']:.0f} | "
                f"{result['cpu']:.1f} | {result['wall']:.1f} | {units} | {measure} "
                f"{result['quality']:.3f}{spread} | {ratio} | {delta} |")
    lines.append("")
    plain_rows = [(data, plain) for data, plain, _ in rows if plain]
    if plain_rows:
        lines.append("Plain 5-epoch loop in this run: " + ", ".join(
            f"{data} {plain['cpu']:.1f} CPU s ({plain['wall']:.1f} wall s)"
            for data, plain in plain_rows) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
