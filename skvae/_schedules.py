"""Learning-rate schedules and the epoch budget: pure functions of the step count.

``"constant"`` keeps ``learning_rate_init`` for every step (skvae's behaviour
before schedules). ``"cosine"`` warms up linearly over the first
``WARMUP_FRACTION`` of the planned steps, then decays along a half cosine to
zero at the last planned step (Loshchilov and Hutter's SGDR without restarts):
a run that ends because its schedule ended has taken its last steps at a
learning rate near zero, so it ends converged rather than cut off while Adam
still jitters around a minimum. The warm-up keeps Adam's first steps, whose
second-moment estimates come from a few gradients, small.

``max_iter="auto"`` sizes the epoch budget by the data, as scvi-tools does: a
fixed number of optimizer steps (``AUTO_STEPS``), bounded to
[``AUTO_MIN_EPOCHS``, ``AUTO_MAX_EPOCHS``] epochs.
"""

import math

SCHEDULES = ("constant", "cosine")

WARMUP_FRACTION = 0.05

# Chosen in benchmarks/results_schedules.md (issue 20): on MNIST-8k (63 steps an
# epoch at batch 128), a cosine run of 50 epochs at 2e-3 reached the held-out
# likelihood of 200 constant epochs at 1e-3 within 0.5 nats. Small data need
# more epochs than a fixed number of steps gives them: on the digits (11 steps
# an epoch) 50 epochs fell 1 nat short and 100 came within 0.3; a 3-D Gaussian
# of 1,500 rows was 0.11 nats from its true density after 100 epochs, 0.04
# after a 150-epoch plan (0.07 at the 200 constant epochs before). Small tables
# gain from more: creditcard (1,000 training rows, 8 steps an epoch) reached
# -23.25 nats with a 200-epoch plan against -23.6 with 150 (and -23.4 at the 200
# constant epochs before); the stopping rule ends most small runs sooner, once
# their loss is flat (the digits near epoch 130). No data get fewer than 20.
# At most 80 epochs, at a higher rate when that cuts the plan
# (benchmarks/sweep_digits_budget.py, results_defaults.md): with the quantile
# maps and the variances' rate of issue 21, the digits reached -24.08 nats in 80
# epochs at 4e-3 (-24.33 at 2e-3) in 0.23-0.26 of the fit time before issue 20,
# where the stopping rule ran them 116-162 epochs at 2e-3 (-23.61, 0.38); the
# tables' held-out likelihood was as good or better (penguins -18.30 against
# -18.29, creditcard -18.64 against -18.82, slid -9.74 against -9.75).
AUTO_STEPS = 3200
AUTO_MIN_EPOCHS = 20
AUTO_MAX_EPOCHS = 80
# The most a short plan multiplies an "auto" learning rate by.
AUTO_MAX_RATE_FACTOR = 2.0


def learning_rate_factor(step, total_steps, schedule):
    """The factor of ``learning_rate_init`` for the 0-based ``step`` of ``total_steps``.

    Parameters
    ----------
    step : int
        Steps taken before this one in the run.
    total_steps : int
        Steps the run plans (its epochs times the minibatches of an epoch).
    schedule : {"constant", "cosine"}

    Returns
    -------
    float
        In [0, 1]: 1 throughout for "constant"; for "cosine", ``(step + 1) / w``
        during the ``w`` warm-up steps, then ``(1 + cos(pi * t)) / 2`` with
        ``t`` the fraction of the decay done. Steps beyond the plan (a run given
        more steps than planned) keep the last factor.

    Examples
    --------
    >>> from skvae._schedules import learning_rate_factor
    >>> [round(learning_rate_factor(s, 100, "cosine"), 3) for s in (0, 4, 5, 52, 99)]
    [0.2, 1.0, 1.0, 0.5, 0.0]
    """
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"Unknown learning-rate schedule {schedule!r}.")
    warmup = warmup_steps(total_steps)
    if step < warmup:
        return (step + 1) / warmup
    decay_steps = max(1, total_steps - warmup - 1)
    done = min(1.0, (step - warmup) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * done))


def warmup_steps(total_steps):
    """Steps of linear warm-up in a cosine schedule of ``total_steps`` (at least 1)."""
    return max(1, int(WARMUP_FRACTION * total_steps))


def auto_max_iter(n_rows, batch_size):
    """Epochs of ``AUTO_STEPS`` optimizer steps over ``n_rows`` rows, within bounds.

    Examples
    --------
    >>> from skvae._schedules import auto_max_iter
    >>> auto_max_iter(8000, 128), auto_max_iter(1_000_000, 128), auto_max_iter(1347, 128)
    (51, 20, 80)
    """
    epochs = round(AUTO_STEPS / _steps_per_epoch(n_rows, batch_size))
    return min(AUTO_MAX_EPOCHS, max(AUTO_MIN_EPOCHS, epochs))


def auto_rate_factor(n_rows, batch_size):
    """How much an "auto" learning rate grows when :func:`auto_max_iter` plans few steps.

    ``AUTO_STEPS`` over the planned steps, within [1, ``AUTO_MAX_RATE_FACTOR``]:
    a plan the epoch cap cuts short takes proportionally larger steps, up to
    twice the rate. Data with at least ``AUTO_STEPS`` planned steps keep the rate.

    Examples
    --------
    >>> from skvae._schedules import auto_rate_factor
    >>> auto_rate_factor(8000, 128), auto_rate_factor(1347, 128), auto_rate_factor(2790, 128)
    (1.0, 2.0, 1.8181818181818181)
    """
    steps_per_epoch = _steps_per_epoch(n_rows, batch_size)
    planned = auto_max_iter(n_rows, batch_size) * steps_per_epoch
    return min(AUTO_MAX_RATE_FACTOR, max(1.0, AUTO_STEPS / planned))


def _steps_per_epoch(n_rows, batch_size):
    return math.ceil(n_rows / max(1, min(batch_size, n_rows)))
