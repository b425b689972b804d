"""Fit VAETransformer from another checkout of skvae; run by bench_synthetic.py.

``bench_synthetic.py --today-tree PATH`` runs its "today" arms with the skvae of
``PATH`` (a checkout of an earlier commit) by running this script with
``PYTHONPATH=PATH``: the table is loaded and split by bench_synthetic's own
``load``, fitted and sampled by its ``fit_skvae``, so only the package differs::

    PYTHONPATH=/tmp/today OMP_NUM_THREADS=1 python benchmarks/_skvae_tree_runner.py \\
        --data penguins --data-dir ../shared/data/tabular --seed 0 \\
        --params '{"sampling_prior": "standard"}' --samples s.csv --info info.json

Writes the samples as CSV and a JSON with the fit time, epochs, held-out
log-likelihood and the path of the skvae it imported.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_synthetic  # noqa: E402  (imports skvae from PYTHONPATH)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", type=json.loads, default={})
    parser.add_argument("--samples", required=True)
    parser.add_argument("--info", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, test = bench_synthetic.load(args.data, args.data_dir, args.quick)
    # A fresh process pays torch's first-call costs (seconds) in its first fit;
    # the in-process arms paid them once, in an earlier fit. Pay them untimed.
    bench_synthetic.fit_skvae({**args.params, "max_iter": 1}, train, test, args.seed)
    samples, seconds, info = bench_synthetic.fit_skvae(args.params, train, test, args.seed)
    samples.to_csv(args.samples, index=False)
    Path(args.info).write_text(json.dumps(
        {**info, "fit_seconds": seconds, "skvae": bench_synthetic.skvae.__file__}))


if __name__ == "__main__":
    main()
