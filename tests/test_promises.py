"""Promises of fitting and saving that careful users and attackers broke (issue 24).

Each test names the class of fault it guards against; each failed on the code
before its fix.
"""

import copy
import warnings

import numpy as np
import pytest
import torch

import skvae
from skvae import VAEImputer, VAEOutlierDetector, VAETransformer


def small(estimator_class, **params):
    defaults = dict(hidden_layer_sizes=(8,), n_components=2, batch_size=20,
                    random_state=0, device="cpu")
    return estimator_class(**{**defaults, **params})


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(1100, 2))
    return latent @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(1100, 6))


def test_a_failed_partial_fit_leaves_adams_committed_state_alone(correlated):
    """Class: shared mutable state between the committed model and a trial copy.

    torch's load_state_dict keeps the tensors it is given, so training the copy
    changed the committed optimizer's moments and step in place.
    """
    vae = small(VAETransformer).partial_fit(correlated[:100])
    reference = copy.deepcopy(vae)
    bad = correlated[100:200].copy()
    bad[5, 0] = 1e300
    with pytest.raises(ValueError):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vae.partial_fit(bad)
    vae.partial_fit(correlated[200:300])
    reference.partial_fit(correlated[200:300])
    np.testing.assert_array_equal(vae.encode(correlated), reference.encode(correlated))


def test_the_imputers_indicator_columns_are_fixed_by_the_first_partial_fit(correlated):
    """Class: fitted state that a later chunk silently replaces (like the scaling)."""
    first, second = correlated[:200].copy(), correlated[200:400].copy()
    first[::4, 0] = np.nan
    second[::4, 3] = np.nan
    imputer = small(VAEImputer, add_indicator=True, n_training_samples=1)
    imputer.partial_fit(first).partial_fit(second)
    np.testing.assert_array_equal(imputer.indicator_features_, [0])
    out = imputer.transform(first)
    assert out.shape == (200, 7)
    np.testing.assert_array_equal(out[:, -1], np.isnan(first[:, 0]))
    assert list(imputer.get_feature_names_out()[-1:]) == ["missingindicator_x0"]


def test_save_reads_one_model_while_another_fit_commits(correlated, tmp_path, monkeypatch):
    """Class: a save that reads the estimator piece by piece while a fit commits.

    Another thread's fit is made to commit exactly while the file's state is
    being read: the file must hold one fit, whole (the first), never the first
    fit's scaling with the second's network.
    """
    from skvae._data import DataSpace

    X_a, X_b = correlated[:300], 5.0 + 3.0 * correlated[300:600]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = small(VAETransformer, max_iter=3).fit(X_a)
        first = copy.deepcopy(vae)
        real_get_state = DataSpace.get_state
        refitted = []

        def get_state_while_refitting(space):
            if not refitted:
                refitted.append(True)
                vae.fit(X_b)  # what a second thread may do at this moment
            return real_get_state(space)

        monkeypatch.setattr(DataSpace, "get_state", get_state_while_refitting)
        skvae.save(vae, tmp_path / "model.skvae")
        monkeypatch.undo()
    assert refitted
    loaded = skvae.load(tmp_path / "model.skvae")
    np.testing.assert_array_equal(loaded.encode(X_a), first.encode(X_a))
    np.testing.assert_array_equal(loaded.score_samples(X_a), first.score_samples(X_a))


def test_fitting_and_loading_never_touch_torchs_global_generator(correlated, tmp_path,
                                                                 monkeypatch):
    """Class: process-wide random state used by a fit or a load (fork_rng, manual_seed).

    Another thread's fit, or the user's own seeded torch draws, must not change
    a seeded fit, nor be changed by it; a fit that seeds or restores torch's
    global generator breaks both whenever threads interleave.
    """
    def refuse(*args, **kwargs):
        raise AssertionError("torch's global generator was touched")

    path = tmp_path / "model.skvae"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = small(VAETransformer, max_iter=2).fit(correlated[:200])
        for name in ("manual_seed", "seed", "set_rng_state", "get_rng_state"):
            monkeypatch.setattr(torch, name, refuse)
            monkeypatch.setattr(torch.random, name, refuse)
        monkeypatch.setattr(torch.random, "fork_rng", refuse)
        for estimator_class in (VAETransformer, VAEOutlierDetector, VAEImputer):
            small(estimator_class, max_iter=2).fit(correlated[:200])
        vae = small(VAETransformer, max_iter=2).fit(correlated[:200])
        codes = vae.encode(correlated)
        vae.partial_fit(correlated[200:300])
        skvae.save(expected, path)
        loaded = skvae.load(path)
    np.testing.assert_array_equal(codes, expected.encode(correlated))
    np.testing.assert_array_equal(loaded.encode(correlated), codes)



