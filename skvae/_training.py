"""Minibatch training of a VAE module: epochs, early stopping and history.

Knows torch and nothing of scikit-learn: the estimator layer turns its inputs into
tensors, calls :func:`train`, and copies the :class:`TrainingHistory` onto itself.
The loop is a chain of small steps (``train`` -> ``run_epoch`` -> ``train_step``)
so each can be read, tested and, if need be, replaced on its own.
"""

import copy
import math
import warnings
from dataclasses import dataclass, field

import torch

from ._losses import trimmed_mean


@dataclass
class TrainingHistory:
    """What happened during training, in nats per row of the user's data."""

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    n_iter: int = 0
    stopped_early: bool = False
    interrupted: bool = False
    diverged: bool = False


@dataclass
class TrainingConfig:
    batch_size: int
    learning_rate: float
    max_iter: int
    tol: float
    n_iter_no_change: int
    beta: float
    # Added to every reported loss so that the history is in the units of the
    # user's data rather than of the internally standardised data.
    loss_offset: float = 0.0
    verbose: int = 0
    # Fraction of each minibatch, the worst-explained rows, left out of the step.
    trim_fraction: float = 0.0


def train_step(module, optimizer, batch, noise, beta, trim_fraction=0.0):
    """One Adam step on one minibatch; returns the batch's objective times its rows.

    The objective is the mean loss of the rows left after trimming the
    ``trim_fraction`` worst (all rows when it is 0). The returned value is a
    tensor, so the caller adds it up without a device-to-host copy per batch.
    """
    optimizer.zero_grad(set_to_none=True)
    per_row = module.loss(batch, noise, beta)
    objective = trimmed_mean(per_row, trim_fraction)
    objective.backward()
    optimizer.step()
    return objective.detach() * batch.shape[0]


def run_epoch(module, optimizer, X, config, generator):
    """One pass over ``X`` in shuffled minibatches; returns the mean loss per row."""
    n_samples = X.shape[0]
    order = torch.randperm(n_samples, generator=generator, device=X.device)
    total = torch.zeros((), device=X.device)
    for start in range(0, n_samples, config.batch_size):
        batch = X[order[start : start + config.batch_size]]
        noise = torch.randn(
            (batch.shape[0], module.n_components), generator=generator, device=X.device
        )
        total += train_step(
            module, optimizer, batch, noise, config.beta, config.trim_fraction
        )
    # One device-to-host copy per epoch, not one per batch.
    return total.item() / n_samples


@torch.no_grad()
def validation_score(module, X_val, noise, beta):
    """Mean ELBO per row on held-out data, with fixed noise so epochs compare fairly."""
    module.eval()
    per_row = module.loss(X_val, noise, beta)
    module.train()
    return -per_row.mean().item()


def _window_improved(loss_curve, config):
    """Whether the mean loss of the last window beat the window before it by ``tol``.

    The training loss of a VAE is noisy from epoch to epoch (each epoch draws new
    latent noise), so "no new best for n epochs", as ``MLPRegressor`` uses, stops
    long before the loss has stopped going down. Means over ``n_iter_no_change``
    epochs follow the trend instead of the noise.
    """
    n = config.n_iter_no_change
    if len(loss_curve) < 2 * n:
        return True
    recent = sum(loss_curve[-n:]) / n
    before = sum(loss_curve[-2 * n : -n]) / n
    return recent < before - config.tol


_FINITE_CHECK_ROWS = 1024


def _snapshot(module):
    # Cloning each tensor gives the same copy as deepcopy(state_dict()) at half the
    # cost or less (it runs every epoch); _metadata is kept for load_state_dict.
    state = module.state_dict()
    snapshot = type(state)((name, tensor.detach().clone()) for name, tensor in state.items())
    snapshot._metadata = copy.deepcopy(getattr(state, "_metadata", None))
    return snapshot


