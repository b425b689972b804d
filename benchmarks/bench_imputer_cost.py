"""VAEImputer's cost: old defaults, new defaults and IterativeImputer side by side.

Issue 20: bring ``VAEImputer`` within 10x ``IterativeImputer``'s time on the real
tables of ``../shared/data/tabular`` at no worse imputation error. The tables,
the masking and the error measures are those of ``bench_imputation.py`` (imported
from it): ``penguins``, ``pbc`` (without ``id``), ``slid``, ``creditcard`` and
``diamonds`` (5,000 rows); for each seed and missing rate (20%, 50%) that share of
the observed cells is removed at random; NRMSE on the removed numeric cells
(averaged over numeric columns), accuracy pooled over the removed categories.

Methods, each fitted and then asked to fill the table it was fitted on (the time
is fit + transform, and the transform's share is reported):

* ``IterativeImputer(max_iter=10, random_state=seed)`` (BayesianRidge) on ordinal
  codes, as in ``bench_imputation.py``;
* ``VAEImputer(**OLD_DEFAULTS, random_state=seed)``: the defaults before issue 20;
* ``VAEImputer(random_state=seed)``: today's defaults.

Time is CPU seconds of the process (``time.process_time()``, all threads) and
wall seconds, each the median over ``--repeats`` runs (the errors of a seeded run
do not change from one repeat to the next; this is checked). Two thread settings:
``default`` (torch's and the BLAS's own thread counts) and ``one``
(``torch.set_num_threads(1)`` and a one-thread limit from threadpoolctl, so
IterativeImputer's BLAS gets one thread too). The old defaults, whose fits take
minutes, run ``--old-repeats`` times, in the default setting only unless
``--old-both-threads``: their network is below skvae's one-thread cut-off
(``skvae/_threads.py``), so it trains on one thread either way.

::

    PYTHONPATH=. python benchmarks/bench_imputer_cost.py --output benchmarks/results_imputer_cost.md
    PYTHONPATH=. python benchmarks/bench_imputer_cost.py --quick   # penguins and pbc, 1 repeat
"""

import argparse
import datetime
import json
import math
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch

# threadpoolctl's controller, through scikit-learn (which depends on it; skvae does not).
from sklearn.utils.parallel import _get_threadpool_controller

import skvae
from skvae import VAEImputer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_imputation as protocol
from _provenance import source_fingerprint, stamp_report

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results_imputer_cost.md"
QUICK_OUTPUT = Path(__file__).resolve().parent / "output" / "results_imputer_cost_quick.md"
TABLES = ("penguins", "pbc", "slid", "creditcard", "diamonds")
QUICK_TABLES = ("penguins", "pbc")
RATES = protocol.RATES
# The VAEImputer defaults before issue 20 (skvae at commit 68e25ac).
OLD_DEFAULTS = {
    "hidden_layer_sizes": (128, 128), "n_training_samples": 20, "batch_size": 64,
    "learning_rate_init": 3e-3, "max_iter": 500, "n_iter_no_change": 30,
    "n_importance_samples": 100,
}
# Parameters over the defaults for "new" (--new-params): a candidate for them.
NEW_PARAMS = {}
# --new-steps: a budget of optimizer steps for "new" whatever the table's size,
# given as each table's max_iter (its epochs of those steps, within bounds), as
# skvae._schedules.auto_max_iter sizes max_iter="auto" with its own 3,200 steps.
NEW_STEPS = {}
METHODS = ("IterativeImputer", "VAE old defaults", "VAE new defaults")
SHORT = {"IterativeImputer": "Iter", "VAE old defaults": "old", "VAE new defaults": "new"}
THREADS = ("default", "one")


def fit_and_fill(method, holes, categorical, seed):
    """``holes`` filled by ``method``, and the CPU seconds of its transform (0 for Iter)."""
    if method == "IterativeImputer":
        return protocol.impute("IterativeImputer (BayesianRidge)", holes, categorical,
                               seed), 0.0
    params = OLD_DEFAULTS if method == "VAE old defaults" else NEW_PARAMS
    if method == "VAE new defaults" and NEW_STEPS:
        params = {**params, "max_iter": step_budget_epochs(holes.shape[0], params)}
    imputer = VAEImputer(random_state=seed, **params).fit(holes)
    start = time.process_time()
    filled = imputer.transform(holes)
    return filled, time.process_time() - start


