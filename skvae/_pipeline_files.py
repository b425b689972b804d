"""Saving and loading fitted scikit-learn containers of skvae estimators in one file.

A fitted :class:`~sklearn.pipeline.Pipeline`, :class:`~sklearn.compose.ColumnTransformer`
or :class:`~sklearn.pipeline.FeatureUnion` (nested in one another too) is written as
one safetensors file holding two kinds of content:

- every skvae estimator in it, in skvae's own checked format: its JSON document
  (the one a single-model file holds) and its weights as tensors named
  ``step<k>/<weight name>``; :func:`skvae._persistence._build` reads it back with
  every check a single-model file gets;
- everything else (the containers and scikit-learn's own steps), as the bytes of a
  `skops <https://skops.readthedocs.io>`_ dump in the ``uint8`` tensor
  ``pipeline.skops``, in which each skvae estimator is replaced by a marker
  string. skops loads only the types it trusts by default (scikit-learn's
  estimators, numpy and scipy containers, Python's builtins) and this module
  trusts nothing more: ``skops.io.loads`` gets an explicit, empty list of extra
  types, and a file naming any other type is refused before skops builds it.
  Nothing is unpickled.

The file's metadata holds one JSON document describing the container (its class,
the skvae estimators and their documents) and a SHA-256 checksum of that document
and of every tensor. skops is an optional dependency (``pip install
"skvae[pipeline]"``), imported only here.
"""

import io
import json
import zipfile

import torch
from safetensors.torch import save as safetensors_bytes
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.validation import check_is_fitted

from . import _persistence
from ._base import BaseVAE
from ._persistence import ModelFileError

FORMAT = "skvae-pipeline"
FORMAT_VERSION = 1
# Keys of the safetensors metadata: distinct from a single model's, so the two kinds
# of file can never be mistaken for each other.
DOCUMENT_KEY = "skvae.pipeline"
CHECKSUM_KEY = "skvae.pipeline.sha256"
SKOPS_TENSOR = "pipeline.skops"
CONTAINERS = (Pipeline, ColumnTransformer, FeatureUnion)
# Stands for the k-th skvae estimator inside the skops dump. The NUL characters keep
# it apart from any step name or column name a user could write.
_MARKER = "\0skvae.estimator\0"
# skops types trusted beyond skops's own defaults: none.
_EXTRA_TRUSTED_TYPES = []


def is_container(obj):
    """Whether ``obj`` is a container this module saves (a subclass counts; skops vets it)."""
    return isinstance(obj, CONTAINERS)


def _skops_io(action):
    """``skops.io``, or an ImportError saying how to install it."""
    try:
        import skops.io
    except ImportError:
        raise ImportError(
            f"{action} a scikit-learn Pipeline, ColumnTransformer or FeatureUnion needs "
            "skops, which is not installed: pip install \"skvae[pipeline]\" (or pip "
            "install skops)."
        ) from None
    return skops.io


# ------------------------------------------------------------------ walking

# Containers keep their steps in lists of tuples (``steps``, ``transformers``,
# ``transformers_``, ``transformer_list``) and in plain attributes (``remainder``).
# Rather than naming those attributes, which differ between scikit-learn versions,
# the walk goes through every attribute and the lists, tuples and dicts in them.


def _replace_in(value, replace):
    """``value`` with ``replace`` applied to each item, through lists, tuples and dicts.

    ``replace(item)`` returns the item's replacement, or ``item`` itself to go on
    walking into it. Containers met on the way are copied with their own items
    replaced, so the object passed in is never modified.
    """
    replaced = replace(value)
    if replaced is not value:
        return replaced
    if isinstance(value, CONTAINERS):
        copy = value.__new__(type(value))
        copy.__dict__.update(
            {key: _replace_in(item, replace) for key, item in vars(value).items()}
        )
        return copy
    if isinstance(value, list):
        return [_replace_in(item, replace) for item in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_replace_in(item, replace) for item in value)
    if isinstance(value, dict) and type(value) is dict:
        return {key: _replace_in(item, replace) for key, item in value.items()}
    return value


# --------------------------------------------------------------------- save