def test_a_later_partial_fit_chunk_may_miss_a_column_entirely(correlated):
    """Class: a rule about the whole data applied to one chunk of it."""
    vae = small(VAETransformer).partial_fit(correlated[:100])
    row = correlated[100:101].copy()
    row[0, 2] = np.nan
    vae.partial_fit(row)
    assert vae.n_iter_ == 2
    with pytest.raises(ValueError, match="missing in every row"):
        small(VAETransformer).partial_fit(row)  # the first call learns the columns


def test_the_detectors_partial_fit_threshold_describes_every_chunk(correlated):
    """Class: a fitted statistic computed from the last chunk only."""
    detector = small(VAEOutlierDetector, contamination=0.05)
    for chunk in np.array_split(correlated[:1000], 10):
        detector.partial_fit(chunk)
    detector.partial_fit(correlated[1000:1001])
    flagged = np.mean(detector.predict(correlated[:1001]) == -1)
    assert 0.03 <= flagged <= 0.07, flagged
    assert detector._offset_sample.n_seen == 1001


def test_the_row_sample_is_uniform_and_leaves_the_previous_one_alone():
    from skvae._outlier import RowSample

    X = np.arange(20000, dtype=float)[:, None]
    sample = RowSample.extended(None, X[:3000], seed=0)
    assert len(sample.rows) == 3000 and sample.n_seen == 3000
    later = RowSample.extended(sample, X[3000:], seed=1)
    np.testing.assert_array_equal(sample.rows[:, 0], np.arange(3000))  # unchanged
    assert len(later.rows) == 5000 and later.n_seen == 20000
    assert len(np.unique(later.rows)) == 5000
    # Uniform over every row seen: about a quarter of the sample from each quarter.
    counts = np.histogram(later.rows[:, 0], bins=4, range=(0, 20000))[0]
    assert np.all(np.abs(counts - 1250) < 150), counts


@pytest.mark.slow
def test_an_incomplete_row_scores_like_a_typical_completion_of_itself():
    """Class: a score that treats a hole as a value the encoder never saw.

    A detector fitted on complete rows flagged 33% of normal rows with one hole
    (5% of complete rows): read as 0, the hole gave the encoder a wrong row.
    """
    rng = np.random.RandomState(0)
    X = rng.normal(size=(2500, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(2500, 6))
    detector = VAEOutlierDetector(contamination=0.05, random_state=0, device="cpu")
    detector.fit(X[:1500])
    holey = X[1500:].copy()
    holey[np.arange(len(holey)), rng.randint(0, 6, size=len(holey))] = np.nan
    complete_share = np.mean(detector.predict(X[1500:]) == -1)
    holey_share = np.mean(detector.predict(holey) == -1)
    assert holey_share < 1.5 * complete_share + 0.01, (holey_share, complete_share)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float16])
def test_a_memmap_of_any_numeric_dtype_is_streamed_not_copied(dtype, tmp_path):
    """Class: one numeric dtype (float64) on the streaming path, a whole copy for others.

    The model is the one a float64 memmap of the same values gives, and
    validation keeps the memmap as it is (no array the size of X in float64).
    """
    from skvae._validation import validate_training_rows

    rng = np.random.RandomState(0)
    values = (rng.uniform(size=(3000, 6)) > 0.5) if dtype == np.uint8 else rng.randint(
        -50, 50, size=(3000, 6))
    np.save(tmp_path / "rows.npy", values.astype(dtype))
    np.save(tmp_path / "rows64.npy", values.astype(np.float64))
    memmap = np.load(tmp_path / "rows.npy", mmap_mode="r")
    memmap64 = np.load(tmp_path / "rows64.npy", mmap_mode="r")
    estimator = small(VAETransformer, max_iter=2)
    validated, _ = validate_training_rows(copy.copy(estimator), memmap)
    assert validated.dtype == dtype and np.shares_memory(validated, memmap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = small(VAETransformer, max_iter=2).fit(memmap)
        as_float64 = small(VAETransformer, max_iter=2).fit(memmap64)
    assert streamed.likelihood_ == as_float64.likelihood_
    codes = streamed.transform(memmap)
    assert codes.dtype == np.float64
    np.testing.assert_array_equal(codes, as_float64.transform(memmap64))
    np.testing.assert_array_equal(streamed.score_samples(memmap[:50]),
                                  as_float64.score_samples(memmap64[:50]))
