"""The digits' fit budget at one thread: today's defaults against shorter plans (issue 20).

Issue 20 asks for today's held-out likelihood (within 0.5 nats) in a quarter of
the fit time of the defaults before it, at equal threads. This sweep fits
``VAETransformer(n_components=8, likelihood="bernoulli")`` on the digits / 16
(``bench_defaults.py``'s split: ``train_test_split(random_state=0)``, 1,347
training and 450 held-out images) at one torch thread, seeds 0-2, with each arm's
parameters over the defaults, and reports the epochs, the mean fit CPU seconds
and the mean held-out IW log-likelihood (``score``, 50 draws). With
``--before PATH`` the defaults of the checkout at PATH run first, in a process
of their own, and every arm's time is also given as a ratio to theirs.

::

    SKVAE_THREADS=1 PYTHONPATH=. python benchmarks/sweep_digits_budget.py --before /tmp/oldtree \\
        --arms '{"max_iter=80, 4e-3": {"max_iter": 80, "learning_rate_init": 0.004}}'
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

SEEDS = (0, 1, 2)
BASE = {"n_components": 8, "likelihood": "bernoulli"}


def run_arm(params):
    """Epochs, mean fit CPU seconds and mean held-out IW log-likelihood of one arm."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from skvae import VAETransformer

    torch.set_num_threads(1)
    X_train, X_test = train_test_split(load_digits().data / 16, random_state=0)
    epochs, seconds, scores = [], [], []
    for seed in SEEDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.process_time()
            vae = VAETransformer(random_state=seed, **BASE, **params).fit(X_train)
            seconds.append(time.process_time() - start)
        epochs.append(vae.n_iter_)
        scores.append(vae.score(X_test))
    return {"epochs": epochs, "cpu": float(np.mean(seconds)),
            "loglik": float(np.mean(scores)), "logliks": [float(s) for s in scores]}


def run_before(tree):
    """:func:`run_arm` of the defaults of the checkout at ``tree``, in a fresh process."""
    environment = {**os.environ, "PYTHONPATH": str(tree), "SKVAE_THREADS": "1"}
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
            "import sweep_digits_budget as s; print(json.dumps(s.run_arm({})))")
    output = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).resolve().parent)],
        env=environment, cwd=tree, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="checkout whose defaults are the reference")
    parser.add_argument("--arms", default="{}",
                        help="JSON object: arm name -> parameters over the defaults")
    args = parser.parse_args(argv)
    arms = {"defaults": {}, **json.loads(args.arms)}
    rows = []
    reference = None
    if args.before is not None:
        reference = run_before(args.before)
        rows.append(("defaults of " + args.before.name, reference))
        print(rows[-1], flush=True)
    for name, params in arms.items():
        rows.append((name, run_arm(params)))
        print(rows[-1], flush=True)
    print("| arm | epochs (seeds 0-2) | fit CPU s | x before | held-out IW log-lik. | per seed |")
    print("|---|---|---|---|---|---|")
    for name, result in rows:
        ratio = f"{result['cpu'] / reference['cpu']:.2f}" if reference else "-"
        print(f"| {name} | {' / '.join(map(str, result['epochs']))} | {result['cpu']:.2f} | "
              f"{ratio} | {result['loglik']:.2f} | "
              f"{' / '.join(f'{s:.2f}' for s in result['logliks'])} |")


if __name__ == "__main__":
    main()
