"""Shared estimator machinery for every skvae estimator.

:class:`BaseVAE` owns the parameters, input validation, seeding, the conversion
of numpy arrays to tensors (in one place, :meth:`BaseVAE._to_tensor`), fitting,
generation and density scoring. The public estimators add only their own API
(``transform`` for :class:`~skvae.VAETransformer`, ...).
"""

import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._likelihoods import LIKELIHOODS, check_support, choose_likelihood
from ._networks import (
    ACTIVATIONS,
    build_conv_vae,
    build_dense_vae,
    map_in_fixed_chunks,
)
from ._training import TrainingConfig, TrainingHistory, train

# Rows per inference chunk. Every chunk is padded to this size so that a row's
# result never depends on what else is in the batch (see map_in_fixed_chunks).
_CHUNK_ROWS = 256
# Decoder rows per importance-sampling chunk: rows x samples stays below this.
_CHUNK_DECODER_ROWS = 16384
# Rows converted to tensors at a time by inference: bounds its memory beyond the
# output (a multiple of the chunk sizes above, so results do not depend on it).
_BLOCK_ROWS = 8192


def _fresh_seed():
    """A seed from OS entropy: unlike np.random.randint it leaves global state alone."""
    return int(np.random.SeedSequence().generate_state(1)[0])


