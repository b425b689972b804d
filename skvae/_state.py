"""The fitted state of an estimator as plain data, checked on the way back in.

A model file holds what :meth:`BaseVAE._get_fitted_state` gives: the model's own
entries (:meth:`FittedVAE.to_state`), the estimator's record of the fit (its
columns and training history) and the entries a subclass declares
(``_extra_entries``). :func:`fitted_attributes_from_state` turns such data back
into the attributes of a fitted estimator, checking every entry first, so a
file either gives a working estimator or a ``ValueError`` naming what is wrong.
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._model import FittedVAE
from ._training import TrainingHistory


@dataclass(frozen=True)
class FittedEntry:
    """A fitted attribute beyond the model that the model file keeps.

    ``to_file`` turns the attribute's value into JSON-ready data stored under
    ``key``; ``from_file(value, n_features)`` checks such data, raising
    ``ValueError``, and gives the attribute's value back. An ``optional`` entry
    came after the format's first files: a file without it loads with the
    attribute None, and a None attribute is saved without the entry, so files
    of the same format version stay readable both ways.
    """

    attribute: str
    key: str
    to_file: Callable
    from_file: Callable
    optional: bool = False


# The entries every estimator's state has, besides those of its subclass.
_BASE_ENTRIES = {"n_features_in", "feature_names_in", "table_schema", "data_space",
                 "network", "device", "noise_seed", "loss_curve", "validation_scores"}


def finite_number(value, name):
    """``value`` as a finite float; ``ValueError`` for anything else (bools included)."""
    if type(value) not in (int, float):
        raise ValueError(f"{name}={value!r} is not a number.")
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{name} is a number too large for a float.") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is not finite.")
    return value


def _finite_floats(values, name):
    if not isinstance(values, list):
        raise ValueError(f"{name} is not a list of numbers.")
    return [finite_number(v, name) for v in values]


def fitted_attributes(model, history, validating, optimizer_state=None):
    """The public attributes of a fit with ``model`` and ``history``, set in one place."""
    return {
        "_model": model,
        "module_": model.module,
        "device_": model.device,
        "likelihood_": model.data_space.likelihood,
        "n_components_": model.spec.n_components,
        "image_shape_": model.spec.image_shape,
        "n_iter_": history.n_iter,
        "loss_curve_": list(history.loss_curve),
        "best_loss_": history.best_loss,
        "validation_scores_": list(history.validation_scores) if validating else None,
        "best_validation_score_": history.best_validation_score if validating else None,
        **({} if optimizer_state is None else {"_optimizer_state": optimizer_state}),
    }


def estimator_state(fitted, extra_entries):
    """The model file's entries and weights for the fitted estimator ``fitted``."""
    state, weights = fitted._model.to_state()
    names = getattr(fitted, "feature_names_in_", None)
    scores = fitted.validation_scores_
    state.update({
        "n_features_in": fitted.n_features_in_,
        "feature_names_in": None if names is None else [str(n) for n in names],
        "loss_curve": list(fitted.loss_curve_),
        "validation_scores": None if scores is None else list(scores),
    })
    for entry in extra_entries:
        value = getattr(fitted, entry.attribute)
        if not (entry.optional and value is None):
            state[entry.key] = entry.to_file(value)
    return state, weights


def fitted_attributes_from_state(state, weights, extra_entries, *, owner):
    """The fitted attributes that ``state`` and ``weights`` describe, all checked.

    Raises
    ------
    ValueError
        Naming the entry that is missing, of the wrong type or inconsistent, or
        saying that the model they describe does not work.
    """
    expected = _BASE_ENTRIES | {entry.key for entry in extra_entries if not entry.optional}
    allowed = expected | {entry.key for entry in extra_entries}
    if not isinstance(state, dict) or not expected <= set(state) <= allowed:
        found = sorted(state) if isinstance(state, dict) else state
        raise ValueError(f"the entries are {found}, expected {sorted(expected)}.")
    n_features = state["n_features_in"]
    if not (type(n_features) is int and n_features >= 1):
        raise ValueError(f"n_features_in={n_features!r} is not a positive integer.")
    names = state["feature_names_in"]
    if names is not None and not (
        isinstance(names, list) and len(names) == n_features
        and all(isinstance(n, str) for n in names)
    ):
        raise ValueError(f"feature_names_in is not {n_features} strings.")
    extras = {entry.attribute: entry.from_file(state[entry.key], n_features)
              if entry.key in state else None for entry in extra_entries}
    scores = state["validation_scores"]
    history = TrainingHistory(
        _finite_floats(state["loss_curve"], "loss_curve"),
        _finite_floats(scores or [], "validation_scores"),
    )
    if scores is not None and len(history.validation_scores) > len(history.loss_curve):
        raise ValueError("validation_scores is longer than loss_curve.")
    model = FittedVAE.from_state(state, weights, n_features, owner=owner)
    attributes = {"n_features_in_": n_features,
                  **fitted_attributes(model, history, validating=scores is not None),
                  **extras}
    if names is not None:
        columns = model.schema.columns
        if columns is not None and [str(c) for c in columns] != names:
            raise ValueError("the table schema's columns are not feature_names_in.")
        attributes["feature_names_in_"] = np.array(names, dtype=object)
    return attributes
