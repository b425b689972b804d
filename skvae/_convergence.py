"""The rule the training warnings follow, in one place.

A run whose loss or weights turned non-finite warns (``RuntimeWarning``): the
model kept older weights and may be undertrained. A run that used its whole
epoch budget at a constant learning rate before its stopping rule fired warns
with ``ConvergenceWarning``, as scikit-learn's iterative estimators do: it was cut
off while still improving. A run that ends because its decaying schedule ended
(``learning_rate="cosine"``) is converged by design and does not warn, nor does
one whose estimator's budget is a budget by design (the detector, the imputer),
or whose caller decides when to stop (``partial_fit``). An interrupted run has
warned already.
"""

from sklearn.exceptions import ConvergenceWarning

from ._warnings import warn


def warn_about_training(outcome, estimator, *, one_pass):
    """Warn about the :class:`~skvae._fitting.FitOutcome` of ``estimator``'s fit."""
    if outcome.diverged:
        warn(
            f"Training stopped after {outcome.history.n_iter} epochs because the loss "
            "or the weights became NaN or infinite; the last weights that gave a "
            "finite loss were kept, so the model is usable but may be undertrained. "
            "Lower learning_rate_init or rescale X (for example with "
            "StandardScaler).",
            RuntimeWarning,
        )
    elif (estimator._warns_at_max_iter and not one_pass
          and not (outcome.converged or outcome.interrupted or outcome.schedule_ended)
          and outcome.n_epochs == outcome.max_iter):
        warn(
            f"{type(estimator).__name__} reached max_iter={outcome.max_iter} epochs "
            "before the loss stopped improving by tol; increase max_iter, or use "
            "learning_rate='cosine', which ends at a learning rate near zero, for a "
            "better fit.",
            ConvergenceWarning,
        )
