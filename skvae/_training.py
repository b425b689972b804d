"""Minibatch training of a VAE module: epochs, stopping, history.

Knows torch and nothing of scikit-learn. :func:`train` takes the module, a
source of minibatches and a :class:`TrainingConfig`, trains the module's weights
and returns a :class:`TrainingResult`: the history of this run and the weights to
keep. It never changes objects it did not receive for training, so the estimator
decides what to commit. The loop is a chain of small steps (``train`` ->
``run_epoch`` -> ``train_step``) so each can be read, tested and, if need be,
replaced on its own.
"""

import copy
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import functional_call

from ._losses import labelled_anomaly_hinge, trimmed_mean
from ._progress import EpochReport
from ._schedules import learning_rate_factor
from ._warnings import TrainingInterruptedWarning, warn


@dataclass
class TrainingHistory:
    """Per-epoch record of training, in nats per row of the user's data.

    It extends over warm starts: a run starts from the history of the fits
    before it.
    """

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)

    @property
    def n_iter(self):
        return len(self.loss_curve)

    @property
    def best_loss(self):
        return min(self.loss_curve, default=math.inf)

    @property
    def best_validation_score(self):
        return max(self.validation_scores, default=-math.inf)


@dataclass
class TrainingResult:
    """What :func:`train` hands back: the extended history and the weights to keep."""

    history: TrainingHistory
    state: dict
    n_epochs: int = 0  # epochs completed in this run
    converged: bool = False  # the stopping rule ended the run before max_iter
    interrupted: bool = False  # KeyboardInterrupt ended it
    diverged: bool = False  # non-finite loss or weights ended it; older weights kept
    schedule_ended: bool = False  # a decaying schedule ran all its epochs


@dataclass(frozen=True)
class _Progress:
    """Where training stands after its last complete epoch.

    Immutable and replaced by one assignment per epoch, so an interrupt at any
    moment finds the history and the weights of the same epoch together.
    """

    loss_curve: tuple
    validation_scores: tuple
    kept_state: dict  # weights to keep: the latest, or the best validated
    previous_state: dict  # fallback when kept_state turns out unusable
    best_score: float  # best validation score of this run, from its starting weights
    epochs_without_improvement: int = 0
    n_epochs: int = 0

    def after_epoch(self, loss, score, state, config):
        """The progress once an epoch with ``loss`` (and validation ``score``) ends."""
        validating = score is not None
        loss_curve = self.loss_curve + (loss,)
        scores = self.validation_scores + ((score,) if validating else ())
        if not validating:
            improved = _window_improved(loss_curve, config)
            kept, previous, best = state, self.kept_state, self.best_score
        else:
            improved = score > self.best_score + config.tol
            if score >= self.best_score:
                kept, previous, best = state, self.previous_state, score
            else:
                kept, previous, best = self.kept_state, self.previous_state, self.best_score
        return _Progress(
            loss_curve, scores, kept, previous, best,
            0 if improved else self.epochs_without_improvement + 1, self.n_epochs + 1,
        )


@dataclass
class TrainingConfig:
    batch_size: int
    learning_rate: float
    max_iter: int
    tol: float
    n_iter_no_change: int
    beta: float
    # Added to every reported loss so that the history is in the units of the
    # user's data rather than of the internally scaled data.
    loss_offset: float = 0.0
    verbose: int = 0  # 1: a progress bar; 2: a line per epoch
    # Fraction of each minibatch, the worst-explained rows, left out of the step.
    trim_fraction: float = 0.0
    # Posterior draws per row in the objective: 1, the ELBO; more, the
    # importance-weighted bound.
    draws_per_row: int = 1
    # Learning-rate schedule over the max_iter epochs (see skvae._schedules).
    schedule: str = "constant"
    # Weight of the labelled anomalies' hinge in each step (see LabelledAnomalies).
    label_weight: float = 0.0


def draw_noise(n_rows, module, config, generator, device):
    """Standard-normal training noise: (n_rows, d), or (K, n_rows, d) for K draws a row."""
    shape = (n_rows, module.n_components)
    if config.draws_per_row > 1:
        shape = (config.draws_per_row,) + shape
    return torch.randn(shape, generator=generator, device=device)