def step_budget_epochs(n_rows, params):
    """Epochs of ``NEW_STEPS["steps"]`` steps for a fit on ``n_rows`` rows, within bounds.

    The training rows are those early stopping leaves (all tables here have at
    least 100 rows), the batch that of ``params`` (or the default).
    """
    imputer = VAEImputer(**params)
    n_train = n_rows - max(1, round(imputer.validation_fraction * n_rows))
    batch = min(imputer.batch_size, n_train)
    epochs = round(NEW_STEPS["steps"] / math.ceil(n_train / batch))
    return min(NEW_STEPS["max_epochs"], max(NEW_STEPS["min_epochs"], epochs))


def run_one(frame, rate, seed, method, threads):
    """One timed fit + fill of ``frame`` with ``rate`` of its cells removed."""
    categorical = [c for c in frame.columns if protocol.is_categorical(frame[c])]
    removed = protocol.remove_cells(frame, rate, seed)
    holes = frame.mask(removed)
    default_threads = torch.get_num_threads()
    limit = 1 if threads == "one" else None
    try:
        if threads == "one":
            torch.set_num_threads(1)
        with _get_threadpool_controller().limit(limits=limit), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cpu, wall = time.process_time(), time.perf_counter()
            filled, transform_cpu = fit_and_fill(method, holes, categorical, seed)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        torch.set_num_threads(default_threads)
    nrmse, accuracy = protocol.score(frame, filled, removed, categorical)
    return {"cpu": cpu, "wall": wall, "transform_cpu": transform_cpu, "nrmse": nrmse,
            "accuracy": accuracy}


def plan(tables, seeds, repeats, old_repeats, old_both_threads, methods=METHODS,
         thread_settings=THREADS):
    """The (table, rate, seed, method, threads, repeat) runs, cheapest methods first."""
    runs = []
    for seed in seeds:
        for table in tables:
            for rate in RATES:
                for threads in thread_settings:
                    for method in methods:
                        old = method == "VAE old defaults"
                        if old and threads == "one" and not old_both_threads:
                            continue
                        for repeat in range(old_repeats if old else repeats):
                            runs.append((table, rate, seed, method, threads, repeat))
    return runs


def _median(records, key):
    return statistics.median(r[key] for r in records)


def summarise(records):
    """Per (table, rate, seed, method, threads): median times, the (single) errors."""
    groups = {}
    for r in records:
        groups.setdefault((r["table"], r["rate"], r["seed"], r["method"], r["threads"]),
                          []).append(r)
    out = {}
    for key, group in groups.items():
        errors = {(g["nrmse"], g["accuracy"]) for g in group}
        if len(errors) > 1 and not all(np.isnan(e).any() for e in errors):
            raise RuntimeError(f"{key}: repeats gave different errors {errors}")
        out[key] = {"cpu": _median(group, "cpu"), "wall": _median(group, "wall"),
                    "transform_cpu": _median(group, "transform_cpu"),
                    "nrmse": group[0]["nrmse"], "accuracy": group[0]["accuracy"],
                    "n": len(group)}
    return out


def _ratio(a, b):
    return a / b if b else float("nan")


