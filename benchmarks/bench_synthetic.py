"""Synthetic rows of real mixed tables: VAETransformer.sample against CTGAN's TVAE.

Data from ``../shared/data/tabular``: ``diamonds`` (rows shuffled with
``RandomState(0)``: 10,000 for training, the next 5,000 held out) and ``creditcard``
(``train_test_split(test_size=0.3, random_state=0)``). Each model is fitted on the
training rows and generates as many rows as are held out; the synthetic rows are
compared with the held-out real rows:

* **C2ST**: a ``HistGradientBoostingClassifier(categorical_features="from_dtype")``
  told to separate held-out real rows from synthetic rows (equal counts), ROC-AUC
  of 5-fold stratified cross-validation (0.5 = indistinguishable; lower is better);
* **column fidelity**: per column 1 - Kolmogorov-Smirnov statistic (numeric) or
  1 - total variation distance (categorical), averaged over columns (higher is better);
* **pairwise**: mean absolute difference between the Pearson correlation matrices
  of the numeric columns (upper triangle), and between the Cramér's V matrices of the
  categorical columns (lower is better);
* SDMetrics' ``QualityReport`` score (column shapes, column pair trends), computed
  in the TVAE environment where ``sdmetrics`` is installed, when it is.

Models: skvae ``VAETransformer`` at default parameters, skvae with ``n_components=8``
(``--max-iter`` epochs, default 200, the default's), and CTGAN's ``TVAE(epochs=300)``
(its default), run in its own environment (``--tvae-python``) by
``benchmarks/_tvae_runner.py``. Fit times are wall-clock seconds of ``fit`` alone,
one torch thread on both sides::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_synthetic.py --threads 1
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_synthetic.py --quick
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from scipy.stats import chi2_contingency, ks_2samp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

import skvae
from skvae import VAETransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import source_fingerprint, stamp_report  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = HERE.parent.parent / "shared" / "data" / "tabular"
DEFAULT_OUTPUT = HERE / "results_synthetic.md"
QUICK_OUTPUT = HERE / "output" / "results_synthetic_quick.md"
DEFAULT_TVAE_PYTHON = Path("/work/ctgan-venv/bin/python")
RUNNER = HERE / "_tvae_runner.py"
SEEDS = (0,)


def load(name, data_dir, quick):
    frame = pd.read_csv(Path(data_dir) / f"{name}.csv")
    if name == "diamonds":
        order = np.random.RandomState(0).permutation(len(frame))
        n_train, n_test = (1000, 500) if quick else (10_000, 5_000)
        train = frame.iloc[order[:n_train]]
        test = frame.iloc[order[n_train:n_train + n_test]]
    else:
        train, test = train_test_split(frame, test_size=0.3, random_state=0)
        if quick:
            train, test = train.iloc[:300], test.iloc[:150]
    return train.reset_index(drop=True), test.reset_index(drop=True)


def categorical_columns(frame):
    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)]


# --------------------------------------------------------------------- metrics


def c2st(real, synth, categorical, seed):
    both = pd.concat([real, synth], ignore_index=True)
    for c in both.columns:
        if c in categorical:
            both[c] = both[c].astype(str).astype("category")
        else:
            both[c] = pd.to_numeric(both[c], errors="coerce").astype(float)
    labels = np.r_[np.zeros(len(real)), np.ones(len(synth))]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype",
                                           random_state=seed)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(model, both, labels, cv=folds, scoring="roc_auc").mean())


def column_fidelity(real, synth, categorical):
    scores = []
    for c in real.columns:
        if c in categorical:
            p = real[c].astype(str).value_counts(normalize=True)
            q = synth[c].astype(str).value_counts(normalize=True)
            p, q = p.align(q, fill_value=0.0)
            scores.append(1.0 - 0.5 * float(np.abs(p - q).sum()))
        else:
            scores.append(1.0 - ks_2samp(real[c].astype(float),
                                         synth[c].astype(float)).statistic)
    return float(np.mean(scores))


def cramers_v(a, b):
    table = pd.crosstab(a.astype(str), b.astype(str)).to_numpy()
    if min(table.shape) < 2:
        return 0.0
    chi2 = chi2_contingency(table, correction=False)[0]
    return float(np.sqrt(chi2 / table.sum() / (min(table.shape) - 1)))


def pairwise(real, synth, categorical):
    numeric = [c for c in real.columns if c not in categorical]
    upper = np.triu_indices(len(numeric), k=1)
    corr_real = real[numeric].astype(float).corr().to_numpy()[upper]
    corr_synth = synth[numeric].astype(float).corr().to_numpy()[upper]
    corr = float(np.mean(np.abs(np.nan_to_num(corr_real) - np.nan_to_num(corr_synth))))
    pairs = [(a, b) for i, a in enumerate(categorical) for b in categorical[i + 1:]]
    if not pairs:
        return corr, float("nan")
    v = [abs(cramers_v(real[a], real[b]) - cramers_v(synth[a], synth[b])) for a, b in pairs]
    return corr, float(np.mean(v))


def sdmetrics_scores(python, real_csv, synth_csv, categorical, workdir):
    info = Path(workdir) / "quality.json"
    result = subprocess.run(
        [str(python), str(RUNNER), "--quality", str(real_csv), str(synth_csv),
         "--discrete", *categorical, "--info", str(info)],
        capture_output=True, text=True, env=_one_thread_env(),
    )
    if result.returncode != 0:
        return None, result.stderr.strip().splitlines()[-1:]
    return json.loads(info.read_text()), None


# ---------------------------------------------------------------------- models


def _one_thread_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def fit_skvae(params, train, n, seed):
    model = VAETransformer(**params, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train)
    seconds = time.perf_counter() - start
    samples = model.sample(n, random_state=seed)
    return samples, seconds, {"n_iter_": int(model.n_iter_)}


def fit_tvae(python, train, categorical, n, seed, epochs, workdir):
    workdir = Path(workdir)
    train_csv, samples_csv, info_json = (workdir / "train.csv", workdir / "tvae.csv",
                                         workdir / "tvae.json")
    train.to_csv(train_csv, index=False)
    command = [str(python), str(RUNNER), "--train", str(train_csv), "--discrete",
               *categorical, "--epochs", str(epochs), "--seed", str(seed),
               "--n-samples", str(n), "--samples", str(samples_csv),
               "--info", str(info_json), "--threads", "1"]
    subprocess.run(command, check=True, env=_one_thread_env())
    info = json.loads(info_json.read_text())
    samples = pd.read_csv(samples_csv)
    return samples[list(train.columns)], info["fit_seconds"], info


def evaluate(test, samples, categorical, seed, python, workdir, with_sdmetrics):
    samples = samples.reset_index(drop=True)
    fidelity = column_fidelity(test, samples, categorical)
    corr, cramer = pairwise(test, samples, categorical)
    row = {"c2st": c2st(test, samples, categorical, seed), "fidelity": fidelity,
           "corr": corr, "cramer": cramer}
    if with_sdmetrics:
        real_csv, synth_csv = Path(workdir) / "real.csv", Path(workdir) / "synth.csv"
        test.to_csv(real_csv, index=False)
        samples.to_csv(synth_csv, index=False)
        scores, error = sdmetrics_scores(python, real_csv, synth_csv, categorical, workdir)
        row["sdmetrics"] = scores
        row["sdmetrics_error"] = error
    return row


# ---------------------------------------------------------------------- report


def markdown(results, configs, meta, command, elapsed):
    lines = [
        "# Synthetic rows: skvae VAETransformer.sample against CTGAN's TVAE",
        "",
        f"Produced by `{command}` on {datetime.date.today().isoformat()} "
        f"({elapsed / 60:.0f} min): skvae {skvae.__version__}, scikit-learn "
        f"{sklearn.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), pandas {pd.__version__}, Python "
        f"{platform.python_version()}, {platform.machine()}; TVAE from ctgan "
        f"{meta.get('ctgan', '?')} in its own environment (torch {meta.get('torch', '?')}, "
        f"pandas {meta.get('pandas', '?')}, {meta.get('threads', '?')} thread); "
        f"SDMetrics {meta.get('sdmetrics', 'not installed')}.",
        "",
        "Data: diamonds (10,000 training rows, 5,000 held out, drawn with "
        "`RandomState(0)`), creditcard (`train_test_split(test_size=0.3, "
        "random_state=0)`: 923 / 396). Each model generates as many rows as are held "
        "out. **C2ST**: 5-fold cross-validated ROC-AUC of a "
        "`HistGradientBoostingClassifier` separating held-out real from synthetic rows "
        "(0.5 is ideal; lower is better). **Fidelity**: mean over columns of 1 - KS "
        "statistic (numeric) or 1 - total variation distance (categorical), higher "
        "is better. **Corr diff** / **Cramér diff**: mean absolute difference of the "
        "numeric Pearson correlations / categorical Cramér's V between real and "
        "synthetic, lower is better. **SDM**: SDMetrics QualityReport overall score "
        "(mean of Column Shapes and Column Pair Trends), higher is better. Fit: "
        "wall-clock seconds of `fit` alone on a shared machine. Figures are means "
        f"over seeds {', '.join(map(str, meta['seeds']))}.",
        "",
        "Models: " + "; ".join(f"**{name}** = {desc}" for name, desc in configs.items())
        + ".",
        "",
        "| data set | model | fit s | epochs run | C2ST AUC | fidelity | corr diff | "
        "Cramér diff | SDM | SDM shapes | SDM pairs | fit time / TVAE | C2ST vs TVAE |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for data, by_model in results.items():
        tvae = by_model["TVAE"]
        for name, r in by_model.items():
            sdm = r.get("sdm") or {}
            lines.append(
                f"| {data} | {name} | {r['seconds']:.1f} | {r['epochs']} | "
                f"{r['c2st']:.3f} | {r['fidelity']:.3f} | {r['corr']:.3f} | "
                f"{r['cramer']:.3f} | "
                + (f"{sdm['overall']:.3f} | {sdm['Column Shapes']:.3f} | "
                   f"{sdm['Column Pair Trends']:.3f}" if sdm else "n/a | n/a | n/a")
                + f" | {r['seconds'] / tvae['seconds']:.2f} | "
                f"{r['c2st'] - tvae['c2st']:+.3f} |"
            )
        for name, r in by_model.items():
            if name == "TVAE":
                continue
            as_good = (r["c2st"] <= tvae["c2st"] and r["fidelity"] >= tvae["fidelity"])
            fast = r["seconds"] <= 0.5 * tvae["seconds"]
            verdicts.append(
                f"- {data}, {name}: C2ST {r['c2st']:.3f} vs TVAE {tvae['c2st']:.3f}, "
                f"fidelity {r['fidelity']:.3f} vs {tvae['fidelity']:.3f} "
                f"({'as good or better on both' if as_good else 'worse on at least one'}); "
                f"fit {r['seconds']:.1f} s vs {tvae['seconds']:.1f} s = "
                f"{r['seconds'] / tvae['seconds']:.2f} of TVAE's "
                f"({'at most half' if fast else 'more than half'}) — "
                f"**{'met' if as_good and fast else 'not met'}**."
            )
    lines += [
        "",
        "## Goal",
        "",
        "skvae at least as good as TVAE (here: C2ST AUC no higher and column fidelity "
        "no lower) in at most half its fit time:",
        "",
        *verdicts,
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--quick", action="store_true",
                        help="1,000 / 300 training rows, few epochs (smoke test)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tvae-python", type=Path, default=DEFAULT_TVAE_PYTHON)
    parser.add_argument("--tvae-epochs", type=int, default=300)
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--datasets", nargs="+", default=["diamonds", "creditcard"])
    args = parser.parse_args(argv)
    if not args.tvae_python.is_file():
        sys.exit(f"No TVAE environment at {args.tvae_python}: see the docstring.")
    if args.threads:
        torch.set_num_threads(args.threads)
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    tvae_epochs = 5 if args.quick else args.tvae_epochs
    max_iter = 5 if args.quick else args.max_iter
    skvae_default = {"max_iter": 5} if args.quick else {}
    chosen = {"n_components": args.n_components, "max_iter": max_iter}
    configs = {
        "skvae default": f"`VAETransformer({', '.join(f'{k}={v}' for k, v in skvae_default.items())})`"
                         " (n_components=2, hidden (512, 256), max_iter=200, batch 128, "
                         "no early stopping)",
        f"skvae nc={args.n_components}": f"`VAETransformer(n_components={args.n_components}, "
                                         f"max_iter={max_iter})`, all else default",
        "TVAE": f"`TVAE(epochs={tvae_epochs})`, all else default (batch 500, "
                "compress/decompress dims (128, 128), embedding 128)",
    }
    with_sdmetrics = subprocess.run(
        [str(args.tvae_python), "-c", "import sdmetrics"], capture_output=True
    ).returncode == 0

    fingerprint = source_fingerprint()
    start = time.perf_counter()
    results, meta = {}, {"seeds": args.seeds}
    for data in args.datasets:
        train, test = load(data, args.data_dir, args.quick)
        categorical = categorical_columns(train)
        runs = {name: [] for name in configs}
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(dir="/tmp") as workdir:
                for name in configs:
                    if name == "TVAE":
                        samples, seconds, info = fit_tvae(
                            args.tvae_python, train, categorical, len(test), seed,
                            tvae_epochs, workdir)
                        meta.update({k: info[k] for k in ("ctgan", "torch", "pandas",
                                                          "threads")})
                        epochs = tvae_epochs
                    else:
                        params = skvae_default if name == "skvae default" else chosen
                        samples, seconds, info = fit_skvae(params, train, len(test), seed)
                        epochs = info["n_iter_"]
                    row = evaluate(test, samples, categorical, seed, args.tvae_python,
                                   workdir, with_sdmetrics)
                    if row.get("sdmetrics"):
                        meta["sdmetrics"] = row["sdmetrics"]["sdmetrics"]
                    row.update(seconds=seconds, epochs=epochs)
                    runs[name].append(row)
                    print(f"{data:10s} seed {seed} {name:16s} fit {seconds:7.1f} s  C2ST "
                          f"{row['c2st']:.3f} fidelity {row['fidelity']:.3f} corr "
                          f"{row['corr']:.3f} cramer {row['cramer']:.3f} sdm "
                          f"{(row.get('sdmetrics') or {}).get('overall', float('nan')):.3f}"
                          + (f" sdmetrics error {row['sdmetrics_error']}"
                             if row.get("sdmetrics_error") else ""), flush=True)
        results[data] = {}
        for name, rows in runs.items():
            agg = {k: float(np.mean([r[k] for r in rows]))
                   for k in ("c2st", "fidelity", "corr", "cramer", "seconds")}
            agg["epochs"] = "/".join(str(r["epochs"]) for r in rows)
            if all(r.get("sdmetrics") for r in rows):
                agg["sdm"] = {k: float(np.mean([r["sdmetrics"][k] for r in rows]))
                              for k in ("overall", "Column Shapes", "Column Pair Trends")}
            results[data][name] = agg
    command = "OMP_NUM_THREADS=1 PYTHONPATH=. python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/bench_synthetic.py", *(argv or sys.argv[1:])]
    )
    report = markdown(results, configs, meta, command, time.perf_counter() - start)
    report = stamp_report(report, fingerprint)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