class TensorBatches:
    """Minibatches of the rows of a tensor, in a fresh random order each epoch."""

    def __init__(self, rows, batch_size, generator):
        self.rows, self.batch_size, self.generator = rows, batch_size, generator

    @property
    def n_batches(self):
        return math.ceil(self.rows.shape[0] / self.batch_size)

    def epoch(self):
        order = torch.randperm(self.rows.shape[0], generator=self.generator,
                               device=self.rows.device)
        for start in range(0, self.rows.shape[0], self.batch_size):
            yield self.rows[order[start : start + self.batch_size]]


class StreamedBatches:
    """Minibatches read from an array (a memmap, say), in a fresh random order each epoch.

    ``rows`` are the indices of ``X`` to train on (None: all). Each batch is read
    with its indices sorted (forward reads from a file) and becomes a tensor on
    ``device`` through ``data_space``. Nothing the size of ``X`` is held in
    memory; the order itself takes 4 bytes a row (8 beyond 2**31 rows).
    """

    def __init__(self, X, rows, batch_size, generator, data_space, device):
        self.X, self.rows, self.batch_size = X, rows, batch_size
        self.generator, self.data_space, self.device = generator, data_space, device

    @property
    def n_batches(self):
        n_rows = self.X.shape[0] if self.rows is None else len(self.rows)
        return math.ceil(n_rows / self.batch_size)

    def epoch(self):
        n_rows = self.X.shape[0] if self.rows is None else len(self.rows)
        dtype = torch.int32 if n_rows < 2**31 else torch.int64
        order = torch.randperm(n_rows, generator=self.generator, dtype=dtype).numpy()
        if self.rows is not None:
            order = self.rows[order]
        for start in range(0, len(order), self.batch_size):
            block = self.X[np.sort(order[start : start + self.batch_size])]
            yield self.data_space.to_tensor(block, self.device)


class LabelledAnomalies:
    """Rows known to be anomalies, pushed to a low likelihood at every training step.

    Each step adds ``config.label_weight * ramp`` times
    :func:`~skvae._losses.labelled_anomaly_hinge` of (at most a batch of)
    these rows against the step's minibatch. They are few, so every step sees
    all of them up to ``batch_size``; beyond it, a random subset. Their noise
    and subsets come from the training generator, after the minibatch's.

    ``ramp`` rises linearly from ``1 / RAMP_EPOCHS`` in the first epoch to 1
    (see :meth:`in_epoch`): at full weight from the first step, the hinge
    pulls an untrained network apart before it has learned the data (on
    ADBench's annthyroid the median loss of the normal rows doubled in the
    first epochs, and ROC-AUC fell from 0.95 to 0.79); ramped in, the model
    learns the data first and the labels then carve the anomalies out of it.
    """

    RAMP_EPOCHS = 20

    def __init__(self, rows, ramp=1.0, noise=None):
        self.rows, self.ramp, self.noise = rows, ramp, noise

    def in_epoch(self, epoch):
        """These anomalies as epoch ``epoch`` (0 first, counted over warm starts) weighs them."""
        return LabelledAnomalies(self.rows, min(1.0, (epoch + 1) / self.RAMP_EPOCHS))

    def held_out(self, module, config, generator):
        """These anomalies, at most a batch, with fixed noise, to score held-out epochs.

        The validation score with labels is the held-out objective at full
        weight: the ELBO of the held-out rows minus the hinge of these
        against them, so that early stopping keeps the epoch that best does
        both, not the one before the labels moved the model.
        """
        rows = self.rows[: config.batch_size]
        return LabelledAnomalies(
            rows, 1.0, draw_noise(rows.shape[0], module, config, generator, rows.device))

    def held_out_term(self, module, losses, config):
        """The weighted hinge of these anomalies, with their fixed noise, against ``losses``."""
        anomaly_losses = module.loss(self.rows, self.noise, config.beta)
        return config.label_weight * labelled_anomaly_hinge(anomaly_losses, losses)

    def term(self, module, batch_losses, config, generator):
        """The weighted hinge of this step, differentiable in the module's weights."""
        rows = self.rows
        if rows.shape[0] > config.batch_size:
            chosen = torch.randperm(rows.shape[0], generator=generator, device=rows.device)
            rows = rows[chosen[: config.batch_size]]
        noise = draw_noise(rows.shape[0], module, config, generator, rows.device)
        losses = module.loss(rows, noise, config.beta)
        weight = config.label_weight * self.ramp
        return weight * labelled_anomaly_hinge(losses, batch_losses)


