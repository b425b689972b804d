"""What ``contamination="auto"`` flags: thresholds on the training scores, on ADBench.

For each of the 12 ADBench data sets and seeds 1, 2, 3 (the protocol of
``bench_adbench.py``), fits ``VAEOutlierDetector`` at its defaults on the training
part, then sets the threshold on its training scores by several rules and reports,
on the test part, the share of rows flagged against the true share of anomalies,
precision and recall. One fit serves every rule, so they differ only in the rule.

Rules: Tukey's lower fence ``Q1 - k IQR`` for k = 1.5 (skvae 0.1's "auto") and 3
("far out"), and the robust z-score ``(score - median) / (1.4826 MAD) < -z`` for
z = 3.5 (Iglewicz and Hoaglin) and 5.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_contamination.py --output benchmarks/results_contamination.md
"""

import argparse
import datetime
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_adbench import DEFAULT_DATA_DIR, protocol_splits  # noqa: E402

from skvae import VAEOutlierDetector  # noqa: E402


def tukey(scores, k):
    q1, q3 = np.percentile(scores, [25.0, 75.0])
    return q1 - k * (q3 - q1)


def robust_z(scores, z):
    median = np.median(scores)
    mad = 1.4826 * np.median(np.abs(scores - median))
    return median - z * mad


RULES = {
    "Tukey k=1.5": lambda s: tukey(s, 1.5),
    "Tukey k=3": lambda s: tukey(s, 3.0),
    "robust z=3.5": lambda s: robust_z(s, 3.5),
    "robust z=5": lambda s: robust_z(s, 5.0),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="benchmarks/output/results_contamination.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = []
    for path in sorted(Path(DEFAULT_DATA_DIR).glob("*.npz")):
        data = np.load(path)
        X, y = data["X"].astype(np.float64), data["y"].astype(int)
        per_rule = {rule: [] for rule in RULES}
        true_share = []
        for seed in (1, 2, 3):
            X_train, X_test, y_test = protocol_splits(X, y, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                detector = VAEOutlierDetector(random_state=seed).fit(X_train)
            train_scores = detector.score_samples(X_train)
            test_scores = detector.score_samples(X_test)
            true_share.append(y_test.mean())
            for rule, threshold in RULES.items():
                flagged = test_scores < threshold(train_scores)
                hits = np.sum(flagged & (y_test == 1))
                per_rule[rule].append((
                    flagged.mean(),
                    hits / max(1, flagged.sum()),
                    hits / max(1, y_test.sum()),
                ))
        for rule, values in per_rule.items():
            share, precision, recall = np.mean(values, axis=0)
            rows.append((path.stem, rule, float(np.mean(true_share)), share, precision, recall))
            print(f"{path.stem:16s} {rule:13s} true {np.mean(true_share):.3f} flagged "
                  f"{share:.3f} precision {precision:.3f} recall {recall:.3f}", flush=True)
    lines = [
        "# What `contamination=\"auto\"` flags, on ADBench",
        "",
        f"Produced by `PYTHONPATH=. python benchmarks/bench_contamination.py --output "
        f"{args.output}` on {datetime.date.today()} "
        f"({(time.perf_counter() - start) / 60:.0f} min), one torch thread.",
        "",
        "ADBench protocol of `bench_adbench.py` (seeds 1, 2, 3, 70/30 split, MinMaxScaler), "
        "VAEOutlierDetector at its defaults; thresholds set on the training scores, "
        "evaluated on the test part: share of rows flagged, precision and recall of the "
        "flagged rows against the labels, means over seeds.",
        "",
        "| data set | true share | " + " | ".join(
            f"{rule}: flagged / precision / recall" for rule in RULES) + " |",
        "|---|---|" + "---|" * len(RULES),
    ]
    names = sorted({row[0] for row in rows})
    for name in names:
        cells = {row[1]: row for row in rows if row[0] == name}
        true = next(iter(cells.values()))[2]
        lines.append(f"| {name} | {true:.3f} | " + " | ".join(
            f"{cells[r][3]:.3f} / {cells[r][4]:.2f} / {cells[r][5]:.2f}" for r in RULES) + " |")
    means = {r: np.mean([row[3:] for row in rows if row[1] == r], axis=0) for r in RULES}
    true_mean = np.mean([row[2] for row in rows if row[1] == "Tukey k=1.5"])
    lines.append(f"| **mean** | **{true_mean:.3f}** | " + " | ".join(
        f"**{m[0]:.3f} / {m[1]:.2f} / {m[2]:.2f}**" for m in means.values()) + " |")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