def contents(container):
    """The bytes of the file :func:`skvae.save` writes for ``container``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``container`` is not fitted.
    TypeError
        If it holds an object that neither skvae's format nor skops's trusted types
        can hold, named in the message.
    ImportError
        If skops is not installed.
    """
    skops_io = _skops_io("Saving")
    check_is_fitted(container)
    estimators, skeleton = _skeleton(container)
    try:
        skops_bytes = skops_io.dumps(skeleton)
    except Exception as error:  # skops meets an object it cannot take apart
        raise TypeError(_unserialisable_message(container, skeleton, skops_io, error)) from None
    untrusted = skops_io.get_untrusted_types(data=skops_bytes)
    if untrusted:
        raise TypeError(_untrusted_message(container, untrusted))
    weights = {SKOPS_TENSOR: torch.frombuffer(bytearray(skops_bytes), dtype=torch.uint8)}
    entries = []
    for k, estimator in enumerate(estimators):
        entry, step_weights = _estimator_entry(estimator)
        entries.append(entry)
        weights.update({f"step{k}/{name}": tensor for name, tensor in step_weights.items()})
    document = json.dumps(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "skvae_version": _persistence._skvae_version(),
            "container": type(container).__name__,
            "estimators": entries,
        },
        sort_keys=True,
    )
    metadata = {DOCUMENT_KEY: document, CHECKSUM_KEY: _persistence._checksum(document, weights)}
    return safetensors_bytes(weights, metadata=metadata)


def _skeleton(container):
    """The skvae estimators in ``container``, and a copy of it with markers in their place."""
    estimators, marker_of = [], {}

    def replace(item):
        if isinstance(item, BaseVAE):
            if id(item) not in marker_of:  # one estimator referenced twice: one entry
                marker_of[id(item)] = f"{_MARKER}{len(estimators)}"
                estimators.append(item)
            return marker_of[id(item)]
        if isinstance(item, str) and item.startswith(_MARKER):
            raise TypeError(f"skvae.save cannot store the string {item!r}: it is reserved.")
        return item

    return estimators, _replace_in(container, replace)


def _estimator_entry(estimator):
    """The file entry of one skvae estimator: its checked document, or its parameters.

    A ColumnTransformer keeps the unfitted estimators it was given (``transformers``)
    beside fitted clones (``transformers_``); the unfitted ones are stored as their
    parameters.
    """
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        estimator._validate_params()
        params = {
            key: _persistence._param_to_json(value, key)
            for key, value in estimator.get_params(deep=False).items()
        }
        entry, weights = {"estimator": type(estimator).__name__, "params": params}, {}
    else:
        metadata, weights = _persistence._estimator_contents(estimator)
        entry = {
            "estimator": type(estimator).__name__,
            "document": metadata[_persistence._DOCUMENT_KEY],
            "sha256": metadata[_persistence._CHECKSUM_KEY],
        }
    entry["set_output"] = _output_config(estimator)
    return entry, weights


# What ``set_output`` can configure; ``Pipeline.set_output`` sets it on every step.
_OUTPUT_METHODS = ("transform",)
# The containers scikit-learn's set_output knows (it checks a name only when used).
_OUTPUT_CHOICES = ("default", "pandas", "polars")


def _output_config(estimator):
    """The estimator's ``set_output`` choices (``{"transform": "pandas"}``), as plain data.

    A pipeline with ``set_output(transform="pandas")`` passes the setting to its
    steps; it is no parameter and no fitted state, so a single model's file does
    not keep it, but a pipeline whose VAE step returned arrays after loading
    would give its next step another input.
    """
    config = getattr(estimator, "_sklearn_output_config", {})
    return {method: config[method] for method in _OUTPUT_METHODS
            if isinstance(config.get(method), str)}


_ONLY_AS_STEPS = (
    " skvae estimators are stored in skvae's format only as steps of a Pipeline, "
    "ColumnTransformer or FeatureUnion, not inside other objects (such as a "
    "GridSearchCV step): save the fitted estimator itself."
)


def _unserialisable_message(container, skeleton, skops_io, error):
    """Which step of ``container`` skops cannot serialise, and what to do."""
    steps = []

    def record(item):
        if hasattr(item, "get_params") and not isinstance(item, CONTAINERS):
            steps.append(item)
        return item

    _replace_in(skeleton, record)
    culprit = "one of its steps"
    for step in steps:
        try:
            skops_io.dumps(step)
        except Exception:
            culprit = f"its step {type(step).__module__}.{type(step).__qualname__}"
            break
    return (
        f"skvae.save cannot store this {type(container).__name__}: skops cannot "
        f"serialise {culprit} ({_persistence._first_line(error)}).{_ONLY_AS_STEPS}"
    )