def train_step(module, optimizer, batch, noise, beta, trim_fraction=0.0, extra_term=None):
    """One Adam step on one minibatch; returns the batch's loss times its rows.

    The loss is the mean of the rows left after trimming the ``trim_fraction``
    worst (all rows when it is 0); the step minimises it plus
    ``extra_term(per_row)`` when given (the labelled anomalies' hinge), which
    the returned loss leaves out: the history and the stopping rule follow how
    well the model describes the data, which the ramped-in hinge would
    otherwise make look worse epoch after epoch. The returned value is a
    tensor, so the caller adds it up without a device-to-host copy per batch.
    """
    optimizer.zero_grad(set_to_none=True)
    per_row = module.loss(batch, noise, beta)
    loss = trimmed_mean(per_row, trim_fraction)
    objective = loss if extra_term is None else loss + extra_term(per_row)
    objective.backward()
    optimizer.step()
    return loss.detach() * batch.shape[0]


class LearningRateSchedule:
    """Sets the learning rate of each step of a run as ``schedule`` plans it.

    A parameter group with a ``rate_factor`` (see
    :func:`skvae._fitting.parameter_groups`) gets that multiple of the planned
    rate. "constant" leaves the optimizer's rate alone, so a constant run takes
    exactly the steps it took before schedules existed.
    """

    def __init__(self, optimizer, base_rate, total_steps, schedule):
        self.optimizer, self.base_rate = optimizer, base_rate
        self.total_steps, self.schedule = total_steps, schedule
        self.n_steps = 0

    def before_step(self):
        if self.schedule != "constant":
            rate = self.base_rate * learning_rate_factor(
                self.n_steps, self.total_steps, self.schedule)
            for group in self.optimizer.param_groups:
                group["lr"] = rate * group.get("rate_factor", 1.0)
        self.n_steps += 1


def run_epoch(module, optimizer, batches, config, generator, *, schedule=None,
              threads=None, report=None, anomalies=None):
    """One pass over the minibatches ``batches``; returns the mean loss per row.

    ``schedule`` (a :class:`LearningRateSchedule`) sets each step's learning
    rate; ``threads`` (a :class:`~skvae._threads.ThreadChooser`) runs the
    full-size steps on the thread count it finds fastest; ``report`` hears of
    each step, for progress within long epochs; ``anomalies``
    (:class:`LabelledAnomalies` or None) adds their hinge to every step.
    """
    total, n_rows = None, 0
    extra_term = None if anomalies is None else (
        lambda per_row: anomalies.term(module, per_row, config, generator))
    for batch in batches:
        noise = draw_noise(batch.shape[0], module, config, generator, batch.device)
        if schedule is not None:
            schedule.before_step()
        arguments = (module, optimizer, batch, noise, config.beta, config.trim_fraction,
                     extra_term)
        if threads is None:
            step_loss = train_step(*arguments)
        elif batch.shape[0] == config.batch_size:
            step_loss = threads.run(train_step, *arguments)
        else:
            # A short last batch: not timed (it would flatter its count), and on a
            # fixed count, since only full batches were checked to give the same
            # bits on every count.
            step_loss = threads.run_fixed(train_step, *arguments)
        total = step_loss if total is None else total + step_loss
        n_rows += batch.shape[0]
        if report is not None:
            report.step()
    # One device-to-host copy per epoch, not one per batch.
    return total.item() / n_rows


@torch.no_grad()
def validation_score(module, X_val, noise, beta, anomalies=None, config=None):
    """Mean ELBO per row on held-out data, with fixed noise so epochs compare fairly.

    With ``anomalies`` (:meth:`LabelledAnomalies.held_out`), minus their hinge.
    """
    module.eval()
    per_row = module.loss(X_val, noise, beta)
    module.train()
    if anomalies is not None:
        return -(per_row.mean() + anomalies.held_out_term(module, per_row, config)).item()
    return -per_row.mean().item()


def same_step_on_thread_counts(module, optimizer, rows, config, device, first, second):
    """Whether a full training step gives the same weights on ``first`` and ``second`` threads.

    Tried on copies of ``module`` and ``optimizer``, on the first
    ``config.batch_size`` of ``rows`` with noise from a generator of its own, so
    the training itself is untouched. torch's threads split some kernels' sums
    differently (see :mod:`skvae._threads`). Which kernels split depends on the
    shapes; whether a split changes the bits also depends on the values, so one
    equal step is evidence, not proof, that the whole fit would be equal.
    """
    batch = rows[: config.batch_size]
    if batch.shape[0] < config.batch_size:
        return False  # no full batch to try; one count then
    weights = []
    for count in (first, second):
        torch.set_num_threads(count)
        copy_module = copy.deepcopy(module)
        copy_optimizer = type(optimizer)(_same_groups(optimizer, module, copy_module),
                                         **optimizer.defaults)
        copy_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        generator = torch.Generator(device=device).manual_seed(0)
        noise = draw_noise(batch.shape[0], copy_module, config, generator, device)
        copy_module.train()
        train_step(copy_module, copy_optimizer, batch, noise, config.beta,
                   config.trim_fraction)
        weights.append([parameter.detach() for parameter in copy_module.parameters()])
    return all(torch.equal(a, b) for a, b in zip(*weights))


