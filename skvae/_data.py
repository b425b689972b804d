"""The data layer: between the user's columns and the network's tensors.

:class:`DataSpace` is fitted once, in ``fit``. It knows the likelihood that
models the columns and how they are scaled, turns validated rows into the
float32 tensors the network reads, turns decoder output back into data in the
user's units, and gives the log-determinant that turns densities of the scaled
data into densities of the data as passed. Every conversion between numpy and
torch for data rows happens here, so layout and dtype never reach the network:
the same rows give the same tensor, bit for bit, whatever their memory order.

Knows numpy and torch, not scikit-learn's estimator machinery.
"""


import numpy as np
import torch

from ._likelihoods import LIKELIHOODS, check_support, choose_likelihood, outside_support
from ._warnings import warn


# Data with more values than this, or backed by a file (a numpy.memmap), are never
# copied whole: statistics are computed in row blocks and training reads its
# minibatches from the array (see is_streamed).
STREAM_VALUES = 2**26
_STATS_BLOCK_ROWS = 65536


def is_streamed(X):
    """Whether ``X`` is read in blocks and minibatches instead of copied whole.

    True for arrays backed by a file (a ``numpy.memmap``, or a view of one, as
    input validation returns) and for arrays of more than ``STREAM_VALUES``
    values.
    """
    if X.size > STREAM_VALUES:
        return True
    array = X
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = getattr(array, "base", None)
    return False


def _row_blocks(X, block_rows=_STATS_BLOCK_ROWS):
    for start in range(0, X.shape[0], block_rows):
        yield X[start : start + block_rows]


