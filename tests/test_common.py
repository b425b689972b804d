"""scikit-learn's estimator checks over every public estimator."""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer


def _small(estimator_class, **params):
    # Narrow networks and few epochs keep the ~50 checks, each fitting several
    # models, to seconds; the checks test the API, not the quality of the fit.
    return estimator_class(
        hidden_layer_sizes=(16,), max_iter=5, random_state=0, device="cpu", **params
    )


ESTIMATORS = [
    _small(VAETransformer),
    _small(VAETransformer, likelihood="gaussian", early_stopping=True),
    # image_shape=None reads each row as a 1 x 1 x n_features image, so the conv
    # network takes the checks' arbitrary feature counts.
    _small(VAETransformer, architecture="conv", conv_channels=(4, 8), conv_dense_width=8),
    _small(
        VAETransformer, architecture="conv", conv_channels=(4,), conv_dense_width=8,
        likelihood="gaussian",
    ),
    _small(VAEOutlierDetector),
    # The same with a float contamination, so that check_outliers_fit_predict runs
    # in full (see below).
    _small(VAEOutlierDetector, contamination=0.1),
    _small(VAEImputer),
    _small(VAEImputer, add_indicator=True, sample_posterior=True),
]


def _expected_failed_checks(estimator):
    if isinstance(estimator, VAEOutlierDetector) and estimator.contamination == "auto":
        reason = (
            "The check requires contamination='auto' to flag some of 300 rows of "
            "three clean Gaussian blobs. Tukey's far-out fence (Q1 - 3 IQR), chosen "
            "to flag fewer normal rows (benchmarks/results_contamination.md), flags "
            "none of them, which is right for data without outliers. The detector "
            "with contamination=0.1 passes the check."
        )
        return {"check_outliers_fit_predict": reason, "check_outliers_train": reason}
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        # Five epochs never converge; the warning is expected, not a failure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