def _untrusted_message(container, untrusted):
    skvae_types = [name for name in untrusted if name.startswith("skvae.")]
    where = _ONLY_AS_STEPS if skvae_types else ""
    return (
        f"skvae.save cannot store this {type(container).__name__}: it holds objects of "
        f"the types {untrusted}, which are neither skvae estimators nor types that "
        "skops trusts (scikit-learn's estimators, numpy and scipy containers, Python's "
        f"builtins), so skvae.load would refuse the file.{where} For objects of your "
        "own types, use skops.io.dump and load them with the trusted types you have "
        "reviewed."
    )


# --------------------------------------------------------------------- load


def build(metadata, weights):
    """The container a file written by :func:`contents` holds, every part checked.

    Raises
    ------
    ModelFileError
        Without the file's name (the caller adds it), for anything unexpected.
    ImportError
        If skops is not installed.
    """
    content = _checked_document(metadata, weights)
    skops_io = _skops_io("Loading")
    skops_bytes = weights[SKOPS_TENSOR]
    if skops_bytes.dtype != torch.uint8 or skops_bytes.ndim != 1:
        raise ModelFileError(f"its tensor {SKOPS_TENSOR!r} is not a byte string.")
    data = skops_bytes.numpy().tobytes()
    _check_stored_zip(data)
    try:
        untrusted = skops_io.get_untrusted_types(data=data)
    except Exception as error:  # skops reports malformed dumps its own way
        raise ModelFileError(
            f"its scikit-learn part is not a valid skops dump ({_persistence._first_line(error)})."
        ) from None
    if untrusted:
        raise ModelFileError(
            f"its scikit-learn part holds objects of the types {untrusted}, which skvae "
            "does not trust: only scikit-learn's estimators, numpy and scipy containers "
            "and Python's builtins load."
        )
    try:
        skeleton = skops_io.loads(data, trusted=_EXTRA_TRUSTED_TYPES)
    except Exception as error:
        raise ModelFileError(
            f"its scikit-learn part cannot be loaded ({_persistence._first_line(error)})."
        ) from None
    if type(skeleton).__name__ != content["container"] or type(skeleton) not in CONTAINERS:
        raise ModelFileError(
            f"it claims to hold a {content['container']!r} but its scikit-learn part is a "
            f"{type(skeleton).__name__}."
        )
    _check_markers(skeleton, len(content["estimators"]))
    _check_tensor_names(weights, content["estimators"])
    estimators = [
        _estimator_from_entry(k, entry, weights) for k, entry in enumerate(content["estimators"])
    ]
    return _put_back(skeleton, estimators)


def _checked_document(metadata, weights):
    """The container's JSON document, once its format, entries and checksum are right."""
    document = metadata[DOCUMENT_KEY]
    content = _persistence.json_document(document, "pipeline metadata", FORMAT)
    version = content.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"it has pipeline format version {version!r}, but this skvae "
            f"({_persistence._skvae_version()}) reads version {FORMAT_VERSION} only; it was "
            f"written by skvae {content.get('skvae_version')!r}."
        )
    expected = {"format", "format_version", "skvae_version", "container", "estimators"}
    if set(content) != expected:
        raise ModelFileError(
            f"its pipeline entries are {sorted(content)}, expected {sorted(expected)}."
        )
    if metadata.get(CHECKSUM_KEY) != _persistence._checksum(document, weights):
        raise ModelFileError("its checksum does not match its contents: it is corrupted.")
    if not (isinstance(content["container"], str) and isinstance(content["estimators"], list)
            and SKOPS_TENSOR in weights):
        raise ModelFileError("its pipeline structure is malformed.")
    return content