def _same_groups(optimizer, module, copy_module):
    """``optimizer``'s parameter groups over the weights of ``copy_module`` (``module``'s copy)."""
    copies = dict(zip((id(p) for p in module.parameters()), copy_module.parameters()))
    return [{**group, "params": [copies[id(p)] for p in group["params"]]}
            for group in optimizer.param_groups]


def _window_improved(loss_curve, config):
    """Whether the training loss still goes down: the stopping rule without validation.

    The mean loss of the last ``n_iter_no_change`` epochs must be ``tol`` below
    the mean of the ``n_iter_no_change`` before. A VAE's training loss is noisy
    from epoch to epoch (each epoch draws new latent noise), so "no new best for n
    epochs", as ``MLPRegressor`` uses, stops long before the loss has stopped
    going down; means over windows follow the trend instead. (With validation
    data, progress is a validation score ``tol`` above the run's best so far.)
    """
    n = config.n_iter_no_change
    if len(loss_curve) < 2 * n:
        return True
    return sum(loss_curve[-n:]) / n < sum(loss_curve[-2 * n : -n]) / n - config.tol


def _patience(validating, config):
    """Epochs without progress before training stops (windows already average)."""
    return config.n_iter_no_change if validating else 1


_FINITE_CHECK_ROWS = 1024


def _snapshot(module):
    """A copy of the module's weights, detached from training."""
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


@torch.no_grad()
def _gives_finite_loss(module, state, X, config):
    """Whether the weights ``state`` are finite and give a finite loss on the rows ``X``.

    A finite epoch loss does not vouch for the weights that end the epoch: it is
    measured before each step, so the last step may still leave huge or NaN
    weights. The module is evaluated with ``state`` in place of its own weights,
    which it keeps. At the posterior mean (zero noise), so it draws no random
    numbers.
    """
    if not all(torch.isfinite(value).all() for value in state.values()):
        return False
    for start in range(0, X.shape[0], config.batch_size):
        batch = X[start : start + config.batch_size]
        noise = batch.new_zeros((batch.shape[0], module.n_components))
        per_row = functional_call(module, state, (batch, noise, config.beta))
        if not torch.isfinite(per_row).all():
            return False
    return True


def _first_usable(module, candidates, X, config):
    """Position and weights of the first usable state of ``candidates`` (newest first).

    Only the final weights of a healthy run are checked, once, so it pays one
    forward pass.

    Raises
    ------
    ValueError
        If even the starting weights give a non-finite loss, saying which setting
        is to blame.
    """
    X = X[:_FINITE_CHECK_ROWS]
    for position, state in enumerate(candidates):
        if _gives_finite_loss(module, state, X, config):
            return position, state
    if not torch.isfinite(X).all():
        culprit = (
            "X holds values too large for float32 arithmetic. Rescale X (for example "
            "with StandardScaler)"
        )
    elif config.beta != 1 and _gives_finite_loss(
        module, candidates[-1], X, dataclasses.replace(config, beta=1.0)
    ):
        culprit = (
            f"beta={config.beta!r} makes the KL term overflow float32. Use a smaller "
            "beta"
        )
    else:
        culprit = (
            "X holds values too large for float32 arithmetic, or the network "
            "overflows on them. Rescale X (for example with StandardScaler)"
        )
    raise ValueError(
        "Training produced no weights with a finite loss, not even the starting ones: "
        f"{culprit}."
    )


def _fixed(threads, function, *args):
    """``function(*args)`` on the chooser's fixed count (its shapes were not checked)."""
    return function(*args) if threads is None else threads.run_fixed(function, *args)