@torch.no_grad()
def _gives_finite_loss(module, state, X, config):
    """Whether the weights ``state`` are finite and give a finite loss on ``X``'s first rows.

    A finite epoch loss does not vouch for the weights that end the epoch: it is
    measured before each step, so the last step may still leave huge or NaN weights.
    Evaluated at the posterior mean (zero noise), so it draws no random numbers.
    """
    if not all(torch.isfinite(value).all() for value in state.values()):
        return False
    module.load_state_dict(state)
    module.eval()
    # Finite weights that still overflow do so on almost any row; a bounded sample
    # keeps this check to a few batches however large X is.
    X = X[:_FINITE_CHECK_ROWS]
    for start in range(0, X.shape[0], config.batch_size):
        batch = X[start : start + config.batch_size]
        noise = batch.new_zeros((batch.shape[0], module.n_components))
        per_row = module.loss(batch, noise, config.beta)
        if not torch.isfinite(per_row).all():
            return False
    return True


def _restore_good_weights(module, candidates, X, config, history):
    """Load the first usable state of ``candidates`` (newest first) into ``module``.

    Only the final weights of a run are checked, once, so healthy training pays one
    forward pass. If the newest state is unusable the run counts as diverged.
    """
    for position, state in enumerate(candidates):
        if _gives_finite_loss(module, state, X, config):
            history.diverged = history.diverged or position > 0
            return
    raise ValueError(
        "Training produced no weights with a finite loss, not even the starting "
        "ones: X holds values too large for float32 arithmetic. Rescale X (for "
        "example with StandardScaler) and lower learning_rate_init."
    )


def train(module, X, X_val, config, generator, history=None, optimizer=None):
    """Maximise the ELBO of ``module`` on ``X`` with Adam.

    Stops after ``config.max_iter`` epochs, or earlier when the training loss (or,
    with early stopping, the validation ELBO) has not improved by ``config.tol`` for
    ``config.n_iter_no_change`` epochs. With early stopping the weights of the best
    validation epoch are restored. A non-finite loss stops training and restores the
    last finite weights; ``KeyboardInterrupt`` stops it and keeps the best weights.

    Returns
    -------
    history : TrainingHistory
        Extended in place if one is passed (warm start).
    """
    history = history if history is not None else TrainingHistory()
    optimizer = optimizer or torch.optim.Adam(module.parameters(), lr=config.learning_rate)
    if X_val is not None:
        val_noise = torch.randn(
            (X_val.shape[0], module.n_components), generator=generator, device=X.device
        )
    # Fallbacks, newest first, when the newest weights turn out unusable.
    initial_state = best_state = previous_state = _snapshot(module)
    epochs_without_improvement = 0
    module.train()
    try:
        for _ in range(config.max_iter):
            loss = run_epoch(module, optimizer, X, config, generator) + config.loss_offset
            if not math.isfinite(loss):
                history.diverged = True
                break
            history.n_iter += 1
            history.loss_curve.append(loss)
            if X_val is not None:
                score = validation_score(module, X_val, val_noise, config.beta)
                score -= config.loss_offset
                history.validation_scores.append(score)
                improved = score > history.best_validation_score + config.tol
                history.best_validation_score = max(history.best_validation_score, score)
                history.best_loss = min(history.best_loss, loss)
                if score >= history.best_validation_score:
                    best_state = _snapshot(module)
            else:
                improved = _window_improved(history.loss_curve, config)
                history.best_loss = min(history.best_loss, loss)
                previous_state, best_state = best_state, _snapshot(module)
            if config.verbose:
                message = f"Epoch {history.n_iter}, loss = {loss:.4f}"
                if X_val is not None:
                    message += f", validation ELBO = {score:.4f}"
                print(message)
            epochs_without_improvement = 0 if improved else epochs_without_improvement + 1
            if epochs_without_improvement >= (1 if X_val is None else config.n_iter_no_change):
                history.stopped_early = True
                break
    except KeyboardInterrupt:
        history.interrupted = True
        warnings.warn(
            "Training interrupted by the user; keeping the best weights so far "
            f"(after {history.n_iter} complete epochs)."
            + (
                " No epoch finished, so the model keeps its starting weights; call "
                "fit again to train it."
                if history.n_iter == 0
                else ""
            ),
            RuntimeWarning,
            stacklevel=3,
        )
    # previous_state gave a finite loss on the first batch of the epoch after it;
    # best_state has not been evaluated since its last step, so it is checked.
    _restore_good_weights(
        module, [best_state, previous_state, initial_state], X, config, history
    )
    module.eval()
    return history