def _streamed_mean_std(X):
    """Per-column mean and standard deviation of ``X`` in float64, two passes of blocks."""
    total = np.zeros(X.shape[1])
    for block in _row_blocks(X):
        total += block.sum(axis=0, dtype=np.float64)
    mean = total / X.shape[0]
    squares = np.zeros(X.shape[1])
    for block in _row_blocks(X):
        squares += ((block.astype(np.float64) - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(squares / X.shape[0])


class DataSpace:
    """Fitted map from data rows to network tensors and back.

    Parameters
    ----------
    likelihood : str
        Name of the decoder likelihood, a key of ``LIKELIHOODS``.
    shift, scale : ndarray of shape (n_features,)
        Rows enter the network as ``(x - shift) / scale``.
    """

    def __init__(self, likelihood, shift, scale):
        self.likelihood = likelihood
        self.shift = shift
        self.scale = scale

    def __eq__(self, other):
        return (
            type(other) is type(self)
            and self.likelihood == other.likelihood
            and np.array_equal(self.shift, other.shift)
            and np.array_equal(self.scale, other.scale)
        )

    __hash__ = None  # mutable arrays inside

    @classmethod
    def fit(cls, X, likelihood="auto", *, estimator_name):
        """Choose the likelihood (for ``"auto"``) and fit the scaling to ``X``.

        Real-valued data (Gaussian likelihood) are standardised per feature;
        data in [0, 1] for the Bernoulli likelihood are left as they are.
        """
        streamed = is_streamed(X)
        if likelihood == "auto":
            if streamed:
                binary = all(choose_likelihood(b) == "bernoulli" for b in _row_blocks(X))
                likelihood = "bernoulli" if binary else "gaussian"
            else:
                likelihood = choose_likelihood(X)
        else:
            check_support(X, likelihood, estimator_name=estimator_name)
        n_features = X.shape[1]
        if likelihood != "gaussian":
            return cls(likelihood, np.zeros(n_features), np.ones(n_features))
        # Overflow is reported below, with advice, rather than as numpy's warning.
        with np.errstate(over="ignore", invalid="ignore"):
            if streamed:  # no temporary the size of X
                shift, scale = _streamed_mean_std(X)
            else:
                shift = X.mean(axis=0, dtype=np.float64)
                scale = X.std(axis=0, dtype=np.float64)
        if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(scale))):
            raise ValueError(
                "The mean or standard deviation of X overflows float64 (values "
                f"up to {np.max(np.abs(X)):.3g}). Rescale X, for example with "
                "StandardScaler, before fitting."
            )
        # Constant features keep unit scale, as in StandardScaler.
        scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(1, np.abs(shift))] = 1.0
        return cls(likelihood, shift, scale)

    @property
    def n_features(self):
        return self.shift.shape[0]

    @property
    def log_abs_det(self):
        """log|det| of the scaling map, in nats per row.

        A log-density of the scaled data minus this is the log-density of the data
        as the user passed it.
        """
        return float(np.log(self.scale).sum())

    @property
    def is_identity(self):
        return not self.shift.any() and bool(np.all(self.scale == 1.0))

    def check_support(self, X, *, estimator_name, what="X", clip=False):
        """Refuse, or with ``clip`` warn about, values the likelihood cannot model.

        With ``clip=True`` values outside the Bernoulli likelihood's [0, 1] are
        scored as the nearest bound (:meth:`to_tensor` clips them) after a
        ``UserWarning``: held-out rows after ``MinMaxScaler`` stray a little
        outside the range of the training rows, and a density estimate should
        score them rather than fail in the middle of a cross-validation.
        """
        bounds = outside_support(X, self.likelihood)
        if bounds is None:
            return
        if not clip:
            check_support(X, self.likelihood, estimator_name=estimator_name, what=what)
        warn(
            f"{what} contains values outside [0, 1] (min={bounds[0]:.6g}, "
            f"max={bounds[1]:.6g}), which the 'bernoulli' likelihood of this "
            f"{estimator_name} does not model; they are encoded and scored as the "
            "nearest of 0 and 1. Fit with likelihood='gaussian' to score them as they are, or "
            "scale with MinMaxScaler(clip=True).",
            UserWarning,
        )

    def to_tensor(self, X, device):
        """Validated rows ``X`` as a C-contiguous float32 tensor on ``device``.

        C order matters: torch picks its matrix kernels by stride, so a
        column-major array (a pandas frame) would round differently from the same
        rows in row-major order.
        """
        # Rows beyond float64 after scaling become inf here; inference reports them
        # as too far outside the training data, not as numpy warnings.
        with np.errstate(over="ignore"):
            if self.likelihood == "bernoulli":
                # Unscaled; values a rounding error (or, after a warning, more)
                # outside [0, 1] are scored as the bound. In-range values are copied
                # exactly, with no float64 round trip.
                scaled = np.clip(np.ascontiguousarray(X, dtype=np.float32), 0.0, 1.0)
            else:
                scaled = np.ascontiguousarray(
                    (np.asarray(X, dtype=np.float64) - self.shift) / self.scale
                )
        return torch.as_tensor(scaled, dtype=torch.float32, device=device)

    def to_data(self, values):
        """Decoder-space values (a numpy array) as float64 data in the user's units."""
        return np.asarray(values).astype(np.float64) * self.scale + self.shift

    # ------------------------------------------------------------ persistence

    def get_state(self):
        """The fitted state as JSON-ready data."""
        return {
            "likelihood": self.likelihood,
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_state(cls, state, n_features):
        """Rebuild from :meth:`get_state`'s output, checking every entry.

        Raises
        ------
        ValueError
            Naming the entry that is missing or inconsistent.
        """
        if not isinstance(state, dict) or set(state) != {"likelihood", "shift", "scale"}:
            raise ValueError("the data scaling entry is malformed.")
        if state["likelihood"] not in LIKELIHOODS:
            raise ValueError(f"the likelihood {state['likelihood']!r} is not known.")
        arrays = {}
        for key in ("shift", "scale"):
            values = state[key]
            if not (
                isinstance(values, list)
                and len(values) == n_features
                and all(type(v) in (int, float) for v in values)
            ):
                raise ValueError(f"the scaling's {key} is not {n_features} numbers.")
            try:
                arrays[key] = np.array(values, dtype=np.float64)
            except OverflowError:
                raise ValueError(f"the scaling's {key} holds numbers beyond float64.") from None
            if not np.all(np.isfinite(arrays[key])):
                raise ValueError(f"the scaling's {key} holds NaN or infinite values.")
        if not np.all(arrays["scale"] > 0):
            raise ValueError("the scaling's scale holds values that are not positive.")
        space = cls(state["likelihood"], arrays["shift"], arrays["scale"])
        if space.likelihood != "gaussian" and not space.is_identity:
            raise ValueError(
                f"the {space.likelihood} likelihood models unscaled data, but the "
                "file holds a scaling for it."
            )
        return space
