"""The Gaussian-mixture sampling prior: its density against closed forms, its checks,
and VAETransformer(sampling_prior=...) fitting, sampling, scoring and saving with it."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

import skvae
import skvae._transformer
from skvae import ModelFileError, VAETransformer, load, save
from skvae._prior_fitting import fit_mixture_prior
from skvae._priors import PRIOR_TENSORS, MixturePrior, mixture_log_prob

from _model_files import read_model_file, write_model_file


def random_mixture(k, d, seed):
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(size=(k, d)) * 2
    factors = rng.normal(size=(k, d, d))
    covariances = factors @ factors.transpose(0, 2, 1) + 0.1 * np.eye(d)
    return weights, means, covariances


def prior_of(weights, means, covariances):
    return MixturePrior.checked(torch.as_tensor(weights), torch.as_tensor(means),
                                torch.as_tensor(covariances), means.shape[1])


# ------------------------------------------------------- the density, closed form


@pytest.mark.parametrize("k, d", [(1, 1), (3, 2), (10, 5)])
def test_mixture_log_prob_is_the_closed_form(k, d):
    weights, means, covariances = random_mixture(k, d, seed=k + d)
    z = np.random.RandomState(1).normal(size=(50, d)) * 3
    expected = logsumexp([np.log(w) + multivariate_normal(m, c).logpdf(z).reshape(-1)
                          for w, m, c in zip(weights, means, covariances)], axis=0)
    got = prior_of(weights, means, covariances).log_prob(torch.as_tensor(z))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_diagonal_covariances_take_the_diagonal_formula_and_agree():
    weights, means, _ = random_mixture(4, 40, seed=3)
    variances = np.random.RandomState(4).uniform(0.2, 3.0, size=(4, 40))
    prior = prior_of(weights, means, np.stack([np.diag(v) for v in variances]))
    assert prior._precision_sd is not None
    z = torch.as_tensor(np.random.RandomState(5).normal(size=(30, 40)) * 2)
    expected = logsumexp([np.log(w) + norm.logpdf(z.numpy(), m, np.sqrt(v)).sum(-1)
                          for w, m, v in zip(weights, means, variances)], axis=0)
    np.testing.assert_allclose(prior.log_prob(z).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(
        mixture_log_prob(z, prior._log_weights, prior.means, prior._precision_cholesky).numpy(),
        expected, rtol=1e-10)


def test_mixture_log_prob_matches_gaussian_mixture_score_samples():
    points = np.random.RandomState(0).normal(size=(500, 3)) @ np.diag([1.0, 2.0, 0.5])
    mixture = GaussianMixture(4, covariance_type="full", random_state=0).fit(points)
    got = mixture_log_prob(
        torch.as_tensor(points), torch.as_tensor(np.log(mixture.weights_)),
        torch.as_tensor(mixture.means_), torch.as_tensor(mixture.precisions_cholesky_))
    np.testing.assert_allclose(got.numpy(), mixture.score_samples(points), rtol=1e-10)
    # The prior's own factorisation, from the covariances, gives the same density.
    prior = prior_of(mixture.weights_, mixture.means_, mixture.covariances_)
    np.testing.assert_allclose(prior.log_prob(torch.as_tensor(points)).numpy(),
                               mixture.score_samples(points), rtol=1e-9)


def test_log_prob_keeps_the_dtype_and_the_leading_axes():
    prior = prior_of(*random_mixture(2, 3, seed=0))
    z = torch.zeros((4, 5, 3), dtype=torch.float32)
    assert prior.log_prob(z).shape == (4, 5) and prior.log_prob(z).dtype == torch.float32


def test_samples_follow_the_mixture_and_repeat_with_the_seed():
    weights, means, covariances = random_mixture(3, 2, seed=2)
    prior = prior_of(weights, means, covariances)
    draws = prior.sample(200_000, torch.Generator().manual_seed(0)).double().numpy()
    mean = weights @ means
    second = sum(w * (c + np.outer(m, m)) for w, m, c in zip(weights, means, covariances))
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(draws.T), second - np.outer(mean, mean), atol=0.1)
    again = prior.sample(200_000, torch.Generator().manual_seed(0)).double().numpy()
    np.testing.assert_array_equal(draws, again)


def test_fit_covers_the_posteriors_spread():
    # Every row has the same posterior N(0, 4 I): the mixture fitted to its draws is
    # that distribution, not the point mass of the means.
    means, log_variances = np.zeros((2000, 2)), np.full((2000, 2), np.log(4.0))
    prior = fit_mixture_prior(means, log_variances, seed=0)
    draws = prior.sample(50_000, torch.Generator().manual_seed(0)).double().numpy()
    np.testing.assert_allclose(draws.var(0), [4.0, 4.0], rtol=0.1)
    same = fit_mixture_prior(means, log_variances, seed=0)
    torch.testing.assert_close(same.covariances, prior.covariances, rtol=0, atol=0)


# ------------------------------------------------------------- refused priors


def _valid():
    return random_mixture(3, 2, seed=0)


@pytest.mark.parametrize("change, message", [
    (lambda w, m, c: (w * 1.5, m, c), "sum to"),
    (lambda w, m, c: (np.r_[-0.5, 1.0, 0.5], m, c), "negative"),
    (lambda w, m, c: (w, np.where(np.eye(3, 2) > 0, np.nan, m), c), "NaN"),
    (lambda w, m, c: (w, m, c * [[[1.0]], [[np.nan]], [[1.0]]]), "NaN"),
    (lambda w, m, c: (w, m, c * [[[1.0]], [[-1.0]], [[1.0]]]), "positive definite"),
    (lambda w, m, c: (w, m, np.ones_like(c)), "positive definite"),
    (lambda w, m, c: (w, m, c + np.triu(np.ones((2, 2)), 1)), "symmetric"),
    (lambda w, m, c: (w, m[:, :1], c), "means have shape"),
    (lambda w, m, c: (w, m, c[:, :1, :1]), "covariances have shape"),
    (lambda w, m, c: (w[:, None], m, c), "weights have shape"),
    (lambda w, m, c: (w.astype(np.float32), m, c), "float32"),
])
def test_a_bad_prior_is_refused(change, message):
    weights, means, covariances = change(*_valid())
    with pytest.raises(ValueError, match=message):
        MixturePrior.checked(torch.as_tensor(weights), torch.as_tensor(means),
                             torch.as_tensor(covariances), 2)


def test_a_prior_with_some_of_its_entries_is_refused():
    tensors = prior_of(*_valid()).to_tensors()
    assert MixturePrior.from_tensors({}, 2) is None
    del tensors["prior.means"]
    with pytest.raises(ValueError, match="expected all of"):
        MixturePrior.from_tensors(tensors, 2)


# ------------------------------------------------------------------ estimator


def fit(X, **params):
    defaults = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VAETransformer(**{**defaults, **params}).fit(X)


@pytest.fixture(scope="module")
def X():
    # Two clusters: codes that N(0, I) does not match.
    rng = np.random.RandomState(0)
    return np.r_[rng.normal(size=(150, 4)) + 4, rng.normal(size=(150, 4)) - 4]


@pytest.fixture(scope="module")
def both(X):
    return fit(X, sampling_prior="standard"), fit(X, sampling_prior="mixture")


def test_the_prior_leaves_the_network_alone(both, X):
    standard, mixture = both
    assert (standard.sampling_prior_, mixture.sampling_prior_) == ("standard", "mixture")
    for a, b in zip(standard.module_.state_dict().values(),
                    mixture.module_.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(standard.transform(X), mixture.transform(X))


def test_standard_samples_decode_standard_normal_draws(both):
    standard, _ = both
    z = torch.randn((7, standard.n_components_), generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(standard.sample(7, random_state=3, return_mean=True),
                                  standard.inverse_transform(z.numpy().astype(np.float64)))


def test_mixture_samples_decode_draws_of_the_mixture(both):
    _, mixture = both
    prior = mixture._model.prior
    z = prior.sample(7, torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(mixture.sample(7, random_state=3, return_mean=True),
                                  mixture.inverse_transform(z.numpy().astype(np.float64)))
    np.testing.assert_array_equal(mixture.sample(50, random_state=4),
                                  mixture.sample(50, random_state=4))


def test_the_mixture_is_fitted_to_the_codes(both, X):
    # Its mean and covariance are those of the aggregate posterior, mean_i q(z | x_i).
    _, mixture = both
    prior = mixture._model.prior
    means, log_variances = mixture._model.posteriors(mixture._validate_X(X))
    weights, centres = prior.weights.numpy(), prior.means.numpy()
    mean = weights @ centres
    covariance = sum(w * (c + np.outer(m - mean, m - mean))
                     for w, m, c in zip(weights, centres, prior.covariances.numpy()))
    expected = np.cov(means.T, bias=True) + np.diag(np.exp(log_variances).mean(0))
    scale = np.sqrt(np.trace(expected))
    np.testing.assert_allclose(mean, means.mean(0), atol=0.05 * scale)
    np.testing.assert_allclose(covariance, expected, atol=0.1 * scale**2)


def test_score_samples_is_the_bound_for_the_mixture_prior(both, X):
    # The importance-weighted bound computed here from its parts, with the
    # mixture's density from scipy: what score_samples must give.
    _, vae = both
    model, rows = vae._model, X[:20]
    k = vae.n_importance_samples
    x = model.data_space.to_tensor(vae._validate_X(rows), "cpu")
    noise = model.row_noise(x, model.noise_seed, k)
    with torch.no_grad():
        mean, log_variance = vae.module_.encode(x)
        z = mean + torch.exp(0.5 * log_variance) * noise
        log_px_z = vae.module_.likelihood.log_prob(x, vae.module_.decoder(z), None).numpy()
    z, mean, sd = z.double().numpy(), mean.double().numpy(), np.exp(0.5 * log_variance.double().numpy())
    prior = model.prior
    log_pz = logsumexp([np.log(w) + multivariate_normal(m, c).logpdf(z.reshape(-1, z.shape[-1]))
                        for w, m, c in zip(prior.weights.numpy(), prior.means.numpy(),
                                           prior.covariances.numpy())], axis=0).reshape(z.shape[:2])
    log_qz = norm.logpdf(z, mean, sd).sum(-1)
    expected = (logsumexp(log_px_z + log_pz - log_qz, axis=0) - np.log(k)
                - model.data_space.log_abs_det_of(vae._validate_X(rows)))
    np.testing.assert_allclose(vae.score_samples(rows), expected, rtol=1e-4, atol=1e-3)


def test_the_mixture_does_not_lower_the_likelihood_of_clustered_data(both, X):
    standard, mixture = both
    assert mixture.score(X) > standard.score(X)


def test_partial_fit_and_warm_start_refit_the_mixture(X):
    vae = VAETransformer(hidden_layer_sizes=(16,), random_state=0, device="cpu")
    vae.partial_fit(X)
    first = vae._model.prior
    vae.partial_fit(X)
    assert vae._model.prior is not first and vae.sampling_prior_ == "mixture"
    assert not torch.equal(vae._model.prior.means, first.means)
    warm = fit(X, max_iter=3, warm_start=True)
    before = warm._model.prior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X)
    assert not torch.equal(warm._model.prior.means, before.means)


def test_set_params_changes_the_prior_at_the_next_fit_only(X):
    vae = fit(X, max_iter=3, sampling_prior="mixture")
    vae.set_params(sampling_prior="standard")
    assert vae.sampling_prior_ == "mixture"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    assert vae.sampling_prior_ == "standard" and vae._model.prior is None


def test_a_failing_mixture_fit_leaves_the_previous_model(X, monkeypatch):
    vae = fit(X, max_iter=3, sampling_prior="standard")
    model = vae._model
    vae.set_params(sampling_prior="mixture")

    def fail(*args, **kwargs):
        raise RuntimeError("mixture fit failed")

    monkeypatch.setattr(skvae._transformer, "fit_mixture_prior", fail)
    with pytest.raises(RuntimeError, match="mixture fit failed"):
        vae.fit(X)
    assert vae._model is model and vae.sampling_prior_ == "standard"
    fresh = VAETransformer(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with pytest.raises(RuntimeError, match="mixture fit failed"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fresh.fit(X)
    assert not hasattr(fresh, "n_iter_")


def test_frames_get_the_prior_too():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["x", "y"], 200)})
    vae = fit(frame, max_iter=5)
    samples = vae.sample(30, random_state=0)
    assert list(samples.columns) == ["a", "b"] and set(samples["b"]) <= {"x", "y"}
    given = vae.sample(10, given=pd.DataFrame({"a": [np.nan], "b": ["x"]}), random_state=0)
    assert (given["b"] == "x").all()


# ---------------------------------------------------------------- model files


def test_a_model_file_keeps_the_prior(both, X, tmp_path):
    _, vae = both
    save(vae, tmp_path / "m.skvae")
    _, weights = read_model_file(tmp_path / "m.skvae")
    assert set(PRIOR_TENSORS) <= set(weights)
    loaded = load(tmp_path / "m.skvae")
    assert loaded.sampling_prior_ == "mixture"
    np.testing.assert_array_equal(loaded.sample(20, random_state=1), vae.sample(20, random_state=1))
    np.testing.assert_array_equal(loaded.score_samples(X), vae.score_samples(X))
    standard = both[0]
    save(standard, tmp_path / "s.skvae")
    assert not set(PRIOR_TENSORS) & set(read_model_file(tmp_path / "s.skvae")[1])
    assert load(tmp_path / "s.skvae").sampling_prior_ == "standard"


@pytest.mark.parametrize("name, change, message", [
    ("prior.weights", lambda t: t * 2, "sum to"),
    ("prior.weights", lambda t: torch.cat([t, t[:1]]), "means have shape"),
    ("prior.covariances", lambda t: t * -1, "positive definite"),
    ("prior.covariances", lambda t: t.index_fill(0, torch.tensor([0]), float("nan")), "NaN"),
    ("prior.covariances", lambda t: t[:, :1, :1].contiguous(), "covariances have shape"),
    ("prior.means", lambda t: t.float(), "float32"),
    ("prior.means", None, "expected all of"),
])
def test_a_model_file_with_a_bad_prior_is_refused(both, tmp_path, name, change, message):
    save(both[1], tmp_path / "m.skvae")
    content, weights = read_model_file(tmp_path / "m.skvae")
    if change is None:
        del weights[name]
    else:
        weights[name] = change(weights[name])
    write_model_file(tmp_path / "bad.skvae", content, weights)
    with pytest.raises(ModelFileError, match=f"bad.skvae.*{message}"):
        load(tmp_path / "bad.skvae")


def test_a_prior_in_another_estimators_file_is_refused(both, X, tmp_path):
    save(both[1], tmp_path / "m.skvae")
    prior = {name: tensor for name, tensor in read_model_file(tmp_path / "m.skvae")[1].items()
             if name in PRIOR_TENSORS}
    detector = skvae.VAEOutlierDetector(n_components=both[1].n_components,
                                        hidden_layer_sizes=(8,), max_iter=2,
                                        random_state=0).fit(X)
    save(detector, tmp_path / "d.skvae")
    content, weights = read_model_file(tmp_path / "d.skvae")
    write_model_file(tmp_path / "bad.skvae", content, {**weights, **prior})
    with pytest.raises(ModelFileError, match="bad.skvae.*has no sampling prior"):
        load(tmp_path / "bad.skvae")


# Saved by skvae's main at b67306b, before the sampling prior existed:
# VAETransformer(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu") on
# RandomState(0).normal(size=(40, 3)) * [1, 2, 3] + 5, with its outputs then.
OLD_FILE = Path(__file__).parent / "data" / "transformer_before_sampling_prior.skvae"


def test_a_file_written_before_the_prior_loads_with_the_standard_prior():
    old = np.load(OLD_FILE.with_suffix(".npz"))
    loaded = load(OLD_FILE)
    assert loaded.sampling_prior == "standard" and loaded.sampling_prior_ == "standard"
    # Recorded on one CPU (an AMD EPYC): another picks other MKL kernels, whose
    # float32 sums may differ in the last bits. A mixture prior or a clipped
    # sample would differ far beyond float32 rounding.
    for got, name in ((loaded.score_samples(old["X"]), "score_samples"),
                      (loaded.sample(6, random_state=1), "sample"),
                      (loaded.transform(old["X"]), "transform")):
        np.testing.assert_allclose(got, old[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_sampling_prior_is_a_checked_parameter(X):
    with pytest.raises(ValueError, match="sampling_prior"):
        VAETransformer(sampling_prior="vamp").fit(X)
    assert "sampling_prior" not in skvae.VAEOutlierDetector().get_params()