def _time_table(cells, stats, threads, seeds):
    lines = [
        ("| table | rate | Iter CPU | old CPU | new CPU (transform) | old / Iter | "
         "**new / Iter** | new / Iter (wall) | old / new |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    totals = {m: 0.0 for m in METHODS}
    wall_totals = {m: 0.0 for m in METHODS}
    for table, rate in cells:
        v = {m: [stats.get((table, rate, s, m, threads)) or
                 stats.get((table, rate, s, m, "default")) for s in seeds]
             for m in METHODS}
        cpu = {m: sum(x["cpu"] for x in v[m]) for m in METHODS}
        wall = {m: sum(x["wall"] for x in v[m]) for m in METHODS}
        transform = sum(x["transform_cpu"] for x in v["VAE new defaults"])
        for m in METHODS:
            totals[m] += cpu[m]
            wall_totals[m] += wall[m]
        lines.append(
            f"| {table} | {rate:.0%} | {cpu['IterativeImputer']:.2f} | "
            f"{cpu['VAE old defaults']:.1f} | {cpu['VAE new defaults']:.2f} "
            f"({transform:.2f}) | {_ratio(cpu['VAE old defaults'], cpu['IterativeImputer']):.0f}"
            f" | **{_ratio(cpu['VAE new defaults'], cpu['IterativeImputer']):.1f}** | "
            f"{_ratio(wall['VAE new defaults'], wall['IterativeImputer']):.1f} | "
            f"{_ratio(cpu['VAE old defaults'], cpu['VAE new defaults']):.0f} |")
    lines.append(
        f"| **total** | | **{totals['IterativeImputer']:.2f}** | "
        f"**{totals['VAE old defaults']:.0f}** | **{totals['VAE new defaults']:.1f}** | "
        f"**{_ratio(totals['VAE old defaults'], totals['IterativeImputer']):.0f}** | "
        f"**{_ratio(totals['VAE new defaults'], totals['IterativeImputer']):.1f}** | "
        f"**{_ratio(wall_totals['VAE new defaults'], wall_totals['IterativeImputer']):.1f}**"
        f" | **{_ratio(totals['VAE old defaults'], totals['VAE new defaults']):.0f}** |")
    return lines, _ratio(totals["VAE new defaults"], totals["IterativeImputer"])


def _error_table(cells, stats, seeds):
    lines = [
        ("| table | rate | NRMSE Iter | NRMSE old | NRMSE new | **new / old** | "
         "Acc Iter | Acc old | Acc new | **new / old** |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    means = {m: {"nrmse": [], "accuracy": []} for m in METHODS}
    for table, rate in cells:
        v = {}
        for m in METHODS:
            runs = [stats[(table, rate, s, m, "default")] for s in seeds]
            v[m] = {k: float(np.mean([r[k] for r in runs])) for k in ("nrmse", "accuracy")}
            for k in ("nrmse", "accuracy"):
                if not np.isnan(v[m][k]):
                    means[m][k].append(v[m][k])
        old, new, it = v["VAE old defaults"], v["VAE new defaults"], v["IterativeImputer"]
        lines.append(
            f"| {table} | {rate:.0%} | {it['nrmse']:.3f} | {old['nrmse']:.3f} | "
            f"{new['nrmse']:.3f} | **{_ratio(new['nrmse'], old['nrmse']):.3f}** | "
            f"{it['accuracy']:.3f} | {old['accuracy']:.3f} | {new['accuracy']:.3f} | "
            f"**{_ratio(new['accuracy'], old['accuracy']):.3f}** |")
    mean = {m: {k: float(np.mean(x)) for k, x in means[m].items()} for m in METHODS}
    old, new, it = mean["VAE old defaults"], mean["VAE new defaults"], mean["IterativeImputer"]
    lines.append(
        f"| **mean** | | **{it['nrmse']:.3f}** | **{old['nrmse']:.3f}** | "
        f"**{new['nrmse']:.3f}** | **{_ratio(new['nrmse'], old['nrmse']):.3f}** | "
        f"**{it['accuracy']:.3f}** | **{old['accuracy']:.3f}** | **{new['accuracy']:.3f}** | "
        f"**{_ratio(new['accuracy'], old['accuracy']):.3f}** |")
    return lines, mean


def markdown(records, tables, seeds, frames, command, elapsed, repeats, machine):
    stats = summarise(records)
    # A cell is reported once every method has run on it (an interrupted run
    # reports what it finished and names the rest).
    cells = [(t, r) for t in tables for r in RATES
             if all((t, r, s, m, "default") in stats for s in seeds for m in METHODS)]
    missing = [f"{t} {r:.0%}" for t in tables for r in RATES if (t, r) not in cells]
    lines = [
        "# VAEImputer's cost: old defaults, new defaults and IterativeImputer",
        "",
        f"Produced by `{command}` on {datetime.date.today().isoformat()} "
        f"({elapsed / 60:.0f} min): skvae {skvae.__version__}, scikit-learn "
        f"{sklearn.__version__}, torch {torch.__version__} (default "
        f"{torch.get_num_threads()} threads), pandas {pd.__version__}, Python "
        f"{platform.python_version()}, {platform.machine()}. {machine} skvae sources "
        "sha256 of the runs: " + "; ".join(
            f"{SHORT[m]} " + ", ".join(sorted({str(r["skvae_sources"]) for r in records
                                               if r["method"] == m})) for m in METHODS)
        + " (the old defaults are given explicitly, so any code that differs only in "
        "its defaults runs them alike).",
        "",
        "Protocol of `bench_imputation.py` (imported from it): seeds "
        f"{', '.join(map(str, seeds))}; 20% and 50% of the observed cells removed at "
        "random; NRMSE on the removed numeric cells (per column RMSE / the column's "
        "standard deviation, averaged over numeric columns; lower is better) and "
        "accuracy pooled over the removed categorical cells (higher is better). Iter: "
        "`IterativeImputer(max_iter=10)` (BayesianRidge) on ordinal codes; old: "
        "`VAEImputer(" + ", ".join(f"{k}={v!r}" for k, v in OLD_DEFAULTS.items())
        + ")`, the defaults before issue 20; new: `VAEImputer()`. All with "
        "`random_state=seed`. Time: fit + transform of the table, CPU seconds of the "
        "process (`time.process_time()`, all threads), median over "
        f"{repeats} repeats for Iter and new (old: see the count below), summed over "
        "seeds; wall seconds likewise. The transform's share of new's CPU time is in "
        "brackets.",
        "",
        "Data: " + ", ".join(f"{t} {frames[t].shape[0]} x {frames[t].shape[1]}"
                             for t in tables) + ".",
        "",
    ]
    if missing:
        lines += [("**Not finished, so left out of every table and total below:** "
                   f"{', '.join(missing)}."), ""]
    ratios = {}
    for threads in THREADS:
        title = ("torch's and the BLAS's default threads" if threads == "default" else
                 "one thread (`torch.set_num_threads(1)`, `threadpool_limits(1)`)")
        old_threads = "one" if any(k[3] == "VAE old defaults" and k[4] == "one"
                                   for k in stats) else "default"
        lines += [f"## Time, {title}", ""]
        if threads == "one" and old_threads == "default":
            lines += [("(old: the default-thread runs; its network trains on one "
                       "thread either way.)"), ""]
        table, ratios[threads] = _time_table(cells, stats, threads, seeds)
        lines += table + [""]
    error_lines, mean = _error_table(cells, stats, seeds)
    lines += ["## Error (default threads; one thread gives the same figures)", ""]
    lines += error_lines + [""]
    old, new = mean["VAE old defaults"], mean["VAE new defaults"]
    n_old = sorted({s["n"] for k, s in stats.items() if k[3] == "VAE old defaults"})
    time_ok = all(r <= 10 for r in ratios.values())
    error_ok = new["nrmse"] <= old["nrmse"] and new["accuracy"] >= old["accuracy"]
    lines += [
        "## Goal",
        "",
        "Issue 20: within 10x IterativeImputer's time on these tables at no worse "
        "error. Total CPU time, new / Iter: "
        + ", ".join(f"{ratios[t]:.1f}x ({t} threads)" for t in THREADS)
        + f" — {'met' if time_ok else 'not met'}. Mean NRMSE new {new['nrmse']:.3f} "
        f"against old {old['nrmse']:.3f}, mean accuracy new {new['accuracy']:.3f} "
        f"against old {old['accuracy']:.3f} — {'met' if error_ok else 'not met'}. "
        f"**Goal {'met' if time_ok and error_ok else 'not met'}.** (Old defaults timed "
        f"{'/'.join(map(str, n_old))} time(s) per cell.)",
        "",
    ]
    return "\n".join(lines)


def _machine_note():
    try:
        load = ", ".join(f"{x:.1f}" for x in __import__("os").getloadavg())
        return f"Load average at the end (1, 5, 15 min): {load} on " \
               f"{__import__('os').cpu_count()} cores."
    except OSError:
        return ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=protocol.DEFAULT_DATA_DIR)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--quick", action="store_true",
                        help="penguins and pbc, seed 0, one repeat (smoke test)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-repeats", type=int, default=1)
    parser.add_argument("--old-both-threads", action="store_true")
    parser.add_argument("--methods", nargs="+", choices=[SHORT[m] for m in METHODS],
                        default=None, help="run only these (the report needs all three: "
                        "fill the rest with --resume)")
    parser.add_argument("--thread-settings", nargs="+", choices=THREADS, default=THREADS,
                        help="run only these thread settings (with --methods: no report)")
    parser.add_argument("--new-params", type=json.loads, default={},
                        help="JSON of VAEImputer parameters for 'new' (a candidate for "
                        "the defaults)")
    parser.add_argument("--new-steps", type=int, nargs="+", default=None,
                        metavar="N", help="STEPS [MIN_EPOCHS MAX_EPOCHS] (20, 200): "
                        "'new' trains for about STEPS optimizer steps on every table "
                        "(with learning_rate='cosine' the schedule spans them)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="JSON-lines file of finished runs (default: next to --output)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs already in --cache")
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from --cache, running nothing")
    args = parser.parse_args(argv)
    NEW_PARAMS.update(args.new_params)
    if args.new_steps:
        steps, lo, hi = (args.new_steps + [20, 200])[:3]
        NEW_STEPS.update(steps=steps, min_epochs=lo, max_epochs=hi)
    if not (args.data_dir / "penguins.csv").is_file():
        sys.exit(f"No tabular data in {args.data_dir}; see ../shared/data/README.md.")
    tables, repeats = (QUICK_TABLES, 1) if args.quick else (TABLES, args.repeats)
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    frames = {t: protocol.load(t, args.data_dir) for t in tables}
    cache = args.cache or output.with_suffix(".jsonl")
    cache.parent.mkdir(parents=True, exist_ok=True)
    records = []
    if (args.resume or args.report_only) and cache.is_file():
        records = [json.loads(line) for line in cache.read_text().splitlines() if line]
    elif cache.is_file():
        cache.unlink()
    done = {(r["table"], r["rate"], r["seed"], r["method"], r["threads"], r["repeat"])
            for r in records}
    fingerprint = source_fingerprint()
    methods = [m for m in METHODS if args.methods is None or SHORT[m] in args.methods]
    if args.report_only:
        done = set(plan(tables, args.seeds, repeats, args.old_repeats, True))
    # One short fit first: torch's one-time start-up costs are nobody's fit time.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VAEImputer(max_iter=2, random_state=0).fit(frames[tables[0]])
    start = time.perf_counter()
    for key in plan(tables, args.seeds, repeats, args.old_repeats, args.old_both_threads,
                    methods, args.thread_settings):
        if key in done:
            continue
        table, rate, seed, method, threads, repeat = key
        record = {"table": table, "rate": rate, "seed": seed, "method": method,
                  "threads": threads, "repeat": repeat, "skvae_sources": fingerprint,
                  **run_one(frames[table], rate, seed, method, threads)}
        records.append(record)
        with cache.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"{table:10s} {rate:.0%} seed {seed} {SHORT[method]:4s} {threads:7s} "
              f"#{repeat} NRMSE {record['nrmse']:.3f} acc {record['accuracy']:.3f} "
              f"{record['cpu']:7.2f} s CPU {record['wall']:7.2f} s wall", flush=True)
    records = [r for r in records if r["table"] in tables and r["seed"] in args.seeds]
    if args.methods is not None:
        print(f"Ran {', '.join(args.methods)} only; no report.")
        return
    command = "PYTHONPATH=. python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/bench_imputer_cost.py", *(argv or sys.argv[1:])])
    report = markdown(records, tables, args.seeds, frames, command,
                      time.perf_counter() - start, repeats, _machine_note())
    report = stamp_report(report, fingerprint)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
