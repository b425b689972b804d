"""One fitting function: resolved settings and validated rows in, a fitted model out.

:func:`fit_model` owns everything a fit decides beyond the estimator's
parameters: the seeds drawn from ``random_state``, the check that a warm start
still describes the fitted network, the data layer and the network, the
early-stopping split, the source of minibatches, and the optimizer's whole life
(created here, continued from a previous ``partial_fit``, rolled back when a
call fails). It returns a :class:`FitOutcome`; it never changes what it was
given, so the estimator commits the outcome, or nothing.

Knows torch and numpy, not scikit-learn.
"""

import copy
import functools
from dataclasses import dataclass, fields

import numpy as np
import torch

from ._data import DataSpace, has_missing, is_streamed, transform_maps
from ._model import FittedVAE
from ._networks import NetworkSpec, initialize_weights
from ._random import independent_seeds, spawned_seed
from ._schedules import auto_max_iter, auto_rate_factor
from ._threads import chosen_threads
from ._training import (
    LabelledAnomalies,
    StreamedBatches,
    TensorBatches,
    TrainingConfig,
    TrainingHistory,
    same_step_on_thread_counts,
    train,
)

# With early_stopping="auto", rows needed to hold some out for validation.
AUTO_EARLY_STOPPING_ROWS = 100
# Training rows on which the final weights must give a finite loss, when the
# rows are streamed from an array rather than held as a tensor.
_STREAMED_CHECK_ROWS = 1024


@dataclass(frozen=True)
class FitSettings:
    """Everything a fit needs to know from the estimator, "auto" values resolved.

    ``network`` holds the parameters that shape the network (see
    :meth:`NetworkSpec.from_params`); ``early_stopping`` may still be "auto",
    which depends on the number of rows. ``learning_rate_is_auto``: whether
    ``learning_rate`` is the estimator's "auto" choice, which a ``max_iter="auto"``
    plan of few steps raises (:func:`~skvae._schedules.auto_rate_factor`).
    """

    network: dict
    likelihood: str
    numeric_transform: str
    beta: float
    batch_size: int
    learning_rate: float
    variance_rate_factor: float
    schedule: str
    max_iter: object  # int or "auto"
    tol: float
    n_iter_no_change: int
    early_stopping: object  # bool or "auto"
    validation_fraction: float
    draws_per_row: int
    trim_fraction: float
    label_weight: float
    device: torch.device
    random_state: object
    verbose: int
    owner: str
    learning_rate_is_auto: bool = False

    @classmethod
    def from_params(cls, params, auto_batch_size, auto_learning_rate, *, device, owner,
                    variance_rate_factor=1.0):
        """The settings the estimator parameters ``params`` give, "auto" resolved.

        ``auto_batch_size`` and ``auto_learning_rate`` map an architecture to the
        estimator's choice for "auto"; ``trim_fraction`` and ``label_weight``
        are the detector's (0 for the others). ``variance_rate_factor`` is the
        estimator's rate for the likelihood's variances, as a multiple of
        the learning rate (see :func:`parameter_groups`).

        Raises
        ------
        ValueError
            If the parameters contradict each other.
        """
        if params["n_training_samples"] > 1 and params["beta"] != 1:
            raise ValueError(
                f"n_training_samples={params['n_training_samples']} trains on the "
                "importance-weighted bound, which has no KL weight; "
                f"beta={params['beta']} needs n_training_samples=1 (the ELBO)."
            )
        architecture = params["architecture"]
        batch_size, learning_rate = params["batch_size"], params["learning_rate_init"]
        return cls(
            network=params, likelihood=params["likelihood"], beta=params["beta"],
            # Only VAETransformer has the parameter; the others map nothing.
            numeric_transform=params.get("numeric_transform", "none"),
            batch_size=auto_batch_size[architecture] if batch_size == "auto" else batch_size,
            learning_rate=(auto_learning_rate[architecture] if learning_rate == "auto"
                           else learning_rate),
            variance_rate_factor=variance_rate_factor,
            schedule=params["learning_rate"], max_iter=params["max_iter"], tol=params["tol"],
            n_iter_no_change=params["n_iter_no_change"],
            early_stopping=params["early_stopping"],
            validation_fraction=params["validation_fraction"],
            draws_per_row=params["n_training_samples"],
            trim_fraction=params.get("trim_fraction", 0.0),
            label_weight=params.get("label_weight", 0.0), device=device,
            random_state=params["random_state"], verbose=params["verbose"], owner=owner,
            learning_rate_is_auto=learning_rate == "auto",
        )