def train(module, batches, config, generator, optimizer, *, check_rows, X_val=None,
          history=None, threads=None, anomalies=None):
    """Maximise the ELBO of ``module`` with Adam; returns a :class:`TrainingResult`.

    Parameters
    ----------
    module : VAE
        The network to train. Its weights change; load ``result.state`` into it
        afterwards to keep the chosen ones.
    batches : TensorBatches or StreamedBatches
        ``batches.epoch()`` gives the minibatch tensors of one pass over the
        training data; called once per epoch.
    config : TrainingConfig
    generator : torch.Generator
        Draws the training noise (and whatever ``batches`` draws).
    optimizer : torch.optim.Optimizer
        The optimizer over ``module``'s parameters, owned by the caller, which
        keeps or drops its state afterwards.
    check_rows : torch.Tensor
        Training rows on which the final weights must give a finite loss.
    X_val : torch.Tensor or None
        Held-out rows for early stopping; the weights of the best epoch are kept.
    history : TrainingHistory or None
        The history of earlier fits (warm start); not changed.
    threads : ThreadChooser or None
        Chooses the torch thread count of the training steps (see
        :mod:`skvae._threads`); None runs them on the current count.
    anomalies : LabelledAnomalies or None
        Labelled anomalies, not among ``batches``, whose hinge every step adds.

    Stops after ``config.max_iter`` epochs, or earlier when the stopping rule
    (:meth:`_Progress.after_epoch`, :func:`_window_improved`) sees no progress. A
    non-finite loss stops training and keeps the last finite weights;
    ``KeyboardInterrupt`` stops it and keeps the weights of the last complete
    epoch, with a ``RuntimeWarning``.
    """
    history = history if history is not None else TrainingHistory()
    result = TrainingResult(history=history, state={})
    validating = X_val is not None
    best_score = -math.inf
    if validating:
        val_noise = draw_noise(X_val.shape[0], module, config, generator, X_val.device)
        held_out = anomalies and anomalies.held_out(module, config, generator)
        # The starting weights are the baseline: scores of earlier fits (a warm
        # start) came from other validation rows and do not compare.
        baseline = _fixed(threads, validation_score, module, X_val, val_noise, config.beta,
                          held_out, config)
        if math.isfinite(baseline):
            best_score = baseline - config.loss_offset
    # Fallbacks, newest first, for when the newest weights turn out unusable.
    initial_state = _snapshot(module)
    progress = _Progress(
        tuple(history.loss_curve), tuple(history.validation_scores),
        initial_state, initial_state, best_score,
    )
    schedule = LearningRateSchedule(optimizer, config.learning_rate,
                                    config.max_iter * batches.n_batches, config.schedule)
    module.train()
    with EpochReport(config.verbose, config.max_iter, batches.n_batches) as report:
        try:
            for _ in range(config.max_iter):
                loss = run_epoch(module, optimizer, batches.epoch(), config, generator,
                                 schedule=schedule, threads=threads, report=report,
                                 anomalies=anomalies and anomalies.in_epoch(
                                     len(progress.loss_curve)))
                loss += config.loss_offset
                if not math.isfinite(loss):
                    result.diverged = True
                    break
                score = None
                if validating:
                    score = _fixed(threads, validation_score, module, X_val, val_noise,
                                   config.beta, held_out, config)
                    score -= config.loss_offset
                progress = progress.after_epoch(loss, score, _snapshot(module), config)
                report.epoch(len(progress.loss_curve), loss, score)
                if progress.epochs_without_improvement >= _patience(validating, config):
                    result.converged = True
                    break
            else:
                # Every planned epoch ran: a decaying schedule has ended at a
                # learning rate near zero, converged by design.
                result.schedule_ended = config.schedule != "constant"
        except KeyboardInterrupt:
            result.interrupted = True
            warn(
                "Training interrupted by the user; keeping the best weights so far "
                f"(after {len(progress.loss_curve)} complete epochs)."
                + (
                    " No epoch finished, so the model keeps its starting weights; call "
                    "fit again to train it."
                    if not progress.loss_curve
                    else ""
                ),
                TrainingInterruptedWarning,
            )
    result.history = TrainingHistory(
        list(progress.loss_curve), list(progress.validation_scores)
    )
    result.n_epochs = progress.n_epochs
    # previous_state gave a finite loss on the first batch of the epoch after it;
    # kept_state has not been evaluated since its last step, so it is checked.
    candidates = [progress.kept_state, progress.previous_state, initial_state]
    position, result.state = _fixed(threads, _first_usable, module, candidates,
                                    check_rows, config)
    result.diverged = result.diverged or position > 0
    module.eval()
    return result
