"""Synthetic rows of real mixed tables: VAETransformer.sample against CTGAN's TVAE.

Data: every table of ``../shared/data/tabular`` with at least 300 complete rows
(creditcard, diamonds, penguins, slid; pbc has 276 and is left out), its
complete rows only (TVAE does not take holes), ``pbc``'s ``id`` dropped; split by
``train_test_split(test_size=0.3, random_state=0)``, then at most 5,000 training
and 2,000 held-out rows kept (diamonds: 5,000 / 2,000 of its 53,940). Each model
is fitted on the training rows and generates as many rows as are held out; the
synthetic rows are compared with the held-out real rows:

* **C2ST**: a ``HistGradientBoostingClassifier(categorical_features="from_dtype")``
  told to separate held-out real rows from synthetic rows (equal counts), ROC-AUC
  of 5-fold stratified cross-validation (0.5 = indistinguishable; lower is better);
* **column fidelity**: per column 1 - Kolmogorov-Smirnov statistic (numeric) or
  1 - total variation distance (categorical), averaged over columns (higher is better);
* **pairwise**: mean absolute difference between the Pearson correlations of the
  numeric columns (upper triangle), and between the Cramér's V of the
  categorical columns (lower is better);
* **held-out log-likelihood** (skvae only): ``score`` of the held-out rows, the
  importance-weighted bound (50 draws) for the model's own prior, nats per row;
* SDMetrics' ``QualityReport`` score (column shapes, column pair trends), computed
  in the TVAE environment where ``sdmetrics`` is installed, when it is.

Arms: skvae ``VAETransformer(sampling_prior="standard", numeric_transform="none")``
(N(0, I) and standardised columns, the sampling before issue 21),
``VAETransformer(sampling_prior="mixture", numeric_transform="none")`` (a Gaussian
mixture fitted to the codes after training) and ``VAETransformer()`` (the
defaults: the mixture and the quantile maps of the numeric columns), every
other parameter at its default, each fitted on its own; and CTGAN's
``TVAE()`` at its defaults (300 epochs), run in its own environment
(``--tvae-python``) by ``benchmarks/_tvae_runner.py``. With ``--today-tree PATH``
(a checkout of an earlier commit), the first and last skvae arms also run with
that checkout's skvae ("today before", "today default"), by
``benchmarks/_skvae_tree_runner.py``: the same run compares today's training
with the new one. Fit times are wall-clock seconds of ``fit`` alone, one torch
thread on both sides::

    git worktree add /tmp/today 8359d06
    SKVAE_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_synthetic.py \
        --threads 1 --today-tree /tmp/today
    SKVAE_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_synthetic.py --quick
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
TREE_RUNNER = HERE / "_skvae_tree_runner.py"
SEEDS = (0,)


MIN_COMPLETE_ROWS = 300
MAX_TRAIN, MAX_TEST = 5_000, 2_000
DROPPED_COLUMNS = {"pbc": ["id"]}


def tables(data_dir):
    """Names of the tables with at least MIN_COMPLETE_ROWS complete rows, and the others."""
    kept, left_out = [], {}
    for path in sorted(Path(data_dir).glob("*.csv")):
        n = len(pd.read_csv(path).drop(columns=DROPPED_COLUMNS.get(path.stem, [])).dropna())
        if n >= MIN_COMPLETE_ROWS:
            kept.append(path.stem)
        else:
            left_out[path.stem] = n
    return kept, left_out


def load(name, data_dir, quick):
    frame = pd.read_csv(Path(data_dir) / f"{name}.csv")
    frame = frame.drop(columns=DROPPED_COLUMNS.get(name, [])).dropna()
    train, test = train_test_split(frame, test_size=0.3, random_state=0)
    n_train, n_test = (300, 150) if quick else (MAX_TRAIN, MAX_TEST)
    return (train.iloc[:n_train].reset_index(drop=True),
            test.iloc[:n_test].reset_index(drop=True))


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


def _commit(tree):
    """The commit checked out at ``tree``, or "?"."""
    result = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True)
    return result.stdout.strip() or "?"


def _one_thread_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def fit_skvae(params, train, test, seed):
    model = VAETransformer(**params, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train)
    seconds = time.perf_counter() - start
    samples = model.sample(len(test), random_state=seed)
    # A category the training rows lack counts as a hole of its row.
    model.set_params(handle_unknown="ignore")
    return samples, seconds, {"n_iter_": int(model.n_iter_),
                              "log_likelihood": model.score(test)}


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


def fit_skvae_at(tree, params, name, data_dir, quick, seed, workdir):
    """``fit_skvae`` run with the skvae of the checkout ``tree``, in a subprocess."""
    samples_csv, info_json = Path(workdir) / "today.csv", Path(workdir) / "today.json"
    command = [sys.executable, str(TREE_RUNNER), "--data", name, "--data-dir",
               str(data_dir), "--seed", str(seed), "--params", json.dumps(params),
               "--samples", str(samples_csv), "--info", str(info_json)]
    if quick:
        command.append("--quick")
    subprocess.run(command, check=True,
                   env={**_one_thread_env(), "SKVAE_THREADS": "1", "PYTHONPATH": str(tree)})
    info = json.loads(info_json.read_text())
    if not Path(info["skvae"]).resolve().is_relative_to(Path(tree).resolve()):
        sys.exit(f"The today arm imported {info['skvae']}, not the skvae of {tree}.")
    return pd.read_csv(samples_csv), info["fit_seconds"], info


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

METRICS = ("seconds", "c2st", "fidelity", "corr", "cramer", "log_likelihood")


def _cell(value, fmt):
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else format(value, fmt)


def markdown(results, configs, meta, command, elapsed, left_out, sizes):
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
        "Data: the complete rows of every table of `../shared/data/tabular` with at "
        f"least {MIN_COMPLETE_ROWS} of them, split by `train_test_split(test_size=0.3, "
        f"random_state=0)`, at most {MAX_TRAIN:,} training and {MAX_TEST:,} held-out rows "
        "kept: " + ", ".join(f"{name} {n_train:,} / {n_test:,}"
                             for name, (n_train, n_test) in sizes.items())
        + (" (left out, too few complete rows: " + ", ".join(
            f"{name} {n}" for name, n in left_out.items()) + ")" if left_out else "")
        + ". Each model generates as many rows as are held out. **C2ST**: 5-fold "
        "cross-validated ROC-AUC of a `HistGradientBoostingClassifier` separating "
        "held-out real from synthetic rows (0.5 is ideal; lower is better). "
        "**Fidelity**: mean over columns of 1 - KS statistic (numeric) or 1 - total "
        "variation distance (categorical), higher is better. **Corr diff** / **Cramér "
        "diff**: mean absolute difference of the numeric Pearson correlations / "
        "categorical Cramér's V between real and synthetic, lower is better. "
        "**Held-out LL**: skvae's `score` of the held-out rows (importance-weighted "
        "bound, 50 draws, for the model's own prior), nats per row, higher is better. "
        "**SDM**: SDMetrics QualityReport overall score, higher is better. Fit: "
        "wall-clock seconds of `fit` alone on a shared 2-core machine. Seeds "
        f"{', '.join(map(str, meta['seeds']))}.",
        "",
        "Arms: " + "; ".join(f"**{name}** = {desc}" for name, desc in configs.items())
        + ".",
        "",
        "| data set | arm | fit s | epochs run | C2ST AUC | fidelity | corr diff | "
        "Cramér diff | held-out LL | SDM | fit time / TVAE | C2ST vs TVAE |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for data, by_arm in results.items():
        tvae = by_arm.get("TVAE")
        for name, r in by_arm.items():
            sdm = r.get("sdm") or {}
            lines.append(
                f"| {data} | {name} | {r['seconds']:.1f} | {r['epochs']} | "
                f"{r['c2st']:.3f} | {r['fidelity']:.3f} | {r['corr']:.3f} | "
                f"{_cell(r['cramer'], '.3f')} | {_cell(r.get('log_likelihood'), '.2f')} | "
                f"{_cell(sdm.get('overall'), '.3f')} | "
                + (f"{r['seconds'] / tvae['seconds']:.2f} | {r['c2st'] - tvae['c2st']:+.3f} |"
                   if tvae else "n/a | n/a |"))
    def mean(values):
        values = [v for v in values if v is not None and not np.isnan(v)]
        return float(np.mean(values)) if values else None

    means = {name: {k: mean([results[d][name].get(k) for d in results]) for k in METRICS}
             for name in configs}
    lines += ["", f"Means over the {len(results)} tables:", "",
              "| arm | fit s | C2ST AUC | fidelity | corr diff | Cramér diff | held-out LL |",
              "|---|---|---|---|---|---|---|"]
    for name, m in means.items():
        lines.append(f"| {name} | {m['seconds']:.1f} | {m['c2st']:.3f} | "
                     f"{m['fidelity']:.3f} | {m['corr']:.3f} | {_cell(m['cramer'], '.3f')} | "
                     f"{_cell(m['log_likelihood'], '.2f')} |")
    lines += ["", "## Goals (issue 21)", ""]
    for name in configs:
        if name == "TVAE" or "TVAE" not in configs:
            continue
        m = means[name]
        better = [d for d in results if results[d][name]["c2st"] < results[d]["TVAE"]["c2st"]]
        faster = [d for d in results
                  if results[d][name]["seconds"] <= results[d]["TVAE"]["seconds"]]
        lines += [
            f"- {name}: mean C2ST {m['c2st']:.3f} (goal at most 0.75: "
            f"**{'met' if m['c2st'] <= 0.75 else 'not met'}**); C2ST below TVAE's on "
            f"{len(better)} of {len(results)} tables (goal: all, "
            f"**{'met' if len(better) == len(results) else 'not met'}**); fit time at "
            f"most TVAE's on {len(faster)} of {len(results)} tables "
            f"(**{'met' if len(faster) == len(results) else 'not met'}**).",
        ]
    for name, against in (("skvae default", "skvae before"), ("skvae default", "skvae mixture"),
                          ("skvae default", "today before"), ("skvae default", "today default")):
        if name in configs and against in configs:
            worse = [d for d in results if results[d][name]["log_likelihood"]
                     < results[d][against]["log_likelihood"]]
            lines.append(
                f"- Held-out log-likelihood, {name} against {against}: lower on "
                f"{len(worse)} of {len(results)} tables"
                + (f" ({', '.join(worse)})" if worse else "")
                + f" (goal: none, **{'met' if not worse else 'not met'}**).")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--quick", action="store_true",
                        help="300 / 150 rows, 5 epochs (smoke test)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tvae-python", type=Path, default=DEFAULT_TVAE_PYTHON)
    parser.add_argument("--tvae-epochs", type=int, default=300)
    parser.add_argument("--no-tvae", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--today-tree", type=Path, default=None,
                        help="a checkout of an earlier commit: its defaults and its "
                             "sampling before issue 21 run as the 'today' arms")
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="default: every table with enough complete rows")
    args = parser.parse_args(argv)
    with_tvae = not args.no_tvae
    if with_tvae and not args.tvae_python.is_file():
        sys.exit(f"No TVAE environment at {args.tvae_python}: see the docstring.")
    if args.threads:
        torch.set_num_threads(args.threads)
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    tvae_epochs = 5 if args.quick else args.tvae_epochs
    extra = {"max_iter": 5} if args.quick else {}
    arms = {
        # The sampling before issue 21: N(0, I), no maps (now clipped to the range).
        "skvae before": {"sampling_prior": "standard", "numeric_transform": "none", **extra},
        # The mixture prior alone (the default of 72e61fd).
        "skvae mixture": {"sampling_prior": "mixture", "numeric_transform": "none", **extra},
        # Today's defaults: the mixture prior and the quantile maps.
        "skvae default": {**extra},
    }
    today = {}
    if args.today_tree:
        today = {"today before": arms["skvae before"], "today default": arms["skvae default"]}
    configs = {name: f"`VAETransformer({', '.join(f'{k}={v!r}' for k, v in p.items())})`"
               for name, p in arms.items()}
    configs.update({name: f"{configs['skvae ' + name.split()[1]]} with the skvae of "
                          f"`{args.today_tree}` ({_commit(args.today_tree)})"
                    for name in today})
    if with_tvae:
        configs["TVAE"] = (f"`TVAE(epochs={tvae_epochs})`, all else default (batch 500, "
                           "compress/decompress dims (128, 128), embedding 128)")
    with_sdmetrics = with_tvae and subprocess.run(
        [str(args.tvae_python), "-c", "import sdmetrics"], capture_output=True
    ).returncode == 0

    datasets, left_out = tables(args.data_dir)
    if args.datasets:
        datasets, left_out = args.datasets, {}
    fingerprint = source_fingerprint()
    start = time.perf_counter()
    results, meta, sizes = {}, {"seeds": args.seeds}, {}
    for data in datasets:
        train, test = load(data, args.data_dir, args.quick)
        sizes[data] = (len(train), len(test))
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
                    elif name in today:
                        samples, seconds, info = fit_skvae_at(
                            args.today_tree, today[name], data, args.data_dir, args.quick,
                            seed, workdir)
                        epochs = info["n_iter_"]
                    else:
                        samples, seconds, info = fit_skvae(arms[name], train, test, seed)
                        epochs = info["n_iter_"]
                    row = evaluate(test, samples, categorical, seed, args.tvae_python,
                                   workdir, with_sdmetrics)
                    if row.get("sdmetrics"):
                        meta["sdmetrics"] = row["sdmetrics"]["sdmetrics"]
                    row.update(seconds=seconds, epochs=epochs,
                               log_likelihood=info.get("log_likelihood"))
                    runs[name].append(row)
                    print(f"{data:10s} seed {seed} {name:16s} fit {seconds:7.1f} s  C2ST "
                          f"{row['c2st']:.3f} fidelity {row['fidelity']:.3f} corr "
                          f"{row['corr']:.3f} cramer {row['cramer']:.3f} LL "
                          f"{_cell(row['log_likelihood'], '.2f')} sdm "
                          f"{(row.get('sdmetrics') or {}).get('overall', float('nan')):.3f}"
                          + (f" sdmetrics error {row['sdmetrics_error']}"
                             if row.get("sdmetrics_error") else ""), flush=True)
        results[data] = {}
        for name, rows in runs.items():
            agg = {k: float(np.mean([r[k] for r in rows]))
                   for k in ("c2st", "fidelity", "corr", "cramer", "seconds")}
            agg["log_likelihood"] = (None if rows[0]["log_likelihood"] is None else
                                     float(np.mean([r["log_likelihood"] for r in rows])))
            agg["epochs"] = "/".join(str(r["epochs"]) for r in rows)
            if all(r.get("sdmetrics") for r in rows):
                agg["sdm"] = {k: float(np.mean([r["sdmetrics"][k] for r in rows]))
                              for k in ("overall", "Column Shapes", "Column Pair Trends")}
            results[data][name] = agg
    command = "SKVAE_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=. python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/bench_synthetic.py", *(argv or sys.argv[1:])]
    )
    report = markdown(results, configs, meta, command, time.perf_counter() - start,
                      left_out, sizes)
    report = stamp_report(report, fingerprint)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
