"""Fit CTGAN's TVAE on a CSV and write synthetic rows; run by bench_synthetic.py.

Runs in its own environment (``ctgan`` needs pandas < 3)::

    OMP_NUM_THREADS=1 /work/ctgan-venv/bin/python benchmarks/_tvae_runner.py \\
        --train train.csv --discrete cut color clarity --epochs 300 --seed 0 \\
        --n-samples 5000 --samples samples.csv --info info.json

Writes the samples (same columns as the training CSV) and a JSON with the fit time
in seconds (``fit_seconds``, wall clock of ``TVAE.fit`` alone), the sampling time
and the package versions. With ``--quality REAL SYNTH`` it instead scores two CSVs
with SDMetrics' ``QualityReport`` (if installed) and writes its scores to ``--info``.
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch


def quality(real_csv, synth_csv, discrete, info):
    from sdmetrics import __version__ as version
    from sdmetrics.reports.single_table import QualityReport

    real, synth = pd.read_csv(real_csv), pd.read_csv(synth_csv)
    columns = {c: {"sdtype": "categorical" if c in discrete else "numerical"}
               for c in real.columns}
    report = QualityReport()
    report.generate(real, synth, {"columns": columns}, verbose=False)
    props = report.get_properties()
    out = {"sdmetrics": version, "overall": float(report.get_score()),
           **{row["Property"]: float(row["Score"]) for _, row in props.iterrows()}}
    with open(info, "w") as f:
        json.dump(out, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train")
    parser.add_argument("--discrete", nargs="*", default=[])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-samples", type=int)
    parser.add_argument("--samples")
    parser.add_argument("--info", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quality", nargs=2, metavar=("REAL", "SYNTH"))
    args = parser.parse_args()
    if args.quality:
        return quality(*args.quality, args.discrete, args.info)

    import ctgan
    from ctgan import TVAE

    torch.set_num_threads(args.threads)
    train = pd.read_csv(args.train)
    for c in args.discrete:
        train[c] = train[c].astype(str)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = TVAE(epochs=args.epochs, cuda=False)
    model.set_random_state(args.seed)
    start = time.perf_counter()
    model.fit(train, discrete_columns=args.discrete)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    samples = model.sample(args.n_samples)
    sample_seconds = time.perf_counter() - start
    samples.to_csv(args.samples, index=False)
    with open(args.info, "w") as f:
        json.dump({"fit_seconds": fit_seconds, "sample_seconds": sample_seconds,
                   "epochs": args.epochs, "ctgan": ctgan.__version__,
                   "torch": torch.__version__, "pandas": pd.__version__,
                   "threads": torch.get_num_threads()}, f)


if __name__ == "__main__":
    main()
