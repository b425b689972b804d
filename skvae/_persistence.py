"""Saving and loading fitted estimators without pickle.

:func:`save` writes one file with :func:`torch.save`: the constructor parameters
and the fitted attributes as plain data (numbers, strings, lists, tensors), the
network's weights as a CPU ``state_dict``, and a SHA-256 digest of all of it.
:func:`load` reads it back with ``torch.load(weights_only=True)``, which refuses
to build any object but plain data and tensors, so a crafted file cannot run code.
The estimator class is looked up in skvae's own public estimators, never imported
by a name from the file; the network is rebuilt by the estimator's own builder and
the weights loaded with ``strict=True``. Anything unexpected is a
:class:`ModelFileError`, and the estimator is only returned once all checks pass.
"""

import dataclasses
import hashlib
import os
import tempfile
import warnings
from numbers import Integral

import numpy as np
import torch

from ._base import BaseVAE
from ._training import TrainingHistory

FORMAT = "skvae"
FORMAT_VERSION = 1

# Fitted attributes every saved estimator must have, with what they must be.
_REQUIRED_FITTED = ("n_features_in_", "likelihood_", "device_", "_shift", "_scale",
                    "_log_abs_det_scale", "_noise_seed")


class ModelFileError(ValueError):
    """A file that :func:`skvae.load` cannot read as a saved skvae model.

    Raised for truncated or corrupted files, files of another kind (a pickle, a
    plain state dict, text) and files written in an unsupported format version.
    A subclass of :class:`ValueError`.
    """


def _estimator_classes():
    """skvae's public estimators by name: the only classes :func:`load` builds."""
    import skvae

    classes = {}
    for name in skvae.__all__:
        candidate = getattr(skvae, name)
        if isinstance(candidate, type) and issubclass(candidate, BaseVAE):
            classes[name] = candidate
    return classes


# ----------------------------------------------------------------- encoding


def _encode(value, where):
    """``value`` as plain data that ``torch.load(weights_only=True)`` accepts."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (Integral, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"type": "tuple", "value": [_encode(v, where) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
        return {"type": "dict", "value": items}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            return {"type": "ndarray", "value": torch.from_numpy(np.array(value, copy=True))}
        if value.dtype.kind in "OU" and all(isinstance(v, str) for v in value.ravel()):
            return {"type": "str_array", "value": [str(v) for v in value.ravel()],
                    "shape": list(value.shape)}
    if isinstance(value, torch.Tensor):
        return {"type": "tensor", "value": value.detach().cpu().clone()}
    if isinstance(value, torch.device):
        return {"type": "device", "value": str(value)}
    if isinstance(value, TrainingHistory):
        return {"type": "history", "value": _encode(dataclasses.asdict(value), where)}
    if isinstance(value, np.random.RandomState):
        return {"type": "random_state", "value": _encode(value.get_state(), where)}
    raise TypeError(
        f"skvae.save cannot store {where} of type {type(value).__name__}: only numbers, "
        "strings, lists, tuples, dicts, arrays and tensors are saved as plain data. "
        "Use pickle (from trusted sources only) for estimators holding other objects."
    )


def _is_str(value):
    return isinstance(value, str)


def _decode(value, where):
    """Inverse of :func:`_encode`; anything it did not produce is a ModelFileError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    tagged = isinstance(value, dict) and isinstance(value.get("type"), str)
    if not (tagged and "value" in value):
        raise ModelFileError(f"{where} holds an unexpected {type(value).__name__}.")
    kind, payload = value["type"], value["value"]
    if kind == "tuple" and isinstance(payload, list):
        return tuple(_decode(v, where) for v in payload)
    if kind == "dict" and isinstance(payload, dict) and all(map(_is_str, payload)):
        return {k: _decode(v, f"{where}[{k!r}]") for k, v in payload.items()}
    if kind == "ndarray" and isinstance(payload, torch.Tensor):
        return payload.numpy().copy()
    if kind == "str_array" and isinstance(payload, list) and all(map(_is_str, payload)):
        shape = value.get("shape")
        if isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape):
            if int(np.prod(shape)) == len(payload):
                return np.array(payload, dtype=object).reshape(shape)
    if kind == "tensor" and isinstance(payload, torch.Tensor):
        return payload
    if kind == "device" and isinstance(payload, str):
        try:
            return torch.device(payload)
        except (RuntimeError, TypeError) as error:
            raise ModelFileError(f"{where} names no torch device: {payload!r}.") from error
    if kind == "history" and isinstance(payload, dict) and payload.get("type") == "dict":
        fields = _decode(payload, where)
        names = {f.name for f in dataclasses.fields(TrainingHistory)}
        if set(fields) == names:
            return TrainingHistory(**fields)
    if kind == "random_state":
        state = _decode(payload, where)
        random_state = np.random.RandomState()
        try:
            random_state.set_state(state)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{where} is not a valid RandomState.") from error
        return random_state
    raise ModelFileError(f"{where} holds a malformed {kind!r} entry.")