@dataclass(frozen=True)
class PreviousFit:
    """The fit a warm start or ``partial_fit`` continues from."""

    model: FittedVAE
    history: TrainingHistory
    optimizer_state: object  # Adam's state_dict after the last partial_fit, or None
    n_calls: int  # epochs (partial_fit calls) run so far


@dataclass(frozen=True)
class FitOutcome:
    """What :func:`fit_model` hands back for the estimator to commit."""

    model: FittedVAE
    history: TrainingHistory
    validating: bool  # a held-out split was scored (validation_scores_ is set)
    optimizer_state: object  # Adam's state to continue from, or None
    n_epochs: int  # epochs completed in this run
    max_iter: int  # epochs planned for it ("auto" resolved)
    converged: bool
    interrupted: bool
    diverged: bool
    schedule_ended: bool  # a decaying schedule ran all its planned epochs


def fit_model(X, schema, settings, *, previous=None, one_pass=False, anomalous=None):
    """Fit the data layer and the network to the validated rows ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Table codes (see :mod:`skvae._tables`), NaN where missing; a memmap or
        a very large array is streamed, never copied whole.
    schema : TableSchema
        The table's columns, fitted (or, when continuing, kept) by the estimator.
    settings : FitSettings
    previous : PreviousFit or None
        Continue this fit: its data layer, network and history are kept (a
        warm start), and with ``one_pass`` its optimizer's state too.
    one_pass : bool, default=False
        One epoch, no early stopping (``partial_fit``).
    anomalous : ndarray of bool of shape (n_samples,) or None
        Rows labelled as anomalies: left out of the rows the ELBO is fitted
        (and validated) on, and pushed to a low likelihood instead (see
        :class:`~skvae._training.LabelledAnomalies`). None, or no row marked,
        is the unsupervised fit, unchanged.

    Returns
    -------
    FitOutcome
    """
    # One draw from random_state, split into independent streams for the weights,
    # the scoring noise, the minibatch order and the validation split.
    init_seed, noise_seed, training_seed, split_seed = independent_seeds(
        settings.random_state, 4)
    if one_pass and previous is not None:
        # Each call its own minibatch order and noise, reproducible from
        # random_state and the number of calls before.
        training_seed = spawned_seed(settings.random_state, previous.n_calls)
    device = settings.device
    data_space, spec, module, history, noise_seed = _starting_point(
        X, schema, settings, previous, init_seed, noise_seed)
    inliers = _other_rows(anomalous)
    train_index, val_index = (
        (inliers, None) if one_pass
        else _split_for_early_stopping(X.shape[0], settings, split_seed, rows=inliers)
    )
    n_train = X.shape[0] if train_index is None else len(train_index)
    config = _training_config(settings, n_train, data_space, one_pass)
    optimizer = _optimizer(module, settings, config.learning_rate,
                           previous if one_pass else None)
    generator = torch.Generator(device=device).manual_seed(training_seed)
    X_val = None if val_index is None else data_space.to_tensor(X[val_index], device)
    batches, check_rows = _batch_source(X, train_index, val_index, config.batch_size,
                                        data_space, device, generator, training_seed)
    anomalies = None if inliers is None else LabelledAnomalies(
        data_space.to_tensor(X[np.flatnonzero(anomalous)], device))
    same_bits = functools.partial(same_step_on_thread_counts, module, optimizer, check_rows,
                                  config, generator.device)
    # The planned full-size steps (the ones timed): the stopping rule may end sooner.
    planned_steps = config.max_iter * (n_train // config.batch_size)
    with chosen_threads(module, n_calls=planned_steps, device=device,
                        same_bits=same_bits) as threads:
        result = train(module, batches, config, generator, optimizer, check_rows=check_rows,
                       X_val=X_val, history=history, threads=threads, anomalies=anomalies)
    module.load_state_dict(result.state)
    optimizer_state = None
    if one_pass:
        # Steps whose weights were dropped must not linger in Adam's state.
        rolled_back = result.interrupted or result.diverged
        optimizer_state = optimizer.state_dict() if not rolled_back else (
            previous and previous.optimizer_state)
    model = FittedVAE(schema, data_space, spec, module, noise_seed, device, settings.owner)
    return FitOutcome(
        model, result.history, validating=val_index is not None,
        optimizer_state=optimizer_state, n_epochs=result.n_epochs,
        max_iter=config.max_iter, converged=result.converged,
        interrupted=result.interrupted, diverged=result.diverged,
        schedule_ended=result.schedule_ended,
    )


def _starting_point(X, schema, settings, previous, init_seed, noise_seed):
    """The data layer, spec, network (a copy to train), history and noise seed to start from.

    A continued fit keeps the previous one's data layer, network, history and
    noise; a new one fits the data layer and builds the network from ``init_seed``.
    """
    if previous is None:
        data_space = DataSpace.fit(X, settings.likelihood, schema.levels,
                                   estimator_name=settings.owner,
                                   numeric_transform=settings.numeric_transform)
        spec = _new_spec(data_space, settings, mask_input=has_missing(X))
        return data_space, spec, _build_seeded(spec, init_seed).to(settings.device), None, \
            noise_seed
    data_space, spec = previous.model.data_space, _warm_start_spec(previous.model, settings)
    data_space.check_support(X, estimator_name=settings.owner)
    # Trained as a copy: the fitted network stays whole until commit.
    module = copy.deepcopy(previous.model.module).to(settings.device)
    history = TrainingHistory(
        list(previous.history.loss_curve), list(previous.history.validation_scores))
    return data_space, spec, module, history, previous.model.noise_seed


def _new_spec(data_space, settings, *, mask_input):
    n_gaussian, n_bernoulli, levels = data_space.layout
    return NetworkSpec.from_params(
        settings.network, data_space.n_values, data_space.likelihood,
        column_layout=(n_gaussian, n_bernoulli, *levels), mask_input=mask_input,
    )


def _build_seeded(spec, seed):
    """The untrained network on the CPU, its weights a function of ``seed`` only.

    Laid out on torch's ``meta`` device (which draws and allocates nothing),
    then given memory and weights drawn from a generator of its own: the
    weights depend on the seed only, not on the device or on other code, and
    torch's process-wide generator is never touched.
    """
    with torch.device("meta"):
        module = spec.build()
    return initialize_weights(module.to_empty(device="cpu"),
                              torch.Generator().manual_seed(seed))


def _optimizer(module, settings, learning_rate, previous):
    """Adam over ``module``'s weights at ``learning_rate``, continuing ``previous``'s state.

    The state is deep-copied in: ``load_state_dict`` keeps the tensors it is
    given when their device and dtype already fit, so training would otherwise
    change the committed state of the previous call in place.
    """
    optimizer = torch.optim.Adam(parameter_groups(module, settings.variance_rate_factor),
                                 lr=learning_rate,
                                 fused=_fused_adam(module, settings.device))
    if previous is not None and previous.optimizer_state is not None:
        optimizer.load_state_dict(
            _regrouped(copy.deepcopy(previous.optimizer_state), module, optimizer))
    for group in optimizer.param_groups:
        group["lr"] = learning_rate * group["rate_factor"]
    return optimizer


def _regrouped(state, module, optimizer):
    """Adam's ``state`` laid out in ``optimizer``'s parameter groups, at their rate factors.

    The groups' ``rate_factor`` is this fit's, whatever the state holds: an
    estimator pickled by a version of skvae without it continues, and so does
    one whose Adam had one group of all of ``module``'s weights, in their order,
    each weight's moments moved under it in the groups of
    :func:`parameter_groups`.
    """
    if len(state["param_groups"]) != len(optimizer.param_groups):
        if len(state["param_groups"]) != 1:
            raise ValueError("the optimizer state to continue from does not fit the network.")
        position = {id(p): i for i, p in enumerate(module.parameters())}
        settings = state["param_groups"][0]
        moments, groups, index = {}, [], 0
        for group in optimizer.param_groups:
            ids = []
            for parameter in group["params"]:
                if position[id(parameter)] in state["state"]:
                    moments[index] = state["state"][position[id(parameter)]]
                ids.append(index)
                index += 1
            groups.append({**settings, "params": ids})
        state = {"state": moments, "param_groups": groups}
    for saved, group in zip(state["param_groups"], optimizer.param_groups):
        saved["rate_factor"] = group["rate_factor"]
    return state


def parameter_groups(module, variance_rate_factor):
    """Adam's parameter groups: the network's weights, then the likelihood's own.

    Each group carries its ``rate_factor``, the multiple of the learning rate
    it trains at (the schedule scales every group's rate alike): 1 for the
    network, ``variance_rate_factor`` for the likelihood's weights, one
    variance per Gaussian feature shared by every row. A module without any
    (Bernoulli) has the one group it always had.

    Adam moves each weight by about its rate per step, whatever the size of
    its gradient, so at the network's rate a variance is the slowest weight to
    settle: at 2e-3 a log-variance needs some 1,000 steps to fall by 2, and a
    small table gets a few hundred steps in all (penguins: 3 an epoch).
    """
    likelihood = [p for p in module.likelihood.parameters() if p.numel()]
    own = {id(p) for p in likelihood}
    groups = [{"params": [p for p in module.parameters() if id(p) not in own],
               "rate_factor": 1.0}]
    if likelihood:
        groups.append({"params": likelihood, "rate_factor": float(variance_rate_factor)})
    return groups


def _fused_adam(module, device):
    """Whether Adam runs fused: one kernel over all weights instead of a loop over them.

    20% less time per epoch for the default dense network on the CPU, and the
    same updates on any thread count; torch fuses float weights on the CPU and
    CUDA only.
    """
    return torch.device(device).type in ("cpu", "cuda") and all(
        parameter.is_floating_point() for parameter in module.parameters())


def _training_config(settings, n_train, data_space, one_pass):
    batch_size = min(settings.batch_size, n_train)
    max_iter, learning_rate = settings.max_iter, settings.learning_rate
    if max_iter == "auto":
        max_iter = auto_max_iter(n_train, batch_size)
        if settings.learning_rate_is_auto and not one_pass:
            learning_rate *= auto_rate_factor(n_train, batch_size)
    return TrainingConfig(
        batch_size=batch_size,
        learning_rate=learning_rate,
        # partial_fit: one pass at the constant rate; the caller decides when to stop.
        schedule="constant" if one_pass else settings.schedule,
        max_iter=1 if one_pass else max_iter,
        tol=settings.tol,
        n_iter_no_change=settings.n_iter_no_change,
        beta=settings.beta,
        loss_offset=data_space.log_abs_det,
        verbose=settings.verbose,
        trim_fraction=settings.trim_fraction,
        draws_per_row=settings.draws_per_row,
        label_weight=settings.label_weight,
    )


def _batch_source(X, train_index, val_index, batch_size, data_space, device, generator,
                  training_seed):
    """The minibatches of an epoch, and the rows the final weights are checked on.

    Streamed arrays (a memmap, say) are read batch by batch, never as a tensor of
    all of them; their order comes from a CPU generator of its own, the noise
    from the device's.
    """
    if is_streamed(X):
        (order_seed,) = np.random.SeedSequence(training_seed).generate_state(1)
        order = torch.Generator().manual_seed(int(order_seed))
        batches = StreamedBatches(X, train_index, batch_size, order, data_space, device)
        n_train = X.shape[0] if train_index is None else len(train_index)
        first = (np.arange(min(_STREAMED_CHECK_ROWS, n_train)) if train_index is None
                 else train_index[:_STREAMED_CHECK_ROWS])
        return batches, data_space.to_tensor(X[np.sort(first)], device)
    rows = data_space.to_tensor(X if train_index is None else X[train_index], device)
    return TensorBatches(rows, batch_size, generator), rows


def early_stopping_for(early_stopping, n_samples):
    """Whether a fit on ``n_samples`` rows holds some out to stop early."""
    if early_stopping == "auto":
        return n_samples >= AUTO_EARLY_STOPPING_ROWS
    return bool(early_stopping)


def _other_rows(anomalous):
    """Indices of the rows not labelled anomalous; None when no row is (all rows).

    Raises
    ------
    ValueError
        If every row is labelled anomalous: the model needs rows to describe.
    """
    if anomalous is None or not anomalous.any():
        return None
    if anomalous.all():
        raise ValueError(
            "y labels every row an anomaly (1), which leaves no rows for the model to "
            "describe. Mark the rows not known to be anomalies -1 (unlabelled) or 0 "
            "(known inliers)."
        )
    return np.flatnonzero(~anomalous)


def _split_for_early_stopping(n_samples, settings, seed, rows=None):
    """Row indices to train and to validate on; ``(None, None)`` for all, none.

    With ``rows``, indices, those rows are split instead of ``range(n_samples)``.
    """
    if rows is not None:
        train_index, val_index = _split_for_early_stopping(len(rows), settings, seed)
        return (rows, None) if train_index is None else (rows[train_index],
                                                         rows[val_index])
    if not early_stopping_for(settings.early_stopping, n_samples):
        return None, None
    n_val = max(1, int(round(settings.validation_fraction * n_samples)))
    if n_samples - n_val < 1:
        raise ValueError(
            f"early_stopping=True holds out validation_fraction="
            f"{settings.validation_fraction} of the data, which leaves no training rows "
            f"out of n_samples={n_samples}. Pass more rows or set "
            "early_stopping=False."
        )
    order = np.random.RandomState(seed).permutation(n_samples)
    return order[n_val:], order[:n_val]


def _warm_start_spec(model, settings):
    """The fitted network's spec, after checking the parameters still describe it.

    Raises
    ------
    ValueError
        If a parameter that shapes the network changed since it was fitted:
        continuing would give a network that disagrees with the parameters.
    """
    fitted = model.spec
    likelihood = fitted.likelihood if settings.likelihood == "auto" else settings.likelihood
    if fitted.likelihood == "mixed":  # the parameter sets the numeric columns only
        likelihood = "mixed"
    wanted = NetworkSpec.from_params(
        settings.network, fitted.n_features, likelihood, fitted.column_layout,
        fitted.mask_input,
    )
    # A dense network does not read image_shape (it is kept for plotting).
    dense = fitted.architecture == wanted.architecture == "dense"
    ignored = {"image_shape"} if dense else set()
    changed = [
        f"{field.name} ({getattr(fitted, field.name)!r} -> "
        f"{getattr(wanted, field.name)!r})"
        for field in fields(NetworkSpec)
        if field.name not in ignored
        and getattr(fitted, field.name) != getattr(wanted, field.name)
    ]
    if changed:
        raise ValueError(
            f"warm_start=True and partial_fit continue training the fitted network, "
            f"but the parameters now describe another one: {', '.join(changed)}. Set "
            "warm_start=False to fit a new network, or set the parameters back."
        )
    _check_numeric_transform(model.data_space, settings)
    return fitted


def _check_numeric_transform(data_space, settings):
    """Refuse a continued fit whose ``numeric_transform`` now asks for other columns' maps.

    The data layer is kept by a continued fit, so its maps are those of the
    first fit. A layer fitted to map whose real-valued columns were all
    constant has no maps (nothing to map) and scale 1 everywhere: that case
    is not told apart from an unmapped one, and not refused.
    """
    transform = settings.numeric_transform
    wanted = transform_maps(transform, data_space.levels)
    mapped = data_space.maps is not None
    gaussian = np.array(data_space.kinds) == "gaussian"
    if mapped != wanted and (mapped or np.any(data_space.scale[gaussian] != 1.0)):
        raise ValueError(
            f"warm_start=True and partial_fit continue training the fitted network, "
            f"but numeric_transform={transform!r} now "
            f"{'maps no column' if mapped else 'maps columns'} where the fitted data "
            f"layer {'maps some' if mapped else 'maps none'}. Set warm_start=False to "
            "fit a new network, or set the parameter back."
        )
