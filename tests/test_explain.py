"""Per-feature scores, thresholds by false-alarm rate and p-values of the detector."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.exceptions import ConvergenceWarning

import skvae
from skvae import ModelFileError, VAEOutlierDetector, load, save
from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood, MixedLikelihood
from skvae._outlier import MAX_REFERENCE_SCORES, conformal_p_values, reference_scores

from _model_files import read_model_file, write_model_file


def fit(X, **params):
    defaults = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VAEOutlierDetector(**{**defaults, **params}).fit(X)


def correlated(n, seed=0, n_features=4):
    rng = np.random.RandomState(seed)
    latent = rng.normal(size=(n, 2))
    mixing = np.random.RandomState(99).normal(size=(2, n_features))
    noise = 0.3 * rng.normal(size=(n, n_features))
    return (latent @ mixing + noise) * np.arange(1, n_features + 1) + 5


@pytest.fixture(scope="module")
def X():
    return correlated(400)


@pytest.fixture(scope="module", params=["log_likelihood", "reconstruction"])
def detector(request, X):
    return fit(X, anomaly_score=request.param)


# ------------------------------------------------- per-entry terms: closed forms


def test_gaussian_terms_are_the_normal_log_densities_and_sum_to_log_prob():
    torch.manual_seed(0)
    likelihood = GaussianLikelihood(5)
    with torch.no_grad():
        likelihood.raw_variance.copy_(torch.randn(5))
    x, loc = torch.randn(7, 5), torch.randn(7, 5)
    terms = likelihood.log_prob_terms(x, loc)
    sd = likelihood.variance.sqrt().detach().numpy()
    expected = stats.norm.logpdf(x.numpy(), loc.numpy(), sd)
    np.testing.assert_allclose(terms.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms.sum(-1), likelihood.log_prob(x, loc))


def test_bernoulli_terms_are_the_log_probabilities_and_sum_to_log_prob():
    likelihood = BernoulliLikelihood(6)
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.25, 1.0]])
    logits = torch.randn(3, 1, 6)  # three draws of one row: x broadcasts
    terms = likelihood.log_prob_terms(x, logits)
    p = torch.sigmoid(logits).numpy()
    expected = x.numpy() * np.log(p) + (1 - x.numpy()) * np.log1p(-p)
    np.testing.assert_allclose(terms.numpy(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms.sum(-1), likelihood.log_prob(x, logits))


def test_mixed_terms_have_one_entry_per_column_a_category_in_one():
    likelihood = MixedLikelihood(2, 1, [3, 2])
    assert likelihood.n_columns == 5
    x = torch.tensor([[0.5, -1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]])
    params = torch.randn(1, 8)
    terms = likelihood.log_prob_terms(x, params)
    assert terms.shape == (1, 5)
    categories = torch.log_softmax(params[0, 3:6], dim=-1)
    torch.testing.assert_close(terms[0, 2], -torch.nn.functional.binary_cross_entropy_with_logits(
        params[0, 2], x[0, 2]))
    torch.testing.assert_close(terms[0, 3], categories[2])
    torch.testing.assert_close(terms[0, 4], torch.log_softmax(params[0, 6:], dim=-1)[1])
    torch.testing.assert_close(terms.sum(-1), likelihood.log_prob(x, params))
    # Per column: the entropies of entropy() (a category's sits in its block's first
    # entry) and the observed flags of a mask (a block is observed as a whole).
    entropy = likelihood.entropy(params)
    column_entropy = likelihood.column_entropy(params)
    torch.testing.assert_close(column_entropy[0, [0, 1, 2, 3, 4]], entropy[0, [0, 1, 2, 3, 6]])
    observed = torch.tensor([[True, False, True, False, False, False, True, True]])
    assert likelihood.column_observed(observed).tolist() == [[True, False, True, False, True]]


# ------------------------------------------------------ the detector's method


def test_reconstruction_shares_add_up_to_score_samples_with_and_without_holes(X):
    detector = fit(X, anomaly_score="reconstruction")
    rows = X[:50].copy()
    rows[::3, 1] = np.nan
    rows[::7, [0, 3]] = np.nan
    for data in (X[:50], rows):
        np.testing.assert_allclose(detector.score_features(data).sum(axis=1),
                                   detector.score_samples(data), rtol=0, atol=2e-5)


def test_reconstruction_shares_are_normal_densities_of_the_users_values(X):
    # Closed form in data units: N(x_j; E[x_j | z], (sigma_j * scale_j)^2) at z = E[z | x].
    detector = fit(X, anomaly_score="reconstruction")
    rows = X[:20]
    loc = detector.decode(detector.encode(rows))
    model = detector._model
    sd = np.sqrt(detector.module_.likelihood.variance.detach().double().numpy()) * \
        model.data_space.scale
    np.testing.assert_allclose(detector.score_features(rows),
                               stats.norm.logpdf(rows, loc, sd), rtol=1e-5, atol=1e-4)


def test_log_likelihood_shares_are_the_importance_weighted_reconstruction_term(X):
    detector = fit(X)
    rows = X[:30]
    model = detector._model
    x = model.data_space.to_tensor(rows, "cpu")
    noise = model.row_noise(x, model.noise_seed, detector.n_importance_samples)
    with torch.no_grad():
        params, weights = detector.module_._importance_weights(x, noise)
        expected = (weights * detector.module_.likelihood.log_prob(x, params)).sum(0)
    expected = expected.double().numpy() - model.data_space.log_abs_det
    features = detector.score_features(rows)
    np.testing.assert_allclose(features.sum(axis=1), expected, rtol=0, atol=1e-4)
    # log p(x) = E[log p(x | z)] - KL(p(z | x) || p(z)): the shares sum to at
    # least the score, up to the Monte-Carlo error of the two estimates.
    assert np.mean(features.sum(axis=1) - detector.score_samples(rows)) > 0


def test_a_corrupted_column_ranks_first():
    X = correlated(1500, n_features=6)
    detector = fit(X, max_iter=40)
    test = correlated(60, seed=1, n_features=6)
    columns = np.arange(60) % 6
    sd = X.std(axis=0)
    test[np.arange(60), columns] += np.where(np.arange(60) % 2, 5, -5) * sd[columns]
    top = np.argmin(detector.score_features(test), axis=1)
    assert np.mean(top == columns) >= 0.8


def test_shares_do_not_depend_on_the_batch(detector, X):
    # More rows than one inference chunk (256 reconstruction rows, 320 rows of 50
    # draws), in another order, and one row at a time: the same bits.
    rows = np.vstack([X, X[:300] + 0.1])
    full = detector.score_features(rows)
    order = np.random.RandomState(0).permutation(len(rows))
    np.testing.assert_array_equal(detector.score_features(rows[order]), full[order])
    for i in (0, 321, 650):
        np.testing.assert_array_equal(detector.score_features(rows[i : i + 1])[0], full[i])
    np.testing.assert_array_equal(detector.score_features(rows), full)  # deterministic
    assert full.dtype == np.float64 and full.shape == rows.shape
    np.testing.assert_array_equal(detector.score_features(rows.astype(np.float32))[:3].shape,
                                  (3, rows.shape[1]))


def test_latent_score_has_no_shares_and_says_what_to_do(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        detector = fit(X, anomaly_score="latent", max_iter=2)
    before = dict(vars(detector))
    with pytest.raises(ValueError, match="anomaly_score='latent'.*'log_likelihood'"):
        detector.score_features(X[:3])
    assert vars(detector) == before


def test_frames_with_categories_and_holes_give_one_named_column_each():
    rng = np.random.RandomState(0)
    n = 300
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = np.where(colour == "red", 10.0, 0.0) + rng.normal(size=n)
    frame = pd.DataFrame({"size": size, "weight": 2 * size + rng.normal(size=n),
                          "colour": pd.Categorical(colour)})
    test = frame.iloc[:12].copy()
    test.index = np.arange(100, 112)
    test.loc[100, "weight"] = np.nan
    test.loc[101, "colour"] = np.nan
    for kind in ("log_likelihood", "reconstruction"):
        detector = fit(frame, anomaly_score=kind)
        features = detector.score_features(test)
        assert isinstance(features, pd.DataFrame)
        assert list(features.columns) == ["size", "weight", "colour"]
        assert list(features.index) == list(test.index)
        assert np.all(np.isfinite(features.to_numpy()))
        # A missing category holds minus its entropy: between -log(3) and 0.
        assert -np.log(3) - 1e-6 <= features.loc[101, "colour"] <= 0
        if kind == "reconstruction":
            np.testing.assert_allclose(features.sum(axis=1), detector.score_samples(test),
                                       atol=2e-5)
    # A frame of numbers only: still a frame, with its names.
    numbers = fit(frame[["size", "weight"]])
    assert list(numbers.score_features(frame[["size", "weight"]][:2]).columns) == [
        "size", "weight"]


def test_images_get_one_share_per_pixel():
    rng = np.random.RandomState(0)
    images = (rng.uniform(size=(64, 16)) < 0.3).astype(float)
    detector = fit(images, architecture="conv", image_shape=(1, 4, 4), conv_channels=(2,),
                   conv_dense_width=8, likelihood="bernoulli", max_iter=2,
                   anomaly_score="reconstruction")
    features = detector.score_features(images[:5])
    assert features.shape == (5, 16)
    np.testing.assert_allclose(features.sum(axis=1), detector.score_samples(images[:5]),
                               atol=2e-5)
    with pytest.raises(ValueError, match="outside"):
        detector.score_features(images[:2] * 3)


# ------------------------------------------------------- thresholds, p-values


@pytest.fixture(scope="module")
def gaussian_detector():
    train = correlated(2000, seed=0)
    return fit(train, max_iter=30), train


def test_set_threshold_flags_the_target_share_of_new_clean_rows(gaussian_detector):
    detector, _ = gaussian_detector
    validation, test = correlated(2000, seed=1), correlated(4000, seed=2)
    for fpr in (0.01, 0.05, 0.2):
        assert detector.set_threshold(validation, fpr=fpr) is detector
        assert detector.offset_ == np.percentile(detector.score_samples(validation),
                                                 100 * fpr)
        realised = np.mean(detector.predict(test) == -1)
        assert fpr / 1.5 <= realised <= fpr * 1.5


@pytest.mark.parametrize("fpr", [0, 1, -0.1, 1.5, True, "0.05", float("nan")])
def test_set_threshold_refuses_rates_outside_0_1(gaussian_detector, fpr):
    detector, train = gaussian_detector
    before = detector.offset_
    with pytest.raises(ValueError, match=f"fpr={fpr!r} must be a number strictly between"):
        detector.set_threshold(train, fpr=fpr)
    assert detector.offset_ == before


def test_p_values_count_training_scores_at_or_below(gaussian_detector):
    detector, train = gaussian_detector
    scores = detector.score_samples(train)
    np.testing.assert_array_equal(detector._reference_scores, np.sort(scores))
    rows = train[:50]
    counts = (scores[None, :] <= detector.score_samples(rows)[:, None]).sum(axis=1)
    np.testing.assert_array_equal(detector.p_values(rows), (1 + counts) / (len(train) + 1))


def test_p_values_are_uniform_on_clean_rows_and_small_for_outliers(gaussian_detector):
    detector, _ = gaussian_detector
    clean = detector.p_values(correlated(3000, seed=3))
    assert stats.kstest(clean, "uniform").statistic < 0.05
    for alpha in (0.01, 0.05, 0.2):
        assert alpha / 1.5 <= np.mean(clean <= alpha) <= alpha * 1.5
    outliers = correlated(20, seed=4) + 30
    assert np.all(detector.p_values(outliers) <= 2 / 2001)


def test_reference_scores_keep_evenly_spaced_order_statistics():
    scores = np.random.RandomState(0).normal(size=25)
    kept = reference_scores(scores, capacity=5)
    ordered = np.sort(scores)
    np.testing.assert_array_equal(kept, ordered[[0, 6, 12, 18, 24]])
    np.testing.assert_array_equal(reference_scores(scores[:4], capacity=5),
                                  np.sort(scores[:4]))
    assert MAX_REFERENCE_SCORES == 10_000
    np.testing.assert_array_equal(conformal_p_values(np.array([1.0, 2.0, 3.0]),
                                                     np.array([0.5, 1.0, 2.5, 9.0])),
                                  [0.25, 0.5, 0.75, 1.0])


def test_a_large_training_set_keeps_at_most_the_cap():
    X = correlated(MAX_REFERENCE_SCORES + 500)
    detector = fit(X, max_iter=1, n_importance_samples=2)
    assert len(detector._reference_scores) == MAX_REFERENCE_SCORES
    scores = np.sort(detector.score_samples(X))
    assert detector._reference_scores[0] == scores[0]
    assert detector._reference_scores[-1] == scores[-1]


def test_partial_fit_keeps_the_scores_of_its_row_sample(X):
    detector = VAEOutlierDetector(hidden_layer_sizes=(8,), random_state=0, device="cpu")
    for chunk in np.array_split(X, 4):
        detector.partial_fit(chunk)
    sample = detector._offset_sample.rows
    np.testing.assert_array_equal(detector._reference_scores,
                                  np.sort(detector.score_samples(sample)))


# ------------------------------------------------------------------ model files


def test_thresholds_and_p_values_survive_save_and_load(gaussian_detector, tmp_path):
    detector, train = gaussian_detector
    detector.set_threshold(correlated(500, seed=5), fpr=0.03)
    save(detector, tmp_path / "model.skvae")
    loaded = load(tmp_path / "model.skvae")
    rows = train[:40]
    assert loaded.offset_ == detector.offset_
    np.testing.assert_array_equal(loaded._reference_scores, detector._reference_scores)
    np.testing.assert_array_equal(loaded.p_values(rows), detector.p_values(rows))
    np.testing.assert_array_equal(loaded.score_features(rows), detector.score_features(rows))


@pytest.mark.parametrize("scores, message", [
    ([float("nan"), 1.0], "training_scores=nan is not finite"),
    ([1.0, float("inf")], "not finite"),
    ([2.0, 1.0], "not sorted"),
    ([], "not a list of 1 to 10000"),
    ("1.0", "not a list"),
    ([1.0, "2"], "is not a number"),
    ([0.0] * (MAX_REFERENCE_SCORES + 1), "not a list of 1 to 10000"),
    ([1.0, 10**400], "too large"),
], ids=["nan", "inf", "unsorted", "empty", "string", "string entry", "too long", "huge"])
def test_a_file_with_a_bad_score_array_is_refused(X, tmp_path, scores, message):
    save(fit(X, max_iter=2), tmp_path / "model.skvae")
    content, weights = read_model_file(tmp_path / "model.skvae")
    content["fitted"]["training_scores"] = scores
    write_model_file(tmp_path / "changed.skvae", content, weights)
    with pytest.raises(ModelFileError, match=f"changed.skvae.*{message}"):
        load(tmp_path / "changed.skvae")


def test_a_detector_file_from_before_the_training_scores_loads(X, tmp_path):
    """Files of the same format version written before p_values keep loading."""
    detector = fit(X, max_iter=2)
    save(detector, tmp_path / "model.skvae")
    content, weights = read_model_file(tmp_path / "model.skvae")
    del content["fitted"]["training_scores"]
    write_model_file(tmp_path / "old.skvae", content, weights)
    old = load(tmp_path / "old.skvae")
    np.testing.assert_array_equal(old.decision_function(X), detector.decision_function(X))
    with pytest.raises(ValueError, match="saved before skvae kept the training scores"):
        old.p_values(X)
    save(old, tmp_path / "resaved.skvae")  # saved as it came: without the entry
    assert "training_scores" not in read_model_file(tmp_path / "resaved.skvae")[0]["fitted"]
    content["fitted"]["unexpected"] = 1
    write_model_file(tmp_path / "extra.skvae", content, weights)
    with pytest.raises(ModelFileError, match="fitted state is invalid: the entries are"):
        load(tmp_path / "extra.skvae")


def test_every_public_name_is_exported():
    from skvae.plotting import FeatureScoreDisplay  # noqa: F401

    assert callable(skvae.VAEOutlierDetector.score_features)


def test_column_terms_come_back_in_the_users_column_order_in_data_units():
    from skvae._data import DataSpace

    # User columns: a category, a Gaussian (scale 2), a 0/1 column, a Gaussian
    # (scale 10); the likelihood orders them Gaussian, Bernoulli, categorical.
    space = DataSpace(["categorical", "gaussian", "bernoulli", "gaussian"],
                      np.array([0.0, 1.0, 0.0, 5.0]), np.array([1.0, 2.0, 1.0, 10.0]),
                      [3, 0, 0, 0])
    terms = np.array([[-1.0, -3.0, -2.0, -4.0]])  # g(col 1), g(col 3), b(col 2), c(col 0)
    np.testing.assert_allclose(space.column_terms_to_data(terms, np.zeros((1, 4))),
                               [[-4.0, -1.0 - np.log(2.0), -2.0, -3.0 - np.log(10.0)]])


def test_the_lowest_share_names_the_corrupted_column_of_a_mixed_frame():
    rng = np.random.RandomState(0)
    n = 600
    size = rng.normal(size=n)
    frame = pd.DataFrame({
        "colour": pd.Categorical(np.where(size > 0, "red", "blue")),
        "flag": (size > 0.5).astype(float),
        "weight": 3 * size + 0.1 * rng.normal(size=n),
        "size": size,
    })
    detector = fit(frame, max_iter=40)
    test = frame.iloc[:10].copy()
    test["weight"] += 3.0 * frame["weight"].std() * np.where(test["size"] > 0, -1, 1)
    features = detector.score_features(test)
    assert list(features.columns) == ["colour", "flag", "weight", "size"]
    assert (features.idxmin(axis=1) == "weight").mean() >= 0.8