def _digest(value, hasher):
    """Feed a canonical rendering of ``value`` (plain data and tensors) to ``hasher``."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        hasher.update(f"T{value.dtype}{tuple(value.shape)}".encode())
        hasher.update(data.tobytes())
    elif isinstance(value, dict):
        hasher.update(b"{")
        for key in sorted(value, key=repr):
            hasher.update(repr(key).encode())
            _digest(value[key], hasher)
        hasher.update(b"}")
    elif isinstance(value, (list, tuple)):
        hasher.update(b"[")
        for item in value:
            _digest(item, hasher)
        hasher.update(b"]")
    else:
        hasher.update(f"{type(value).__name__}:{value!r};".encode())


def _checksum(payload):
    hasher = hashlib.sha256()
    _digest({k: v for k, v in payload.items() if k != "sha256"}, hasher)
    return hasher.hexdigest()


# --------------------------------------------------------------------- API


def save(estimator, path):
    """Save a fitted skvae estimator to ``path`` without pickle.

    The file holds the parameters and fitted attributes as plain data and the
    weights as tensors. :func:`load` reads it without running code from the file,
    on any machine: a model fitted on a GPU loads on a CPU-only one. The file is
    written to a temporary name first and then renamed, so an interrupted save
    never leaves a truncated model behind.

    Pickle and joblib also work, but unpickling runs code stored in the file: only
    unpickle files from sources you trust, and use ``save`` / ``load`` to exchange
    models.

    Parameters
    ----------
    estimator : skvae estimator
        A fitted :class:`~skvae.VAETransformer` or other public skvae estimator.
    path : str or path-like
        Where to write the file; an existing file is replaced.

    Raises
    ------
    TypeError
        If ``estimator`` is not a public skvae estimator, or holds an attribute
        that is not plain data.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    Examples
    --------
    >>> import os, tempfile, warnings
    >>> import numpy as np, skvae
    >>> X = np.random.RandomState(0).uniform(size=(20, 3))
    >>> vae = skvae.VAETransformer(hidden_layer_sizes=(4,), max_iter=2,
    ...                            random_state=0)
    >>> with warnings.catch_warnings():  # 2 epochs: a demonstration, not a fit
    ...     warnings.simplefilter("ignore")
    ...     vae = vae.fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "vae.skvae")
    >>> skvae.save(vae, path)
    >>> same = skvae.load(path)
    >>> bool(np.array_equal(same.transform(X), vae.transform(X)))
    True
    """
    from sklearn.utils.validation import check_is_fitted

    name = type(estimator).__name__
    if _estimator_classes().get(name) is not type(estimator):
        raise TypeError(
            f"skvae.save saves skvae's public estimators ({', '.join(_estimator_classes())}), "
            f"not {name}. Use pickle or joblib for other objects."
        )
    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    fitted = {
        key: _encode(value, f"attribute {key}")
        for key, value in vars(estimator).items()
        if key not in params and key != "module_"
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skvae_version": _skvae_version(),
        "estimator": name,
        "params": {key: _encode(value, f"parameter {key}") for key, value in params.items()},
        "fitted": fitted,
        "state_dict": {
            key: value.detach().cpu().clone()
            for key, value in estimator.module_.state_dict().items()
        },
    }
    payload["sha256"] = _checksum(payload)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".skvae-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load(path):
    """Load an estimator written by :func:`save`, without running code from the file.

    The file is read with ``torch.load(weights_only=True)``, which builds only
    plain data and tensors, so a file crafted to run code on load cannot; every
    entry is then checked before an estimator is returned. The model is placed on
    the device it was fitted on when that device exists here, else on the CPU.

    Unlike ``pickle.load``, this is safe for files from untrusted sources.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    estimator : skvae estimator
        The fitted estimator, giving bit-identical ``transform``,
        ``score_samples`` and seeded ``sample`` results to the one saved.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) If the file is truncated or corrupted, is not an skvae
        model file, or was written in an unsupported format version. The message
        names the file and the problem.
    OSError
        If the file cannot be opened.

    Examples
    --------
    A file that is not an skvae model, here a pickle, is refused without being
    run:

    >>> import os, pickle, tempfile
    >>> import skvae
    >>> path = os.path.join(tempfile.mkdtemp(), "not-a-model.pkl")
    >>> with open(path, "wb") as file:
    ...     pickle.dump({"weights": [1.0, 2.0]}, file)
    >>> try:
    ...     skvae.load(path)
    ... except skvae.ModelFileError:
    ...     print("refused")
    refused

    See :func:`save` for a round trip.
    """
    path = os.fspath(path)
    with open(path, "rb") as file, warnings.catch_warnings():
        # torch notes the pickle protocol of files it then refuses; the error says more.
        warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
        try:
            payload = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:
            if "Weights only load failed" in str(error):
                # torch's own message suggests weights_only=False: not advice to pass on.
                raise ModelFileError(
                    f"{path!r} is not an skvae model file: it holds objects other than "
                    "plain data and tensors (a pickled estimator, or code to run), which "
                    "were refused without running them. Only files written by "
                    "skvae.save load; unpickle other files only if you trust them."
                ) from None
            raise ModelFileError(
                f"{path!r} is not a readable skvae model file: it is truncated, "
                f"corrupted or of another kind ({type(error).__name__}: "
                f"{_first_line(error)}). Only files written by skvae.save load."
            ) from error
    try:
        return _build(payload)
    except ModelFileError as error:
        raise ModelFileError(f"{path!r} cannot be loaded: {error}") from error


def _build(payload):
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError("it is not an skvae model file (no 'format': 'skvae' entry).")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"it has format version {version!r}, but this skvae ({_skvae_version()}) "
            f"reads version {FORMAT_VERSION} only; it was written by skvae "
            f"{payload.get('skvae_version')!r}. Load it with that version, or refit."
        )
    expected_keys = {"format", "format_version", "skvae_version", "estimator", "params",
                     "fitted", "state_dict", "sha256"}
    if set(payload) != expected_keys:
        raise ModelFileError(
            f"its entries are {sorted(payload)}, expected {sorted(expected_keys)}."
        )
    if payload["sha256"] != _checksum(payload):
        raise ModelFileError("its checksum does not match its contents: it is corrupted.")
    classes = _estimator_classes()
    estimator_class = classes.get(payload["estimator"])
    if estimator_class is None:
        raise ModelFileError(
            f"it holds a {payload['estimator']!r}, which is not one of skvae's "
            f"estimators ({', '.join(classes)})."
        )
    params, fitted, state_dict = payload["params"], payload["fitted"], payload["state_dict"]
    if not (isinstance(params, dict) and isinstance(fitted, dict)
            and isinstance(state_dict, dict)
            and all(isinstance(v, torch.Tensor) for v in state_dict.values())):
        raise ModelFileError("its params, fitted attributes or weights are malformed.")
    estimator = estimator_class()
    if set(params) != set(estimator.get_params(deep=False)):
        raise ModelFileError(
            f"its parameters {sorted(params)} are not those of {estimator_class.__name__}."
        )
    try:
        estimator.set_params(**{k: _decode(v, f"parameter {k}") for k, v in params.items()})
        estimator._validate_params()
    except ModelFileError:
        raise
    except ValueError as error:
        raise ModelFileError(f"it holds invalid parameters: {error}") from error
    for key, value in fitted.items():
        if not (isinstance(key, str) and key.isidentifier() and not key.startswith("__")
                and key != "module_" and key not in params
                and not hasattr(estimator_class, key)):
            raise ModelFileError(f"it holds a fitted attribute with a forbidden name {key!r}.")
        setattr(estimator, key, _decode(value, f"attribute {key}"))
    _check_fitted_attributes(estimator)
    try:
        sizes = tuple(np.atleast_1d(np.asarray(estimator.hidden_layer_sizes)).tolist())
        module = estimator._build_module(estimator.n_features_in_, sizes)
        module.load_state_dict(state_dict, strict=True)
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ModelFileError(
            f"its weights do not fit the network its parameters describe "
            f"({_first_line(error)})."
        ) from error
    if not all(torch.isfinite(value).all() for value in module.state_dict().values()):
        raise ModelFileError("its weights contain NaN or infinite values.")
    module.eval()
    estimator.module_ = module
    estimator.module_.to(estimator._inference_device())
    return estimator


def _check_fitted_attributes(estimator):
    missing = [key for key in _REQUIRED_FITTED if not hasattr(estimator, key)]
    if missing:
        raise ModelFileError(f"it lacks the fitted attributes {missing}.")
    n_features = estimator.n_features_in_
    if not (type(n_features) is int and n_features >= 1):
        raise ModelFileError(f"n_features_in_={n_features!r} is not a positive integer.")
    from ._likelihoods import LIKELIHOODS

    if estimator.likelihood_ not in LIKELIHOODS:
        raise ModelFileError(f"likelihood_={estimator.likelihood_!r} is not known.")
    if not isinstance(estimator.device_, torch.device):
        raise ModelFileError("device_ is not a torch device.")
    for key in ("_shift", "_scale"):
        value = getattr(estimator, key)
        if not (isinstance(value, np.ndarray) and value.dtype == np.float64
                and value.shape == (n_features,) and np.all(np.isfinite(value))):
            raise ModelFileError(f"{key} is not {n_features} finite float64 values.")
    if not np.all(estimator._scale > 0):
        raise ModelFileError("_scale holds values that are not positive.")
    if not isinstance(estimator._log_abs_det_scale, float):
        raise ModelFileError("_log_abs_det_scale is not a float.")
    if not isinstance(estimator._noise_seed, int):
        raise ModelFileError("_noise_seed is not an integer.")


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0].split(". ")[0][:120] if text else type(error).__name__


def _skvae_version():
    import skvae

    return skvae.__version__
