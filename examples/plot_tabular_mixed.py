"""
A mixed table with holes, as it comes: penguins
===============================================

Real tables mix numbers and categories and have holes. skvae's estimators take
them as they are, with no encoder, imputer or scaler in front: each column gets
its own likelihood (Gaussian for measurements, a softmax over the categories of
``species``, ``island`` and ``sex``), a missing entry is left out of the
likelihood, and the encoder is told which entries are observed.

This example fits :class:`skvae.VAETransformer` to the Palmer penguins
(``tabular/penguins.csv`` in the data folder, ``SKVAE_DATA`` or ``../shared/data``
beside the clone: 344 birds, 0.6 % of the cells missing; where the file is absent,
the iris flowers with a category and holes of their own), draws its 2-D latent space, fills the holes with
:class:`skvae.VAEImputer`, checks its imputations against cells we removed
ourselves, and compares synthetic penguins from :meth:`~skvae.VAETransformer.sample`
with real ones. Needs pandas.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer

from skvae import VAEImputer, VAETransformer
from skvae.plotting import LatentSpaceDisplay

from _data import QUICK, find_data, mark_quick, say_fallback  # examples/_data.py

OUTPUT = Path(__file__).resolve().parent / "output"
EPOCHS = 20 if QUICK else 200


def load_table():
    """``(frame, label column, x column, y column, name)``."""
    penguins, looked = find_data(Path("tabular") / "penguins.csv")
    if penguins is not None:
        return (pd.read_csv(penguins), "species", "flipper_length_mm", "body_mass_g",
                "penguins")
    say_fallback("penguins.csv", looked, "the iris flowers")
    iris = load_iris(as_frame=True)
    frame = iris.data.copy()
    frame["species"] = pd.Categorical(iris.target_names[iris.target])
    frame = frame.mask(np.random.RandomState(0).rand(*frame.shape) < 0.02)
    return frame, "species", "petal length (cm)", "sepal length (cm)", "iris"


# %%
# Fit on the raw table
# --------------------
# Strings, numbers and holes go in as they are. ``likelihood_`` is ``"mixed"``:
# one likelihood per column.

table, label, x_column, y_column, name = load_table()
print(table.head())
print(f"{name}: {table.shape[0]} rows, {table.isna().to_numpy().mean():.1%} of cells missing")

vae = VAETransformer(n_components=2, max_iter=EPOCHS, random_state=0).fit(table)
print("likelihood:", vae.likelihood_)

# %%
# The latent space
# ----------------
# Rows with holes are encoded too. The species separate in the 2-D codes,
# although the model never used them as labels: they are one column among
# the others.

fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
latent = LatentSpaceDisplay.from_estimator(vae, table, table[label], ax=axes[0])
codes = latent.Z
incomplete = table.isna().any(axis=1).to_numpy()
holes = axes[0].scatter(codes[incomplete, 0], codes[incomplete, 1], s=60,
                        facecolors="none", edgecolors="k", label="row with holes")
axes[0].set(title=f"2-D codes of the {name}")
axes[0].legend(handles=[*axes[0].get_legend().legend_handles, holes], title=label,
               fontsize=8)

# %%
# Imputation, checked against cells we removed
# --------------------------------------------
# Remove 20 % of the observed measurements at random, fill them with
# :class:`~skvae.VAEImputer` and with the column means, and compare with the truth.
# The imputer returns a DataFrame with the same columns and dtypes; imputed
# categories are categories.

rng = np.random.RandomState(1)
numeric = [c for c in table.select_dtypes("number").columns if c != "year"]  # measurements
removed = table[numeric].notna().to_numpy() & (rng.rand(len(table), len(numeric)) < 0.2)
holed = table.copy()
holed[numeric] = holed[numeric].mask(removed)
imputed = VAEImputer(random_state=0, max_iter=EPOCHS).fit_transform(holed)
means = SimpleImputer().fit_transform(holed[numeric])
truth = table[numeric].to_numpy()
scale = np.nanstd(truth, axis=0)
vae_error = np.abs((imputed[numeric].to_numpy() - truth) / scale)[removed].mean()
mean_error = np.abs((means - truth) / scale)[removed].mean()
print(f"mean absolute error on removed cells, in standard deviations: "
      f"VAEImputer {vae_error:.2f}, column means {mean_error:.2f}")
print(imputed[holed.isna().any(axis=1)].head())

j = list(numeric).index(y_column)
rows = removed[:, j]
axes[1].scatter(truth[rows, j], imputed[y_column].to_numpy()[rows], s=12, label="VAEImputer")
axes[1].scatter(truth[rows, j], means[rows, j], s=12, marker="x", label="column mean")
low, high = np.nanmin(truth[:, j]), np.nanmax(truth[:, j])
axes[1].plot([low, high], [low, high], "k--", linewidth=1)
axes[1].set(title="removed cells: imputed against true", xlabel=f"true {y_column}",
            ylabel="imputed")
axes[1].legend(fontsize=8)

# %%
# Synthetic rows
# --------------
# :meth:`~skvae.VAETransformer.sample` returns a DataFrame like the one fitted:
# the same columns, dtypes and categories. Synthetic penguins follow the real
# ones, species by species. Their codes come from the Gaussian mixture fitted
# to the training rows' codes (``sampling_prior="mixture"``, the default), where
# N(0, I) would also draw from the holes between the species. Each numeric
# column is modelled through its quantile map (``numeric_transform="auto"``, the
# default for a table with categories), so a skewed body mass comes back skewed
# and a value many penguins share comes back as often; every number stays
# within its column's observed range, whole-number columns (``year``) rounded.

synthetic = vae.sample(len(table), random_state=0)
print(synthetic.head())
numbers = table.select_dtypes("number").columns
inside = ((synthetic[numbers] >= table[numbers].min())
          & (synthetic[numbers] <= table[numbers].max())).all()
print("every sample inside the observed range:", bool(inside.all()))
for value, colour in zip(latent.classes_, plt.cm.tab10.colors):  # the latent plot's colours
    real = table[table[label] == value]
    fake = synthetic[synthetic[label] == value]
    axes[2].scatter(real[x_column], real[y_column], s=12, color=colour, alpha=0.5,
                    label=f"{value} (real)")
    axes[2].scatter(fake[x_column], fake[y_column], s=12, color=colour, marker="x",
                    label=f"{value} (synthetic)")
axes[2].set(title="real and synthetic rows", xlabel=x_column, ylabel=y_column)
axes[2].legend(fontsize=7)
fig.tight_layout()
mark_quick(fig)
OUTPUT.mkdir(exist_ok=True)
fig.savefig(OUTPUT / "tabular_mixed.png", dpi=100)
print(f"wrote {OUTPUT / 'tabular_mixed.png'}")

# %%
# Samples given some columns
# --------------------------
# ``sample(n, given=row)`` keeps the entries ``row`` sets and draws the others
# (NaN) from the model given them: here rows of one species only. Half of the
# latent draws it resamples come from the prior, so a row that holds nothing
# but a category still gets draws where that category lives.

first = latent.classes_[0]
given = table.iloc[:1].copy()
for column in table.columns.drop(label):
    given[column] = np.nan
given[label] = first
drawn = vae.sample(500, given=given, random_state=0)
real = table[table[label] == first]
print(f"{first}: means of the real rows and of 500 rows drawn given {label}")
print(pd.DataFrame({"real": real[numeric].mean(), "drawn": drawn[numeric].mean()}).round(1))
