"""Saving and loading fitted estimators as safetensors files, without pickle.

A model file is a `safetensors <https://huggingface.co/docs/safetensors>`_ file:
the network's weights are its tensors, and its metadata holds one JSON document
with the format name and version, the estimator's class name, its constructor
parameters and its fitted state (as the estimator declares it in
``_get_fitted_state``), plus a SHA-256 checksum of the document and the weights.
safetensors runs no code and checks its header's size and every tensor's extent
against the file, so reading costs memory bounded by the file's size; JSON builds
only plain data. :func:`load` then checks the document, rebuilds the network on
torch's ``meta`` device (allocating nothing) and assigns the weights only when
every name, shape and dtype matches. Anything unexpected is a
:class:`ModelFileError` naming the file, and an estimator is only returned once
every check has passed.
"""

import errno
import hashlib
import io
import json
import os
import pickle
import pickletools
import stat
import tempfile

import numpy as np
import torch
from safetensors.torch import load as tensors_from_bytes
from safetensors.torch import save as safetensors_bytes

from ._base import BaseVAE
from ._networks import MAX_WEIGHT_TENSORS
from ._priors import PRIOR_TENSORS

# The most tensors a model file holds: the largest network's and a sampling prior's.
_MAX_FILE_TENSORS = MAX_WEIGHT_TENSORS + len(PRIOR_TENSORS)

FORMAT = "skvae"
FORMAT_VERSION = 4
# Keys of the safetensors metadata (a str -> str mapping).
_DOCUMENT_KEY = "skvae"
_CHECKSUM_KEY = "skvae.sha256"


class ModelFileError(ValueError):
    """A file that :func:`skvae.load` cannot read as a saved skvae model.

    Raised for truncated or corrupted files, files of another kind (a pickle, a
    safetensors file of other weights, text) and files written in an
    unsupported format version, with a message naming the file and the
    problem. A subclass of :class:`ValueError`.
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


# ------------------------------------------------------- parameters as JSON

# JSON has lists but no tuples, and the parameters hold tuples, RandomStates and
# devices: each is written as a one-key object tagged with its type.


def _param_to_json(value, name):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, list):
        return [_param_to_json(v, name) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [_param_to_json(v, name) for v in value]}
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return {"ndarray": {"dtype": value.dtype.str, "values": value.tolist()}}
    if isinstance(value, torch.device):
        return {"torch.device": str(value)}
    if isinstance(value, np.random.RandomState):
        kind, keys, position, has_gauss, cached = value.get_state()
        return {"RandomState": [kind, keys.tolist(), position, has_gauss, cached]}
    raise TypeError(
        f"skvae.save cannot store the parameter {name}={value!r} of type "
        f"{type(value).__name__}: parameters are saved as plain data (numbers, "
        "strings, lists, tuples, arrays, devices, RandomState)."
    )


def _param_from_json(value, name):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_param_from_json(v, name) for v in value]
    if not (isinstance(value, dict) and len(value) == 1):
        raise ValueError(f"the parameter {name} is malformed.")
    (kind, payload), = value.items()
    if kind == "tuple" and isinstance(payload, list):
        return tuple(_param_from_json(v, name) for v in payload)
    if kind == "ndarray" and isinstance(payload, dict) and set(payload) == {"dtype", "values"}:
        if payload["dtype"] in ("<i8", "<i4", "<f8", "<f4", "<u8", "<u4"):
            array = np.array(payload["values"], dtype=payload["dtype"])
            if array.ndim <= 1:
                return array
    if kind == "torch.device" and isinstance(payload, str):
        try:
            return torch.device(payload)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"the parameter {name} names no torch device.") from None
    if kind == "RandomState" and isinstance(payload, list) and len(payload) == 5:
        random_state = np.random.RandomState()
        kind_name, keys, position, has_gauss, cached = payload
        if isinstance(keys, list) and len(keys) == 624:
            random_state.set_state(
                (kind_name, np.array(keys, dtype=np.uint32), position, has_gauss, cached)
            )
            return random_state
    raise ValueError(f"the parameter {name} holds a malformed {kind!r} entry.")


def _checksum(document, weights):
    """SHA-256 of the JSON document and of every weight's name, dtype, shape and bytes."""
    hasher = hashlib.sha256(document.encode())
    for name in sorted(weights):
        tensor = weights[name].contiguous()
        hasher.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


