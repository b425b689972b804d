"""The Display objects draw what they promise on the axes they keep."""

import warnings

import matplotlib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skvae import VAEOutlierDetector, VAETransformer
from skvae.plotting import (
    FeatureScoreDisplay,
    ImageGridDisplay,
    LatentManifoldDisplay,
    LatentSpaceDisplay,
    ReconstructionDisplay,
    TrainingCurveDisplay,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def vae_and_X():
    X = np.random.RandomState(0).uniform(size=(40, 16))
    vae = VAETransformer(n_components=3, hidden_layer_sizes=(8,), max_iter=3,
                         early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    return vae, X


def test_latent_space_scatter_of_chosen_dims(vae_and_X):
    vae, X = vae_and_X
    y = np.arange(40) % 3
    _, ax = plt.subplots()
    display = LatentSpaceDisplay.from_estimator(vae, X, y, dims=(2, 0), ax=ax)
    assert display.ax_ is ax and display.figure_ is ax.figure
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets, vae.transform(X)[:, [2, 0]], rtol=1e-6)
    assert ax.get_xlabel() == "latent dimension 2"
    assert ax.get_legend() is not None
    with pytest.raises(ValueError, match="dims"):
        LatentSpaceDisplay.from_estimator(vae, X, dims=(0, 3))


def test_manifold_decodes_a_grid(vae_and_X):
    vae, _ = vae_and_X
    display = LatentManifoldDisplay.from_estimator(vae, n_points=4, grid_range=(-1, 1))
    np.testing.assert_allclose(display.grid, np.linspace(-1, 1, 4))
    # Top-left image: lowest dim 0, highest dim 1; other dims at 0.
    np.testing.assert_allclose(
        display.images[0], vae.inverse_transform([[-1.0, 1.0, 0.0]])[0], rtol=1e-6
    )
    image = display.ax_.get_images()[0]
    assert image.get_array().shape == (4 * 5 - 1, 4 * 5 - 1)
    extent = image.get_extent()
    assert extent[0] < -1 < 1 < extent[1]


def test_manifold_needs_two_latent_dims():
    X = np.random.RandomState(0).uniform(size=(20, 4))
    vae = VAETransformer(n_components=1, hidden_layer_sizes=(4,), max_iter=1,
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    with pytest.raises(ValueError, match="at least 2 latent dimensions"):
        LatentManifoldDisplay.from_estimator(vae)


def test_reconstructions_below_originals(vae_and_X):
    vae, X = vae_and_X
    display = ReconstructionDisplay.from_estimator(vae, X, n_images=5)
    np.testing.assert_array_equal(display.rows[0], X[:5])
    np.testing.assert_allclose(
        display.rows[1], vae.inverse_transform(vae.transform(X[:5])), rtol=1e-6
    )
    assert display.ax_.get_images()[0].get_array().shape == (2 * 5 - 1, 5 * 5 - 1)
    noisy = ReconstructionDisplay.from_estimator(vae, X * 0.9, X_clean=X, n_images=5)
    labels = [t.get_text() for t in noisy.ax_.get_yticklabels()]
    assert labels == ["original", "noisy input", "reconstruction"]


def test_image_grid_of_samples_uses_fitted_image_shape():
    X = np.random.RandomState(0).uniform(size=(20, 2 * 3))
    vae = VAETransformer(architecture="conv", image_shape=(2, 3), conv_channels=(2,),
                         conv_dense_width=4, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    display = ImageGridDisplay.from_estimator(vae, n_rows=2, n_cols=3)
    assert display.images.shape == (6, 6)
    assert display.ax_.get_images()[0].get_array().shape == (2 * 3 - 1, 3 * 4 - 1)
    with pytest.raises(ValueError, match="image_shape"):
        ImageGridDisplay.from_estimator(vae, image_shape=(4, 4))


def test_rgb_images_are_drawn_in_colour():
    images = np.random.RandomState(0).uniform(size=(4, 3 * 2 * 2))
    display = ImageGridDisplay(images, image_shape=(3, 2, 2), n_cols=2).plot()
    assert display.ax_.get_images()[0].get_array().shape == (5, 5, 3)


def test_training_curve(vae_and_X):
    vae, _ = vae_and_X
    display = TrainingCurveDisplay.from_estimator(vae)
    train, validation = display.ax_.get_lines()
    np.testing.assert_allclose(train.get_ydata(), vae.loss_curve_)
    np.testing.assert_allclose(validation.get_ydata(), -np.asarray(vae.validation_scores_))
    np.testing.assert_array_equal(train.get_xdata(), np.arange(1, vae.n_iter_ + 1))


def test_matplotlib_is_imported_by_plotting_only():
    import subprocess
    import sys

    code = "import sys, skvae, skvae.datasets; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def _legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


@pytest.mark.parametrize("make_labels, names", [
    (lambda n: np.array(["Adelie", "Gentoo", "Chinstrap", "Adelie"] * (n // 4)),
     ["Adelie", "Chinstrap", "Gentoo"]),
    (lambda n: (np.arange(n) % 3 == 0), ["False", "True"]),
    (lambda n: np.arange(n) % 3 + 7, ["7", "8", "9"]),
    (lambda n: np.array(["a", "b"] * (n // 2), dtype=object), ["a", "b"]),
    (lambda n: ["x", "y", "z", "x"] * (n // 4), ["x", "y", "z"]),
], ids=["strings", "bools", "ints", "object", "list"])
def test_latent_space_takes_any_classifier_labels_with_a_legend_of_names(
        vae_and_X, make_labels, names):
    vae, X = vae_and_X
    labels = make_labels(len(X))
    display = LatentSpaceDisplay.from_estimator(vae, X, labels)
    assert _legend_texts(display.ax_) == names
    assert list(map(str, display.classes_)) == names
    # Every point in one scatter, coloured by its class: a colour per class.
    scatter = display.ax_.collections[0]
    assert len(scatter.get_offsets()) == len(X)
    colours = {tuple(c) for c in scatter.get_facecolors()}
    assert len(colours) == len(names)


def test_latent_space_takes_a_pandas_column_and_titles_the_legend(vae_and_X):
    pd = pytest.importorskip("pandas")
    vae, X = vae_and_X
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df["species"] = pd.Categorical(["Gentoo", "Adelie"] * (len(X) // 2))
    display = LatentSpaceDisplay.from_estimator(vae, df.drop(columns="species").to_numpy(),
                                                df["species"])
    assert _legend_texts(display.ax_) == ["Adelie", "Gentoo"]
    assert display.ax_.get_legend().get_title().get_text() == "species"
    strings = df["species"].astype(str)
    display = LatentSpaceDisplay.from_estimator(vae, X, strings)
    assert _legend_texts(display.ax_) == ["Adelie", "Gentoo"]


def test_latent_space_continuous_labels_get_a_colour_bar(vae_and_X):
    vae, X = vae_and_X
    display = LatentSpaceDisplay.from_estimator(vae, X, np.linspace(0.1, 0.9, len(X)))
    assert display.classes_ is None and display.ax_.get_legend() is None
    assert len(display.figure_.axes) == 2  # the plot and its colour bar


def test_latent_space_refuses_labels_of_another_length(vae_and_X):
    vae, X = vae_and_X
    with pytest.raises(ValueError, match="y has 3 labels but X has 40 rows"):
        LatentSpaceDisplay.from_estimator(vae, X, ["a", "b", "c"])


def test_latent_space_draws_missing_labels_as_missing(vae_and_X):
    pd = pytest.importorskip("pandas")
    vae, X = vae_and_X
    labels = pd.Series(pd.Categorical(["a", None, "b", "a"] * (len(X) // 4)), name="kind")
    display = LatentSpaceDisplay.from_estimator(vae, X, labels)
    assert _legend_texts(display.ax_) == ["a", "b", "missing"]
    assert len(display.ax_.collections[0].get_offsets()) == len(X)
    objects = np.array(["x", np.nan, "y", None] * (len(X) // 4), dtype=object)
    display = LatentSpaceDisplay.from_estimator(vae, X, objects)
    assert _legend_texts(display.ax_) == ["x", "y", "missing"]


# ------------------------------------------------------------ feature scores


@pytest.fixture(scope="module")
def detector_and_frame():
    import pandas as pd

    rng = np.random.RandomState(0)
    base = rng.normal(size=(300, 1))
    frame = pd.DataFrame(base + 0.2 * rng.normal(size=(300, 5)),
                         columns=["a", "b", "c", "d", "e"])
    detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=20, random_state=0,
                                  device="cpu").fit(frame)
    return detector, frame


def test_feature_scores_draw_the_lowest_columns_of_the_row_by_name(detector_and_frame):
    detector, frame = detector_and_frame
    rows = frame.iloc[:3].copy()
    rows.iloc[1, 3] += 8  # column "d" of the second row is far out
    display = FeatureScoreDisplay.from_estimator(detector, rows, row=1, n_top=3)
    labels = [label.get_text() for label in display.ax_.get_yticklabels()]
    assert len(labels) == 3 and labels[0] == "d"
    scores = np.asarray(detector.score_features(rows.iloc[[1]]))[0]
    widths = [patch.get_width() for patch in display.ax_.patches]
    np.testing.assert_allclose(widths, np.sort(scores)[:3])
    assert display.figure_ is display.ax_.figure
    assert list(display.shown_) == list(np.argsort(scores)[:3])


def test_feature_scores_of_an_array_use_positional_names_and_given_axes():
    X = np.random.RandomState(0).normal(size=(200, 4))
    detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                                  device="cpu").fit(X)
    _, ax = plt.subplots()
    display = FeatureScoreDisplay.from_estimator(detector, X[:5].tolist(), row=-1, ax=ax)
    assert display.ax_ is ax
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == ["x0", "x1", "x2", "x3"]
    for bad, message in [({"row": 5}, "row=5 is not a row of X, which has 5 rows"),
                         ({"n_top": 0}, "n_top=0 must be a positive integer")]:
        with pytest.raises(ValueError, match=message):
            FeatureScoreDisplay.from_estimator(detector, X[:5], **bad)


def test_feature_scores_of_an_image_are_a_heat_map_over_it():
    rng = np.random.RandomState(0)
    images = (rng.uniform(size=(64, 16)) < 0.3).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        detector = VAEOutlierDetector(
            architecture="conv", image_shape=(1, 4, 4), conv_channels=(2,),
            conv_dense_width=8, likelihood="bernoulli", max_iter=2, random_state=0,
            device="cpu").fit(images)
    display = FeatureScoreDisplay.from_estimator(detector, images, row=2)
    heat = display.ax_.get_images()[0].get_array()
    assert heat.shape == (4, 4)
    np.testing.assert_allclose(
        heat, -detector.score_features(images[2:3])[0].reshape(4, 4))
    # A dense detector's rows drawn as images when asked.
    dense = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=2, random_state=0,
                               device="cpu", likelihood="bernoulli").fit(images)
    display = FeatureScoreDisplay.from_estimator(dense, images, image_shape=(4, 4))
    assert display.ax_.get_images()[0].get_array().shape == (4, 4)


def test_feature_scores_of_a_pipeline_name_the_columns_its_steps_give(detector_and_frame):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    _, frame = detector_and_frame
    pipe = make_pipeline(MinMaxScaler(), VAEOutlierDetector(
        hidden_layer_sizes=(8,), max_iter=20, random_state=0, device="cpu")).fit(frame)
    rows = frame.iloc[:2].copy()
    rows.iloc[0, 1] += 8  # column "b"
    display = FeatureScoreDisplay.from_estimator(pipe, rows, n_top=2)
    assert display.ax_.get_yticklabels()[0].get_text() == "b"
    scaled = pipe[:-1].transform(rows.iloc[[0]])
    np.testing.assert_allclose(sorted(p.get_width() for p in display.ax_.patches),
                               np.sort(pipe[-1].score_features(scaled)[0])[:2])
