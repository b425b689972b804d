"""
Outlier detection with a variational autoencoder
================================================

Fit :class:`skvae.VAEOutlierDetector` without labels on data that contains
anomalies, and look at where its threshold falls in the distribution of scores.

The data are ADBench's cardiotocography set (``6_cardio``: fetal heart-rate
records, pathologic ones are the anomalies) when ``adbench/6_cardio.npz`` is in the
data folder (``SKVAE_DATA``, see :func:`skvae.datasets.get_data_home`, or
``../shared/data`` beside the clone), and otherwise scikit-learn's breast-cancer data with the
malignant tumours thinned to 5 % as the anomalies. Following the ADBench
protocol, features are scaled with a ``MinMaxScaler`` fitted on the training part
only, so test rows may fall outside [0, 1]: the detector scores them all the same.

The plot shows held-out ``score_samples`` (higher is more normal) for normal and
anomalous rows, and ``offset_``, the threshold below which ``predict`` returns -1.
With ``contamination="auto"`` it is Tukey's far-out lower fence of the training
scores, ``Q1 - 3 IQR``. Then a threshold set by false-alarm rate, p-values, and
the columns that make the least likely test row an outlier.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAEOutlierDetector
from skvae.plotting import FeatureScoreDisplay

from _data import find_data, mark_quick, say_fallback  # examples/_data.py

OUTPUT = Path(__file__).resolve().parent / "output"


def load_data():
    cardio, looked = find_data(Path("adbench") / "6_cardio.npz")
    if cardio is not None:
        data = np.load(cardio)
        return data["X"], data["y"].astype(int), "ADBench 6_cardio"
    say_fallback("6_cardio.npz", looked, "scikit-learn's breast cancer data")
    X, y = load_breast_cancer(return_X_y=True)
    y = 1 - y  # malignant (0 in scikit-learn) is the anomaly
    rng = np.random.RandomState(0)
    normal, anomalous = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    keep = np.r_[normal, rng.choice(anomalous, int(0.05 * len(normal)), replace=False)]
    return X[keep], y[keep], "breast cancer (malignant thinned to 5 %)"


# %%
# Fit the detector without labels
# -------------------------------

X, y, name = load_data()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
# At its defaults (100 epochs of 512-row batches) the fit takes about a second.
detector = make_pipeline(MinMaxScaler(), VAEOutlierDetector(random_state=0))
detector.fit(X_train)  # no labels: the training part contains the anomalies

# %%
# Score held-out rows and apply the threshold
# -------------------------------------------

scores = detector.score_samples(X_test)
offset = detector[-1].offset_
flagged = detector.predict(X_test) == -1
auc = roc_auc_score(y_test, -scores)
print(f"{name}: {X.shape[0]} rows, {y.mean():.1%} anomalies")
print(f"held-out ROC-AUC {auc:.3f}; flagged {flagged.mean():.1%} of the test rows")
print(f"recall of anomalies {flagged[y_test == 1].mean():.1%}, "
      f"false alarms {flagged[y_test == 0].mean():.1%} of normal rows")

# Log-likelihoods of anomalies have a long lower tail: clip it for the histogram.
low = np.percentile(scores, 1)
bins = np.linspace(low, scores.max(), 50)
fig, ax = plt.subplots(figsize=(7, 4))
ax.hist(np.clip(scores[y_test == 0], low, None), bins=bins, alpha=0.6, label="normal")
ax.hist(np.clip(scores[y_test == 1], low, None), bins=bins, alpha=0.6, label="anomaly")
ax.axvline(offset, color="k", linestyle="--", label="threshold (offset_)")
ax.set_xlabel("score_samples (log-likelihood, nats; lowest 1 % clipped)")
ax.set_ylabel("test rows")
ax.set_title(f"VAEOutlierDetector on {name}: ROC-AUC {auc:.3f}")
ax.legend()
fig.tight_layout()
mark_quick(fig)
OUTPUT.mkdir(exist_ok=True)
fig.savefig(OUTPUT / "outlier_scores.png", dpi=100)
print(f"wrote {OUTPUT / 'outlier_scores.png'}")

# %%
# A threshold by false-alarm rate, and p-values
# ---------------------------------------------
#
# ``set_threshold`` moves ``offset_`` to the 5 % quantile of the scores of rows
# known to be normal (here half of the normal test rows), so that about 5 % of
# new normal rows are flagged. ``p_values`` compares each row's score with the
# training rows' scores instead, and needs no clean rows. The detector is the
# pipeline's last step: it reads the scaled rows.

scaled_test = detector[:-1].transform(X_test)
normal = np.flatnonzero(y_test == 0)
calibration, held_out = normal[::2], normal[1::2]
detector[-1].set_threshold(scaled_test[calibration], fpr=0.05)
flagged = detector[-1].predict(scaled_test) == -1
p_values = detector[-1].p_values(scaled_test)
print(f"set_threshold(fpr=0.05): {flagged[held_out].mean():.1%} of held-out normal rows "
      f"flagged, {flagged[y_test == 1].mean():.1%} of anomalies")
print(f"p_values <= 0.05: {np.mean(p_values[held_out] <= 0.05):.1%} of held-out normal "
      f"rows, {np.mean(p_values[y_test == 1] <= 0.05):.1%} of anomalies")

# %%
# A row explained
# ---------------
#
# ``score_features`` splits a row's score among its columns: entry ``j`` is the
# log-density of column ``j`` given the row's latent code, so the lowest entries
# are the columns that make the row unusual. ``FeatureScoreDisplay`` draws the
# lowest ones of the test row the detector finds least likely.

worst = int(np.argmin(scores))
# Given the whole pipeline, the display scales the row before the detector reads it.
display = FeatureScoreDisplay.from_estimator(detector, X_test, row=worst, n_top=8)
display.ax_.set_title(f"Test row {worst} (p-value {p_values[worst]:.4f}): its 8 "
                      "least likely columns")
display.figure_.tight_layout()
mark_quick(display.figure_)
display.figure_.savefig(OUTPUT / "outlier_row_explained.png", dpi=100)
print(f"wrote {OUTPUT / 'outlier_row_explained.png'}")
