"""Peak memory of inference against the number of rows (issue 5).

For 10^4, 10^5 and 10^6 rows of 100 features, each measurement runs in a fresh
process: it loads one small fitted model (saved once with ``skvae.save``), builds
the input, warms the method up on a few rows, then records the peak resident set
size (``VmHWM``, reset just before) reached by one call over all rows. "Extra" is
that peak minus the resident size just before the call, so the input itself is not
counted; it is set against the size of the call's output. With inference in
fixed-size blocks the extra memory should be the output plus a constant, whatever
the number of rows.

A reference row (left out with ``--no-reference``) measures the path every method
took before issue 5: the whole input standardised and converted to one float32
tensor, results concatenated.

Usage::

    PYTHONPATH=. python benchmarks/bench_memory.py --output benchmarks/results_memory.md
    PYTHONPATH=. python benchmarks/bench_memory.py --quick   # 10^3 and 10^4 rows only
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import warnings

import numpy as np

N_FEATURES = 100
METHODS = {
    "VAETransformer": ["transform", "inverse_transform", "score_samples"],
    "VAEOutlierDetector": ["score_samples", "decision_function", "predict"],
}
PARAMS = dict(n_components=8, hidden_layer_sizes=(64,), max_iter=2,
              n_importance_samples=5, likelihood="gaussian", random_state=0)


def _status_bytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_rss():
    """Set the peak resident size (VmHWM) to the current one (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def measure(model_path, method, n_rows):
    """Run in a child process: peak extra memory of ``method`` over ``n_rows`` rows."""
    import torch

    import skvae
    from skvae._inference import CHUNK_ROWS, map_in_fixed_chunks

    torch.set_num_threads(1)
    estimator = skvae.load(model_path)
    X = np.random.default_rng(0).standard_normal((n_rows, N_FEATURES))
    if method == "reference transform (before)":
        def call(rows):
            rows = estimator._model.data_space.to_tensor(rows, "cpu")
            mean = map_in_fixed_chunks(
                lambda x: estimator.module_.encoder(x)[0], rows, CHUNK_ROWS
            )
            return mean.numpy().astype(np.float64)
        argument = X
    elif method == "inverse_transform":
        argument = estimator.transform(X)
        del X
        call = estimator.inverse_transform
    else:
        argument, call = X, getattr(estimator, method)
    call(argument[:10])  # warm-up: allocator pools, kernels, lazy imports
    _reset_peak_rss()
    before = _status_bytes("VmRSS")
    result = call(argument)
    extra = _status_bytes("VmHWM") - before
    return {"extra": extra, "output": int(np.asarray(result).nbytes),
            "input": int(argument.nbytes)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="write the Markdown table here")
    parser.add_argument("--quick", action="store_true", help="10^3 and 10^4 rows only")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the whole-input conversion used before issue 5")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_path, method, n_rows = args.child
        print(json.dumps(measure(model_path, method, int(n_rows))))
        return

    import skvae
    from sklearn.exceptions import ConvergenceWarning

    sizes = [10**3, 10**4] if args.quick else [10**4, 10**5, 10**6]
    X_train = np.random.default_rng(1).standard_normal((2000, N_FEATURES))
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name, methods in METHODS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                estimator = getattr(skvae, name)(**PARAMS).fit(X_train)
            model_path = os.path.join(directory, f"{name}.skvae")
            skvae.save(estimator, model_path)
            if name == "VAETransformer" and args.reference:
                methods = methods + ["reference transform (before)"]
            for method in methods:
                for n_rows in sizes:
                    completed = subprocess.run(
                        [sys.executable, __file__, "--child", model_path, method, str(n_rows)],
                        capture_output=True, text=True,
                        env={**os.environ, "OMP_NUM_THREADS": "1"},
                    )
                    if completed.returncode:
                        sys.exit(completed.stderr)
                    result = json.loads(completed.stdout.strip().splitlines()[-1])
                    rows.append((name, method, n_rows, result))
                    print(name, method, n_rows, result, flush=True)
    table = _markdown(rows, args)
    print(table)
    if args.output:
        with open(args.output, "w") as file:
            file.write(table)


def _mib(n_bytes):
    return f"{n_bytes / 2**20:,.1f}"


def _markdown(rows, args):
    command = "PYTHONPATH=. python benchmarks/bench_memory.py" + (
        " --quick" if args.quick else "") + (f" --output {args.output}" if args.output else "")
    lines = [
        "# Peak memory of inference against the number of rows",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.date.today().isoformat()}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, torch {__import__('torch').__version__}, "
        f"{platform.machine()} CPU, one torch thread.",
        "",
        f"Model: {PARAMS} fitted on 2,000 rows; input float64 of {N_FEATURES} features.",
        "Extra = peak resident memory during the call (VmHWM, reset through "
        "/proc/self/clear_refs) minus resident memory just before "
        "it (the input is already there and not counted). Over = extra - output: what the "
        "call needs beyond its result.",
        "",
        "| estimator | method | rows | input MiB | output MiB | extra MiB | over MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, method, n_rows, r in rows:
        lines.append(
            f"| {name} | {method} | {n_rows:,} | {_mib(r['input'])} | {_mib(r['output'])} "
            f"| {_mib(r['extra'])} | {_mib(r['extra'] - r['output'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
