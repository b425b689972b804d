"""What verbose prints: a progress bar, a line per epoch, or nothing."""

import warnings

import numpy as np
import pytest

from skvae import VAEOutlierDetector, VAETransformer
from skvae._inference import BLOCK_ROWS


def fit(estimator_class, X, **params):
    estimator = estimator_class(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                                device="cpu", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(60, 4))


@pytest.mark.parametrize("estimator_class", [VAETransformer, VAEOutlierDetector])
def test_verbose_1_shows_a_bar_over_the_epochs(estimator_class, X, capsys):
    fit(estimator_class, X, verbose=1, early_stopping=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "fit: 100%" in captured.err and "3.0/3 epochs" in captured.err
    assert "loss=" in captured.err and "validation ELBO=" in captured.err


def test_the_bar_moves_within_an_epoch_by_fractions_of_it():
    from skvae._progress import EpochReport

    with EpochReport(1, max_iter=2, n_batches=4) as report:
        positions = []
        for _ in range(3):
            report.step()
            positions.append(report.bar.n)
        report.step()
        report.epoch(1, loss=1.0)
        positions.append(report.bar.n)
        report.step()
        positions.append(report.bar.n)
    assert positions == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.25])
    assert positions[3] == 1  # whole epochs exactly, whatever the fractions summed to


def test_verbose_2_prints_a_line_per_epoch_and_0_nothing(X, capsys):
    fit(VAETransformer, X, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["Epoch 1", "Epoch 2", "Epoch 3"]
    vae = fit(VAETransformer, X, verbose=0)
    vae.score_samples(np.resize(X, (BLOCK_ROWS + 1, X.shape[1])))
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_long_scoring_calls_show_a_bar_short_ones_do_not(X, capsys):
    vae = fit(VAETransformer, X, verbose=1, n_importance_samples=64)
    capsys.readouterr()
    vae.score_samples(X)
    assert capsys.readouterr().err == ""
    many = np.resize(X, (BLOCK_ROWS + 1, X.shape[1]))  # two blocks
    scores = vae.score_samples(many)
    assert "VAETransformer" in capsys.readouterr().err
    # The bar changes nothing in the results.
    np.testing.assert_array_equal(scores, vae.set_params(verbose=0).score_samples(many))
