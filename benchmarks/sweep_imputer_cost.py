"""VAEImputer's cost levers: configurations swept over bench_imputer_cost's tables.

Issue 20 asks for VAEImputer within 10x IterativeImputer's time at no worse
error. This runs ``bench_imputer_cost.run_one`` (the same masking, errors and
one-thread timing) for each configuration of a JSON list, one JSON line per
(configuration, table, rate) appended to ``--output``, and prints the totals.
A configuration is ``{"name": ..., "params": {VAEImputer parameters},
"steps": [STEPS, MIN_EPOCHS, MAX_EPOCHS]}`` (``steps`` optional: each table's
``max_iter`` is then about STEPS optimizer steps, as ``--new-steps`` of
``bench_imputer_cost.py`` sets it); the name ``"Iter"`` runs IterativeImputer.

::

    SKVAE_THREADS=1 PYTHONPATH=. python benchmarks/sweep_imputer_cost.py \\
        '[{"name": "Iter"}, {"name": "today"}]' --output /tmp/sweep.jsonl
"""

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_imputation as protocol
import bench_imputer_cost as bench

from skvae import VAEImputer


def run(configs, tables, seed, data_dir, output):
    frames = {t: protocol.load(t, data_dir) for t in tables}
    # One short fit first: torch's one-time start-up costs are nobody's fit time.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VAEImputer(max_iter=2, random_state=0).fit(frames[tables[0]])
    for config in configs:
        bench.NEW_PARAMS.clear()
        bench.NEW_PARAMS.update(config.get("params", {}))
        bench.NEW_STEPS.clear()
        if "steps" in config:
            steps, lo, hi = (list(config["steps"]) + [20, 200])[:3]
            bench.NEW_STEPS.update(steps=steps, min_epochs=lo, max_epochs=hi)
        method = "IterativeImputer" if config["name"] == "Iter" else "VAE new defaults"
        for table in tables:
            for rate in bench.RATES:
                record = bench.run_one(frames[table], rate, seed, method, "one")
                record.update(name=config["name"], table=table, rate=rate, seed=seed)
                with output.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"{config['name']:26s} {table:10s} {rate:.0%} CPU {record['cpu']:6.2f}"
                      f" s NRMSE {record['nrmse']:.3f} acc {record['accuracy']:.3f}",
                      flush=True)


def totals(records):
    """Per (name, seed): summed CPU seconds, mean NRMSE and mean accuracy over cells."""
    groups = {}
    for r in records:
        groups.setdefault((r["name"], r["seed"]), []).append(r)
    out = {}
    for key, group in groups.items():
        accuracies = [r["accuracy"] for r in group if not math.isnan(r["accuracy"])]
        out[key] = {"cells": len(group), "cpu": sum(r["cpu"] for r in group),
                    "nrmse": sum(r["nrmse"] for r in group) / len(group),
                    "accuracy": sum(accuracies) / max(1, len(accuracies))}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", type=json.loads)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--tables", nargs="+", default=list(bench.TABLES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=protocol.DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    run(args.configs, args.tables, args.seed, args.data_dir, args.output)
    records = [json.loads(line) for line in args.output.read_text().splitlines() if line]
    for (name, seed), t in sorted(totals(records).items()):
        print(f"{name:26s} seed {seed} {t['cells']:2d} cells CPU {t['cpu']:7.2f} s "
              f"NRMSE {t['nrmse']:.4f} acc {t['accuracy']:.4f}")


if __name__ == "__main__":
    main()