def _check_stored_zip(data):
    """Refuse a skops dump whose members are compressed or say other sizes than they have.

    skops writes its dumps uncompressed (``ZIP_STORED``); keeping to that bounds the
    memory reading them costs by the file's size, as for the rest of the file (a
    compressed member could expand without limit).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ModelFileError(
            f"its scikit-learn part is not a valid skops dump ({_persistence._first_line(error)})."
        ) from None
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED or member.file_size != member.compress_size:
            raise ModelFileError(
                f"its scikit-learn part has a compressed member {member.filename!r}; skvae "
                "writes them uncompressed, so its size is bounded by the file's."
            )


def _check_tensor_names(weights, entries):
    """Refuse tensors that belong to no estimator of the file (nothing is ignored unread)."""
    fitted = {f"step{k}/" for k, entry in enumerate(entries)
              if isinstance(entry, dict) and "document" in entry}
    strays = sorted(
        name for name in weights
        if name != SKOPS_TENSOR and not (name.split("/", 1)[0] + "/" in fitted and "/" in name)
    )
    if strays:
        raise ModelFileError(
            f"it holds tensors {strays[:5]} that belong to none of its estimators."
        )


def _estimator_from_entry(k, entry, weights):
    """The k-th skvae estimator, read with the checks of a single-model file."""
    if not (isinstance(entry, dict) and isinstance(entry.get("estimator"), str)):
        raise ModelFileError(f"its skvae estimator {k} is malformed.")
    claimed = entry["estimator"]
    if set(entry) == {"estimator", "params", "set_output"}:
        estimator = _unfitted_estimator(k, claimed, entry["params"])
    elif set(entry) == {"estimator", "document", "sha256", "set_output"}:
        estimator = _fitted_estimator(k, claimed, entry, weights)
    else:
        raise ModelFileError(f"its skvae estimator {k} has the entries {sorted(entry)}.")
    return _with_output_config(k, estimator, entry["set_output"])


def _with_output_config(k, estimator, config):
    """``estimator`` with the ``set_output`` choices of the file, checked."""
    if not (isinstance(config, dict) and set(config) <= set(_OUTPUT_METHODS)
            and all(isinstance(value, str) for value in config.values())):
        raise ModelFileError(f"its skvae estimator {k} has a malformed 'set_output' entry.")
    unknown = sorted(set(config.values()) - set(_OUTPUT_CHOICES))
    if unknown:
        raise ModelFileError(
            f"its skvae estimator {k} has an invalid 'set_output' entry: {unknown} is not "
            f"one of {list(_OUTPUT_CHOICES)}."
        )
    if config:
        estimator.set_output(**config)
    return estimator


def _fitted_estimator(k, claimed, entry, weights):
    """The k-th skvae estimator, fitted, read with the checks of a single-model file."""
    prefix = f"step{k}/"
    step_weights = {
        name[len(prefix):]: tensor for name, tensor in weights.items() if name.startswith(prefix)
    }
    step_metadata = {
        _persistence._DOCUMENT_KEY: entry["document"],
        _persistence._CHECKSUM_KEY: entry["sha256"],
    }
    try:
        estimator = _persistence._build(step_metadata, step_weights)
    except ModelFileError as error:
        raise ModelFileError(f"its skvae estimator {k}: {error}") from None
    if type(estimator).__name__ != claimed:
        raise ModelFileError(
            f"its skvae estimator {k} claims to be a {claimed!r} but holds a "
            f"{type(estimator).__name__}."
        )
    return estimator


def _unfitted_estimator(k, claimed, params):
    """An unfitted skvae estimator from its parameters (checked as a model file's are)."""
    estimator_class = _persistence._estimator_classes().get(claimed)
    if estimator_class is None:
        raise ModelFileError(
            f"its skvae estimator {k} is a {claimed!r}, which is not one of skvae's "
            f"estimators ({', '.join(_persistence._estimator_classes())})."
        )
    estimator = estimator_class()
    if not isinstance(params, dict) or not _persistence.has_parameters_of(estimator, params):
        raise ModelFileError(f"its skvae estimator {k} has parameters that are not a {claimed}'s.")
    try:
        estimator.set_params(**{key: _persistence._param_from_json(value, key)
                                for key, value in _persistence.completed_parameters(
                                    estimator, params).items()})
        estimator._validate_params()
    except _persistence._CONTENT_ERRORS as error:
        raise ModelFileError(
            f"its skvae estimator {k} has invalid parameters: {_persistence._first_line(error)}"
        ) from None
    return estimator


def _check_markers(skeleton, n_estimators):
    """Refuse a skeleton whose markers do not name each of the file's estimators."""
    used = set()

    def record(item):
        if isinstance(item, str) and item.startswith(_MARKER):
            index = item[len(_MARKER):]
            if not (index.isdigit() and int(index) < n_estimators):
                raise ModelFileError(
                    f"its scikit-learn part refers to skvae estimator {index!r}, which the "
                    f"file does not hold ({n_estimators} estimators)."
                )
            used.add(int(index))
        return item

    _replace_in(skeleton, record)
    unused = sorted(set(range(n_estimators)) - used)
    if unused:
        raise ModelFileError(
            f"its skvae estimators {unused} have no place in its scikit-learn part."
        )


def _put_back(skeleton, estimators):
    """``skeleton`` with each marker replaced by its estimator (markers already checked)."""

    def replace(item):
        if isinstance(item, str) and item.startswith(_MARKER):
            return estimators[int(item[len(_MARKER):])]
        return item

    return _replace_in(skeleton, replace)