def _seed_from(random_state):
    """An int seed from ``None``, an int or a ``RandomState``, as scikit-learn reads them."""
    if random_state is None:
        return _fresh_seed()
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _resolve_device(device):
    """The torch device for ``device`` ("auto" -> CUDA when available, else CPU)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={device!r} is not a torch device. Use 'auto', 'cpu', 'cuda' "
            "or 'cuda:N'."
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but torch finds no CUDA device "
            f"(torch {torch.__version__}). Use device='auto' or device='cpu'."
        )
    return resolved


class BaseVAE(BaseEstimator):
    """Base class of skvae estimators; not for direct use.

    Subclasses document the parameters; they are shared by all estimators.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like"],
        "architecture": [StrOptions({"dense", "conv"})],
        "image_shape": [tuple, None],
        "conv_channels": ["array-like"],
        "conv_dense_width": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "likelihood": [StrOptions({"auto", *LIKELIHOODS})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_components=2,
        hidden_layer_sizes=(512, 256),
        architecture="dense",
        image_shape=None,
        conv_channels=(32, 64),
        conv_dense_width=16,
        activation="relu",
        likelihood="auto",
        beta=1.0,
        batch_size=128,
        learning_rate_init=1e-3,
        max_iter=200,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        n_importance_samples=50,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.architecture = architecture
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.conv_dense_width = conv_dense_width
        self.activation = activation
        self.likelihood = likelihood
        self.beta = beta
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_importance_samples = n_importance_samples
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE by maximising the evidence lower bound on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. Sparse matrices are refused: densify them first.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X)
        return self

    def _fit(self, X):
        continuing = self.warm_start and hasattr(self, "module_")
        X = self._validate_X(X, reset=not continuing)
        # One draw from random_state, split into independent streams for the weights,
        # the scoring noise, the minibatch order and the validation split.
        init_seed, noise_seed, training_seed, split_seed = (
            int(s)
            for s in np.random.SeedSequence(_seed_from(self.random_state)).generate_state(4)
        )
        if continuing:
            check_support(X, self.likelihood_, estimator_name=type(self).__name__)
        else:
            self._initialise(X, init_seed)
            self._noise_seed = noise_seed

        X_train, X_val = self._split_for_early_stopping(X, split_seed)
        config = TrainingConfig(
            batch_size=min(self.batch_size, X_train.shape[0]),
            learning_rate=self.learning_rate_init,
            max_iter=self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            beta=self.beta,
            loss_offset=self._log_abs_det_scale,
            verbose=self.verbose,
            trim_fraction=self._trim_fraction(),
        )
        generator = torch.Generator(device=self.device_).manual_seed(training_seed)
        history = self._history if continuing else TrainingHistory()
        n_iter_before = history.n_iter
        history.stopped_early = False
        train(
            self.module_,
            self._to_tensor(X_train),
            None if X_val is None else self._to_tensor(X_val),
            config,
            generator,
            history=history,
        )
        self._history = history
        self._record_history(history)
        self._warn_about_training(history, history.n_iter - n_iter_before)
        self._after_training(X)
        return self

    def _after_training(self, X):
        """Hook for fitted state that needs the trained model and validated ``X``."""

    def _trim_fraction(self):
        """Fraction of each minibatch left out of training; subclasses may override."""
        return 0.0

    def _initialise(self, X, seed):
        """Choose the likelihood, fit the scaling, seed and build the network."""
        sizes = tuple(np.atleast_1d(np.asarray(self.hidden_layer_sizes)).tolist())
        if not all(isinstance(s, Integral) and s > 0 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} must be a sequence of "
                "positive integers, for example (512, 256)."
            )
        self.device_ = _resolve_device(self.device)
        if self.likelihood == "auto":
            self.likelihood_ = choose_likelihood(X)
        else:
            self.likelihood_ = self.likelihood
            check_support(X, self.likelihood_, estimator_name=type(self).__name__)
        self._fit_scaling(X)
        # Build on the CPU from a private copy of torch's global generator, so the
        # weights depend only on random_state, not on the device or on other code.
        self.image_shape_ = self._check_image_shape(X.shape[1])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._build_module(X.shape[1], sizes)
        self.module_ = module.to(self.device_)

    def _build_module(self, n_features, hidden_layer_sizes):
        """The untrained network; ``skvae.load`` rebuilds saved models through it too."""
        if self.architecture == "conv":
            return build_conv_vae(
                self.image_shape_,
                self.n_components,
                self._check_conv_channels(),
                self.conv_dense_width,
                self.activation,
                LIKELIHOODS[self.likelihood_],
            )
        return build_dense_vae(
            n_features,
            self.n_components,
            hidden_layer_sizes,
            self.activation,
            LIKELIHOODS[self.likelihood_],
        )

    def _check_image_shape(self, n_features):
        """``image_shape`` as ``(channels, height, width)``, checked against ``X``.

        ``(height, width)`` means one channel. ``None`` reads each row as a
        1 x 1 x n_features image, so the conv network accepts any number of
        features (a 1-D convolution along the row).
        """
        if self.image_shape is None:
            return (1, 1, n_features)
        shape = tuple(self.image_shape)
        if len(shape) == 2:
            shape = (1,) + shape
        if len(shape) != 3 or not all(
            isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in shape
        ):
            raise ValueError(
                f"image_shape={self.image_shape!r} must be (channels, height, width) "
                "or (height, width) in positive integers, for example (1, 28, 28)."
            )
        if math.prod(shape) != n_features:
            raise ValueError(
                f"image_shape={self.image_shape!r} holds {math.prod(shape)} values per "
                f"image, but X has {n_features} features. Each row of X must be one "
                "flattened image of channels * height * width values (channels first)."
            )
        return tuple(int(s) for s in shape)

    def _check_conv_channels(self):
        channels = tuple(np.atleast_1d(np.asarray(self.conv_channels)).tolist())
        if not channels or not all(isinstance(c, Integral) and c > 0 for c in channels):
            raise ValueError(
                f"conv_channels={self.conv_channels!r} must be a non-empty sequence of "
                "positive integers, for example (32, 64)."
            )
        return channels

    def _fit_scaling(self, X):
        """Standardise real-valued data; leave [0, 1] data for Bernoulli untouched."""
        n_features = X.shape[1]
        if self.likelihood_ == "gaussian":
            # Overflow is reported below, with advice, rather than as numpy's warning.
            with np.errstate(over="ignore", invalid="ignore"):
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
        else:
            shift, scale = np.zeros(n_features), np.ones(n_features)
        self._shift, self._scale = shift, scale
        # log|det| of the standardising map: densities of the standardised data
        # minus this are densities of the data as the user passed it.
        self._log_abs_det_scale = float(np.log(scale).sum())

    def _split_for_early_stopping(self, X, seed):
        if not self.early_stopping:
            return X, None
        n_samples = X.shape[0]
        n_val = max(1, int(round(self.validation_fraction * n_samples)))
        if n_samples - n_val < 1:
            raise ValueError(
                f"early_stopping=True holds out validation_fraction="
                f"{self.validation_fraction} of the data, which leaves no training rows "
                f"out of n_samples={n_samples}. Pass more rows or set "
                "early_stopping=False."
            )
        order = np.random.RandomState(seed % (2**32)).permutation(n_samples)
        return X[order[n_val:]], X[order[:n_val]]

    def _record_history(self, history):
        self.n_iter_ = history.n_iter
        self.loss_curve_ = list(history.loss_curve)
        self.best_loss_ = history.best_loss
        if self.early_stopping:
            self.validation_scores_ = list(history.validation_scores)
            self.best_validation_score_ = history.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _warn_about_training(self, history, n_epochs_run):
        if history.diverged:
            warnings.warn(
                f"Training stopped after {history.n_iter} epochs because the loss "
                "or the weights became NaN or infinite; the last weights that gave a "
                "finite loss were kept, so the model is usable but may be undertrained. "
                "Lower learning_rate_init or rescale X (for example with "
                "StandardScaler).",
                RuntimeWarning,
                stacklevel=3,
            )
        elif not (history.stopped_early or history.interrupted) and (
            n_epochs_run == self.max_iter
        ):
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} epochs "
                "before the loss stopped improving by tol; increase max_iter for a "
                "better fit.",
                ConvergenceWarning,
                stacklevel=3,
            )

    # ----------------------------------------------------- data <-> tensor, once

    def _validate_X(self, X, *, reset=False):
        return validate_data(
            self, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=True
        )

    def _inference_device(self):
        """``device_``, or the CPU when unpickled on a machine without that device."""
        if self.device_.type == "cuda" and not torch.cuda.is_available():
            return torch.device("cpu")
        return self.device_

    def _to_tensor(self, X, *, device=None):
        """Standardise ``X`` and return it as a float32 tensor on the model's device."""
        # Rows beyond float64 after scaling become inf here and are reported by
        # _map_rows as too far outside the training data, not as numpy warnings.
        with np.errstate(over="ignore"):
            if not self._shift.any() and np.all(self._scale == 1.0):
                # Unscaled (Bernoulli) data: one float32 copy instead of a float64
                # round trip; (x - 0) / 1 is x exactly, so the result is the same.
                scaled = np.array(X, dtype=np.float32)
            else:
                scaled = (np.asarray(X, dtype=np.float64) - self._shift) / self._scale
        return torch.as_tensor(
            scaled, dtype=torch.float32, device=device or self.device_
        )

    def _from_model_space(self, values):
        """Undo the standardisation of decoder outputs (a float64 numpy array)."""
        return values.detach().cpu().numpy().astype(np.float64) * self._scale + self._shift

    # ------------------------------------------------------- encode and decode

    def _map_rows(self, function, X, chunk_rows, *, input_name="X", dtype=np.float64):
        """``function`` of the standardised rows of validated ``X``, as a numpy array.

        Rows become tensors and results are copied into the preallocated output one
        block at a time, so the memory used beyond the output stays the same however
        many rows ``X`` has. Blocks are whole multiples of ``chunk_rows``, which
        keeps every row in the same fixed-size chunk as a single call over all of
        ``X`` would: the results are bit-identical. A non-finite result for finite
        input (a row far outside the float32 range of the network) is a ValueError.
        """
        device = self._inference_device()
        block_rows = chunk_rows * max(1, _BLOCK_ROWS // chunk_rows)
        output = None
        for start in range(0, X.shape[0], block_rows):
            block = X[start : start + block_rows]
            values = map_in_fixed_chunks(
                function, self._to_tensor(block, device=device), chunk_rows
            )
            if not torch.isfinite(values).all():
                self._raise_non_finite(values, block, start, input_name)
            if output is None:
                output = np.empty((X.shape[0],) + tuple(values.shape[1:]), dtype=dtype)
            output[start : start + block.shape[0]] = values.cpu().numpy()
        return output

    def _raise_non_finite(self, values, block, start, input_name):
        bad = ~torch.isfinite(values.reshape(values.shape[0], -1)).all(dim=1)
        row = start + int(torch.nonzero(bad)[0, 0])
        largest = float(np.max(np.abs(block[row - start])))
        raise ValueError(
            f"{type(self).__name__} computed NaN or infinite values for row {row} of "
            f"{input_name} (largest absolute value {largest:.3g}): the row lies too far "
            "outside the training data for the network's float32 arithmetic. Clip or "
            "rescale it to the range the model was fitted on."
        )

    def _encode_mean(self, X):
        """Posterior means of validated ``X``, as a float64 array."""
        return self._map_rows(lambda x: self.module_.encoder(x)[0], X, _CHUNK_ROWS)

    def _decode_mean(self, Z):
        """E[x | z] for validated latent codes ``Z``, in data units and ``Z``'s dtype."""
        output = np.empty((Z.shape[0], self.n_features_in_), dtype=Z.dtype)
        for start in range(0, Z.shape[0], _BLOCK_ROWS):
            block = Z[start : start + _BLOCK_ROWS]
            values = self.module_.likelihood.mean(self._decode(block))
            if not torch.isfinite(values).all():
                self._raise_non_finite(values, block, start, "Z")
            output[start : start + block.shape[0]] = self._from_model_space(values)
        return output

    def _decode(self, Z):
        """Decoder output (the likelihood's raw parameters) for latent codes ``Z``."""
        device = self._inference_device()
        if isinstance(Z, np.ndarray):
            # A copy: torch warns about (and may not respect) read-only arrays.
            # Codes beyond float32 become inf; _decode_mean reports the row.
            with np.errstate(over="ignore"):
                Z = np.array(Z, dtype=np.float32)
        z = torch.as_tensor(Z, dtype=torch.float32, device=device)
        return map_in_fixed_chunks(self.module_.decoder, z, _CHUNK_ROWS)

    def _validate_latent(self, Z):
        Z = check_array(Z, dtype=[np.float64, np.float32], input_name="Z")
        if Z.shape[1] != self._latent_dim:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but {type(self).__name__} has "
                f"{self._latent_dim} latent dimensions. Pass codes "
                "produced by transform, one column per latent dimension."
            )
        return Z

    @property
    def _latent_dim(self):
        return self.module_.n_components

    # -------------------------------------------------------------- generation

    def sample(self, n_samples=1, *, random_state=None, return_mean=False):
        """Generate new data from the fitted model.

        Draws latent codes ``z ~ N(0, I)`` and decodes them. By default it returns
        draws from the full model, ``x ~ p(x | z)``, as
        :meth:`sklearn.mixture.GaussianMixture.sample` does; with
        ``return_mean=True`` it returns the decoder means ``E[x | z]`` instead,
        the smooth images usually shown for VAEs.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to generate.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws. ``None`` draws fresh entropy from the operating
            system, without touching numpy's global random state.
        return_mean : bool, default=False
            Return ``E[x | z]`` rather than a draw from ``p(x | z)``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            Generated data, in the units of the training data.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(
                f"n_samples={n_samples!r} must be a positive integer, the number of "
                "rows to generate."
            )
        generator = torch.Generator().manual_seed(_seed_from(random_state))
        z = torch.randn((n_samples, self._latent_dim), generator=generator)
        with torch.no_grad():
            params = self._decode(z).cpu()
            likelihood = copy.deepcopy(self.module_.likelihood).cpu()
            if return_mean:
                values = likelihood.mean(params)
            else:
                values = likelihood.sample(params, generator=generator)
        return self._from_model_space(values)

    # ------------------------------------------------------------- scoring

    def score_samples(self, X):
        """Estimate the log-likelihood ``log p(x)`` of each row, in nats.

        Uses the importance-weighted bound of Burda et al. (2016) with
        ``n_importance_samples`` posterior draws; with one draw it is the ELBO.
        The estimate is for the data as passed, so internal standardisation is
        accounted for and values compare with
        :meth:`sklearn.mixture.GaussianMixture.score_samples` on the same data. The
        draws are fixed when the model is fitted, so scores are deterministic and a
        row's score does not depend on the other rows in the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score. With the Bernoulli likelihood, values must lie in
            [0, 1].

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Estimated log p(x) per row (higher is more likely).
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        check_support(X, self.likelihood_, estimator_name=type(self).__name__)
        return self._log_likelihood(X)

    def _log_likelihood(self, X):
        device = self._inference_device()
        noise = torch.randn(
            (self.n_importance_samples, self._latent_dim),
            generator=torch.Generator().manual_seed(self._noise_seed),
        ).to(device)
        chunk_rows = max(1, _CHUNK_DECODER_ROWS // self.n_importance_samples)
        # A multiple of 16 rows: in a chunk of, say, 327 rows the last few go through
        # the matmul's remainder kernel and round differently from the same row
        # placed earlier, which breaks bit-identical scores across batches.
        chunk_rows = max(1, chunk_rows - chunk_rows % 16)
        log_px = self._map_rows(
            lambda x: self.module_.log_likelihood(x, noise), X, chunk_rows
        )
        log_px -= self._log_abs_det_scale
        return log_px

    def score(self, X, y=None):
        """Mean estimated log-likelihood of ``X`` per row, in nats.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        log_likelihood : float
            ``score_samples(X).mean()``; higher is better, so model selection tools
            such as :class:`~sklearn.model_selection.GridSearchCV` can use it.
        """
        return float(self.score_samples(X).mean())

    # ------------------------------------------------------------- pickling

    def __getstate__(self):
        state = super().__getstate__()
        module = state.get("module_")
        # Tensors pickle with their device; a CPU copy unpickles anywhere.
        if module is not None and any(p.device.type != "cpu" for p in module.parameters()):
            state["module_"] = copy.deepcopy(module).cpu()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "module_" in state:
            self.module_.to(self._inference_device())
