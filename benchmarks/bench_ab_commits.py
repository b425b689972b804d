"""Fit and score time of the same model under two checkouts of skvae, alternated.

For a change that must not cost time (the base split of issue 19): each repeat
fits ``VAETransformer`` on the digits (dense 512-256 network, 8 latent
dimensions, Bernoulli, 40 epochs, one torch thread) in a fresh process of each
checkout, in alternating order, and records the CPU seconds of ``fit`` and of
``score_samples`` and the final loss (which must be equal: the same training).
The ratio after / before per pair and its median are the numbers to read; on a
machine that other jobs disturb, single fits vary by tens of percent.

    python benchmarks/bench_ab_commits.py --before /path/to/old/checkout \\
        --after . --repeats 8 --output benchmarks/results_ab_commits.md
"""

import argparse
import datetime
import os
import statistics
import subprocess
import sys

_FIT = r'''
import time, warnings
import torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
from sklearn.datasets import load_digits
from skvae import VAETransformer
X = load_digits().data / 16
vae = VAETransformer(n_components=8, likelihood="bernoulli", max_iter=40, tol=0,
                     n_iter_no_change=41, random_state=0, device="cpu")
start = time.process_time(); vae.fit(X); fit = time.process_time() - start
start = time.process_time(); vae.score_samples(X); score = time.process_time() - start
print(fit, score, vae.loss_curve_[-1])
'''


def run_once(checkout):
    """CPU seconds of fit and of score_samples, and the final loss, in a fresh process."""
    environment = {**os.environ, "PYTHONPATH": os.path.abspath(checkout)}
    output = subprocess.run([sys.executable, "-c", _FIT], cwd=checkout, env=environment,
                            capture_output=True, text=True, check=True).stdout
    fit, score, loss = (float(value) for value in output.split())
    return fit, score, loss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default=".")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--output")
    args = parser.parse_args()
    runs = {"before": [], "after": []}
    for repeat in range(args.repeats):
        order = ("before", "after") if repeat % 2 == 0 else ("after", "before")
        for name in order:
            runs[name].append(run_once(getattr(args, name)))
    fit_ratios = [a[0] / b[0] for a, b in zip(runs["after"], runs["before"])]
    score_ratios = [a[1] / b[1] for a, b in zip(runs["after"], runs["before"])]
    same_training = all(a[2] == b[2] for a, b in zip(runs["after"], runs["before"]))
    lines = [
        "# Fit and score time under two checkouts, alternated",
        "",
        "Produced by `python benchmarks/bench_ab_commits.py --before "
        f"{args.before} --after {args.after} --repeats {args.repeats}` on "
        f"{datetime.date.today()}, load average {os.getloadavg()[0]:.1f} at the end. "
        "Digits / 16, dense 512-256, 8 latent dimensions, Bernoulli, 40 epochs, one "
        "torch thread, CPU seconds.",
        "",
        "| | fit, median (s) | score_samples, median (s) | final loss |",
        "|---|---|---|---|",
    ]
    for name, values in runs.items():
        lines.append(f"| {name} | {statistics.median(v[0] for v in values):.3f} | "
                     f"{statistics.median(v[1] for v in values):.3f} | {values[0][2]!r} |")
    lines += [
        "",
        f"Fit, after / before: median **{statistics.median(fit_ratios):.3f}** "
        f"(per pair {', '.join(f'{r:.3f}' for r in fit_ratios)}); score_samples: "
        f"median **{statistics.median(score_ratios):.3f}**. Same training on both "
        f"sides (equal final losses): {same_training}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "w") as file:
            file.write(text)


if __name__ == "__main__":
    main()