# --------------------------------------------------------------------- API


def save(estimator, path):
    """Save a fitted skvae estimator to ``path`` as a safetensors file, without pickle.

    The file holds the weights as tensors and the parameters and fitted state as
    JSON. :func:`load` reads it without running code from the file, on any
    machine: a model fitted on a GPU loads on a CPU-only one. The model saved is
    the one that was fitted, whatever ``set_params`` changed since. The file is
    written to a temporary name first and then renamed, so an interrupted or
    failed save (a full disk) never leaves a truncated model behind and never
    damages the file it would replace.

    Pickle and joblib also work, but unpickling runs code stored in the file: only
    unpickle files from sources you trust, and use ``save`` / ``load`` to exchange
    models.

    Parameters
    ----------
    estimator : skvae estimator, Pipeline, ColumnTransformer or FeatureUnion
        A fitted :class:`~skvae.VAETransformer` or other public skvae estimator,
        or a fitted :class:`~sklearn.pipeline.Pipeline`,
        :class:`~sklearn.compose.ColumnTransformer` or
        :class:`~sklearn.pipeline.FeatureUnion` (nested ones too) holding skvae
        estimators. A container is saved in one file: its skvae estimators in
        skvae's format, its other steps with skops (``pip install
        "skvae[pipeline]"``), which loads only types it trusts.
    path : str or path-like
        Where to write the file; an existing file is replaced.

    Raises
    ------
    TypeError
        If ``estimator`` is not a public skvae estimator or one of those
        containers, a parameter is not plain data, or a container holds an
        object of a type skops does not trust (named in the message).
    ImportError
        If ``estimator`` is a container and skops is not installed.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    OSError
        If the file cannot be written (for example, the disk is full); the file
        that was at ``path`` is left as it was.

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
    from . import _pipeline_files

    if _pipeline_files.is_container(estimator):
        data = _pipeline_files.contents(estimator)
    else:
        metadata, weights = _estimator_contents(estimator)
        try:
            data = safetensors_bytes(weights, metadata=metadata)
        except Exception as error:  # safetensors' own error type, not importable by name
            if "header too large" not in str(error):
                raise
            raise ValueError(
                f"Cannot save the model: its parameters and fitted state take "
                f"{sum(map(len, metadata.values())):,} bytes of JSON, more than a "
                "safetensors header holds (100 MB). Nothing was written."
            ) from None
    _write_atomically(_path_text(path), data)


def _estimator_contents(estimator):
    """The metadata and weights of the file :func:`save` writes for one estimator."""
    name = type(estimator).__name__
    if _estimator_classes().get(name) is not type(estimator):
        raise TypeError(
            f"skvae.save saves skvae's public estimators ({', '.join(_estimator_classes())}) "
            "and fitted scikit-learn Pipeline, ColumnTransformer and FeatureUnion objects "
            f"holding them, not {name}. For other objects use skops (skops.io.dump), "
            "or pickle or joblib for files only you will load."
        )
    fitted, weights = estimator._get_fitted_state()
    # A parameter set to something invalid since fit would make a file that load
    # refuses: refuse it now, while the model is still in hand.
    estimator._validate_params()
    params = {
        key: _param_to_json(value, key)
        for key, value in estimator.get_params(deep=False).items()
    }
    document = json.dumps(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "skvae_version": _skvae_version(),
            "estimator": name,
            "params": params,
            "fitted": fitted,
        },
        sort_keys=True,
    )
    return {_DOCUMENT_KEY: document, _CHECKSUM_KEY: _checksum(document, weights)}, weights


def _path_text(path):
    """``path`` (str, bytes or path-like) as a str; an empty path is refused."""
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError("The path to the model file is empty.")
    return path


def _write_atomically(path, data):
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A symbolic link is followed, so the file it points to is replaced. The new
    file gets the mode of the file it replaces, or the usual ``0o666`` less the
    umask for a new one (``mkstemp`` alone would make it private to its owner).
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as error:
        raise _save_error(error, path, len(data)) from error
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".skvae-", suffix=".tmp")
    except OSError as error:  # no such folder, no permission, a read-only file system
        raise _save_error(error, path, len(data)) from error
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise _save_error(error, path, len(data)) from error
        raise


def _save_error(error, path, n_bytes):
    """An OSError about ``path`` (not the temporary file), saying the old file is kept."""
    if error.errno == errno.ENOSPC:
        reason = f"no space left on the device for {n_bytes} bytes"
    else:
        reason = error.strerror or str(error)
    return OSError(
        error.errno,
        f"Cannot save the model: {reason}. The file there before, if any, is unchanged",
        path,
    )


def load(path):
    """Load an estimator written by :func:`save`, without running code from the file.

    The file is a safetensors file: reading it runs no code and costs memory
    bounded by its size. Every entry is checked before an estimator is returned:
    the format and its version, the parameters, every fitted attribute, the
    weights' names, shapes and dtypes against the network the file describes
    (built on torch's ``meta`` device, so nothing is allocated for a network the
    weights do not match), and a checksum. The model is placed on the device it
    was fitted on when that device exists here, else on the CPU. Loading leaves
    numpy's and torch's global random state alone.

    Unlike ``pickle.load``, this is safe for files from untrusted sources.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    estimator : skvae estimator, Pipeline, ColumnTransformer or FeatureUnion
        The fitted estimator (or container), giving bit-identical ``transform``,
        ``score_samples``, ``predict`` and seeded ``sample`` results to the one
        saved. A container's skvae estimators get every check above; its other
        steps are loaded by skops, which refuses any type outside its default
        trusted set (scikit-learn's estimators, numpy and scipy containers,
        Python's builtins).

    Raises
    ------
    ModelFileError
        (a ``ValueError``) If the file is truncated or corrupted, is not an skvae
        model file, or was written in an unsupported format version. The message
        names the file and the problem.
    ImportError
        If the file holds a container and skops is not installed.
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
    ... except skvae.ModelFileError as error:
    ...     print("refused:", "a pickle" in str(error))
    refused: True

    See :func:`save` for a round trip.
    """
    path = _path_text(path)
    data = _read_regular_file(path)
    metadata, weights = _read_safetensors(data, path)
    from . import _pipeline_files

    try:
        if _pipeline_files.DOCUMENT_KEY in metadata:
            return _pipeline_files.build(metadata, weights)
        return _build(metadata, weights)
    except ModelFileError as error:
        raise ModelFileError(f"{path!r} cannot be loaded: {error}") from None


def _read_regular_file(path):
    """The bytes of the regular file ``path``; folders, FIFOs and devices are refused unread."""
    not_regular = ModelFileError(
        f"{path!r} is not an skvae model file: it is not a regular file (a folder, a "
        "pipe or a device)."
    )
    try:
        file = open(path, "rb", opener=_open_without_blocking)
    except IsADirectoryError:
        raise not_regular from None
    with file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise not_regular
        return file.read()


def _open_without_blocking(path, flags):
    # Opening a FIFO for reading blocks until a writer appears; O_NONBLOCK returns
    # at once, and the regular-file check then refuses it.
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _read_safetensors(data, path):
    """The metadata and the weights of the safetensors bytes ``data`` read from ``path``.

    Raises
    ------
    ModelFileError
        If ``data`` is not a safetensors file, saying what it seems to be
        instead, or holds more tensors than any skvae network has.
    """
    # Counted before safetensors makes a tensor of each entry, and first by a
    # byte count before Python parses the header: each costs seconds for the
    # 100,000 empty tensors that a crafted file of a few MB holds.
    header = None
    n_tensors = _count_tensor_entries(data)
    if n_tensors <= _MAX_FILE_TENSORS:
        header = _safetensors_header(data)
        n_tensors = len(header) - ("__metadata__" in header) if header else 0
    if n_tensors > _MAX_FILE_TENSORS:
        raise ModelFileError(
            f"{path!r} is not an skvae model file: its header declares {n_tensors} "
            f"tensors, more than the {_MAX_FILE_TENSORS} of the largest network skvae "
            "builds, with a sampling prior."
        )
    try:
        # From bytes in memory, never memory-mapped: the loaded model owns its
        # weights, whatever happens to the file later.
        weights = tensors_from_bytes(data)
        if header is None:  # safetensors read a header that Python's json cannot
            raise ValueError("its header is not valid JSON")
    except Exception as error:  # safetensors reports every malformation its own way
        raise ModelFileError(
            f"{path!r} is not an skvae model file: {_describe(data)} "
            f"({_first_line(error)}). Only files written by skvae.save load."
        ) from None
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path!r} is not an skvae model file: its metadata is malformed.")
    return metadata, weights


def _count_tensor_entries(data):
    """How many tensors a safetensors header declares, from its bytes alone.

    Each tensor's entry has one ``"data_offsets"`` key, and those bytes cannot
    occur inside a JSON string (its quotes would be escaped), so the count is
    that of the tensors, plus any other key so named in a crafted header.
    """
    header_size = _declared_header_size(data)
    if header_size is None:
        return 0
    return data.count(b'"data_offsets"', 8, 8 + header_size)


def _safetensors_header(data):
    """The JSON header of safetensors bytes as a dict, or None where there is none.

    A safetensors file is an 8-byte little-endian header length, that many bytes
    of JSON (an object, so starting with ``{``), then the tensors' bytes. Costs
    time and memory bounded by the header's size, which is at most the file's.
    """
    header_size = _declared_header_size(data)
    if header_size is None or 8 + header_size > len(data):
        return None
    try:
        header = json.loads(data[8 : 8 + header_size])
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return header if isinstance(header, dict) else None


# safetensors refuses headers longer than this (its MAX_HEADER_SIZE): a larger
# declared length means the file is not one at all, rather than a truncated one.
_MAX_HEADER_BYTES = 100_000_000


def _declared_header_size(data):
    """The header length a safetensors file declares, or None if ``data`` does not start like one."""
    if len(data) < 9 or data[8:9] != b"{":
        return None
    header_size = int.from_bytes(data[:8], "little")
    return header_size if 0 < header_size <= _MAX_HEADER_BYTES else None


def _describe(data):
    """What the bytes of a file that safetensors refused suggest it is."""
    if not data:
        return "it is empty"
    if _is_pickle(data):
        return "it is a pickle, which skvae never loads (unpickling runs code)"
    header_size = _declared_header_size(data)
    if header_size is not None:
        return _describe_safetensors(data, header_size)
    if data[:4] == b"PK\x03\x04":
        return (
            "it is a zip archive, such as a file of torch.save or of skvae 0.1 "
            "(model file format 1, which is no longer read: load it with skvae 0.1 "
            "and refit, or unpickle a trusted copy, then save it again)"
        )
    if data[:1024].lstrip()[:1] in (b"{", b"["):
        return "it is a JSON or text file"
    if len(data) < 9:
        return (
            f"it is {len(data)} bytes long, too short for any model file: it is "
            "truncated (an interrupted download or copy?)"
        )
    return "it is not a safetensors file, or it is truncated or corrupted"


def _describe_safetensors(data, header_size):
    """What is wrong with bytes that start like a safetensors file."""
    if 8 + header_size > len(data):
        return (
            f"it is a truncated safetensors file: its header alone needs "
            f"{8 + header_size:,} bytes and the file has {len(data):,} (an interrupted "
            "download or copy?)"
        )
    header = _safetensors_header(data)
    if header is None:
        return "it is a corrupted safetensors file: its header is not valid JSON"
    ends = [
        entry["data_offsets"][1]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict)
        and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
        and isinstance(entry["data_offsets"][1], int)
    ]
    needed = 8 + header_size + max(ends, default=0)
    if needed > len(data):
        return (
            f"it is a truncated safetensors file: its tensors need {needed:,} bytes "
            f"and the file has {len(data):,} (an interrupted download or copy?)"
        )
    return "it is a corrupted safetensors file"


# A stream that parses this far as pickle opcodes is a pickle. The bytes that
# start a safetensors file (a header length of at most 100 MB: a low byte, then
# bytes of 0 to 5, which are no opcodes) fail by their third opcode, or end
# there when the file is cut that short.
_PICKLE_OPCODES_CHECKED = 8
_TRUNCATED_PICKLE_OPCODES = 3
_PICKLE_PREFIX_BYTES = 1 << 16


def _is_pickle(data):
    """Whether ``data`` starts as a pickle of protocol 2 to 5 does, checked without running it.

    :func:`pickletools.genops` only parses the opcodes. A pickle counts when it
    parses up to its STOP or through its first few opcodes (joblib files hold
    raw array bytes after those), or when it parses cleanly until its bytes end
    (a truncated pickle is still a pickle).
    """
    if len(data) < 2 or data[0] != pickle.PROTO[0] or not 2 <= data[1] <= 5:
        return False
    prefix = data[:_PICKLE_PREFIX_BYTES]
    stream = io.BytesIO(prefix)
    parsed = 0
    try:
        for opcode, _, _ in pickletools.genops(stream):
            parsed += 1
            if opcode.name == "STOP" or parsed >= _PICKLE_OPCODES_CHECKED:
                return True
    except ValueError:  # an unknown opcode, or the end of the bytes
        ran_out = stream.tell() >= len(prefix)
        return ran_out and parsed >= _TRUNCATED_PICKLE_OPCODES
    return False


def json_document(text, what, format_name):
    """The JSON object ``text`` holds, its ``format`` entry checked.

    Raises
    ------
    ModelFileError
        Naming ``what`` the text is, if it is not JSON or not of ``format_name``.
    """
    try:
        content = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ModelFileError(f"its {what} is not valid JSON ({_first_line(error)}).") from None
    if not isinstance(content, dict) or content.get("format") != format_name:
        raise ModelFileError(f"its {what} has no 'format': {format_name!r} entry.")
    return content


def _build(metadata, weights):
    if _DOCUMENT_KEY not in metadata:
        raise ModelFileError(
            "it is a safetensors file without skvae's metadata (weights written by "
            "another library?)."
        )
    document = metadata[_DOCUMENT_KEY]
    content = json_document(document, "skvae metadata", FORMAT)
    version = content.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"it has format version {version!r}, but this skvae ({_skvae_version()}) "
            f"reads version {FORMAT_VERSION} only; it was written by skvae "
            f"{content.get('skvae_version')!r}. Load it with that version, or refit."
        )
    expected = {"format", "format_version", "skvae_version", "estimator", "params", "fitted"}
    if set(content) != expected:
        raise ModelFileError(f"its entries are {sorted(content)}, expected {sorted(expected)}.")
    if metadata.get(_CHECKSUM_KEY) != _checksum(document, weights):
        raise ModelFileError("its checksum does not match its contents: it is corrupted.")
    classes = _estimator_classes()
    estimator_class = classes.get(content["estimator"]) if isinstance(
        content["estimator"], str) else None
    if estimator_class is None:
        raise ModelFileError(
            f"it holds a {content['estimator']!r}, which is not one of skvae's "
            f"estimators ({', '.join(classes)})."
        )
    params, fitted = content["params"], content["fitted"]
    if not (isinstance(params, dict) and isinstance(fitted, dict)):
        raise ModelFileError("its parameters or fitted state are malformed.")
    estimator = estimator_class()
    if not has_parameters_of(estimator, params):
        raise ModelFileError(
            f"its parameters {sorted(params)} are not those of {estimator_class.__name__}."
        )
    try:
        estimator.set_params(**{k: _param_from_json(v, k)
                                for k, v in completed_parameters(estimator, params).items()})
        estimator._validate_params()
    except _CONTENT_ERRORS as error:
        raise ModelFileError(f"it holds invalid parameters: {_first_line(error)}") from None
    # The network is laid out on torch's meta device, where building layers draws
    # no random numbers: loading never touches torch's global generator (as a
    # fork_rng around it would, under other threads' draws).
    try:
        estimator._set_fitted_state(fitted, weights)
    except _CONTENT_ERRORS as error:
        raise ModelFileError(f"its fitted state is invalid: {_first_line(error)}") from None
    return estimator


def has_parameters_of(estimator, params):
    """Whether the names of a file's ``params`` are those of ``estimator`` (unfitted).

    A parameter the estimator class declares newer than the files
    (``_parameters_newer_than_files``) may be missing, as in the files written
    before it; :func:`completed_parameters` gives it the value that behaves as
    those files did.
    """
    expected, given = set(estimator.get_params(deep=False)), set(params)
    newer = set(getattr(estimator, "_parameters_newer_than_files", {}))
    return given <= expected and expected - given <= newer


def completed_parameters(estimator, params):
    """A file's ``params``, with each newer parameter it lacks at its value from before.

    A file written before ``learning_rate`` existed was trained at a constant
    rate: refitting the loaded model must train as it did, not under today's
    default schedule.
    """
    before = getattr(estimator, "_parameters_newer_than_files", {})
    return {**{name: value for name, value in before.items() if name not in params},
            **params}


# What checking untrusted content can raise: refusals (ValueError, TypeError) and
# what numpy, torch and Python raise on numbers or nesting beyond their limits.
_CONTENT_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError,
                   RuntimeError, OverflowError, RecursionError, MemoryError)


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _skvae_version():
    import skvae

    return skvae.__version__
