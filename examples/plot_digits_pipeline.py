"""
Dimensionality reduction in a pipeline: VAE against PCA on the digits
=====================================================================

``VAETransformer`` is a transformer like ``PCA``: it sits in a ``Pipeline`` between
a scaler and a classifier. Here both reduce scikit-learn's 8 x 8 digits to 2 and
to 8 dimensions, a logistic regression is fitted on the codes, and the test
accuracy of each pipeline is printed. The figure shows the two 2-D embeddings of
the test images.

Run ``python examples/plot_digits_pipeline.py``; the figure is written to
``examples/output/``. ``SKVAE_EXAMPLE_QUICK=1`` trains for a few epochs only (CI).
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAETransformer
from skvae.plotting import LatentSpaceDisplay

from _data import mark_quick  # examples/_data.py, beside this script

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)

# %%
# Fit four pipelines: PCA or a VAE, with 2 or 8 components
# --------------------------------------------------------

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipelines = {}
for n_components in (2, 8):
    for name, reducer in [
        ("PCA", PCA(n_components=n_components, random_state=0)),
        ("VAE", VAETransformer(n_components=n_components, hidden_layer_sizes=(256, 128),
                               likelihood="bernoulli", max_iter=3 if QUICK else 100,
                               random_state=0)),
    ]:
        # MinMaxScaler puts the grey levels in [0, 1], which the Bernoulli
        # likelihood models; clip=True keeps test images inside that range too.
        pipeline = make_pipeline(
            MinMaxScaler(clip=True), reducer, LogisticRegression(max_iter=2000)
        )
        pipeline.fit(X_train, y_train)
        pipelines[name, n_components] = pipeline
        print(f"{name} {n_components}-D codes -> logistic regression: test accuracy "
              f"{pipeline.score(X_test, y_test):.3f}")

# %%
# The 2-D codes of the test digits
# --------------------------------

fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
for ax, name in zip(axes, ("PCA", "VAE")):
    pipeline = pipelines[name, 2]
    X_scaled = pipeline[0].transform(X_test)
    reducer = pipeline[1]
    if name == "VAE":
        LatentSpaceDisplay.from_estimator(reducer, X_scaled, y_test, ax=ax)
    else:
        LatentSpaceDisplay(reducer.transform(X_scaled), labels=y_test).plot(ax=ax)
        ax.set_xlabel("principal component 1")
        ax.set_ylabel("principal component 2")
    ax.set_title(f"{name}: 2-D codes of the test digits "
                 f"(accuracy {pipeline.score(X_test, y_test):.2f})")
fig.tight_layout()
mark_quick(fig)
path = OUTPUT / "digits_pipeline.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")
