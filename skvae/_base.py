"""Shared estimator machinery for every skvae estimator.

:class:`BaseVAE` holds the parameters and the estimator's side of fitting,
generation and scoring; the parts it coordinates live in their own modules: the
data layer (:mod:`skvae._data`), the network and its spec (:mod:`skvae._networks`),
the training loop (:mod:`skvae._training`), chunked inference
(:mod:`skvae._inference`) and devices. Fitting is a transaction: whatever stops
it, the estimator keeps its previous fitted state, whole, or gets a new one.
Fitted state is declared once, by :meth:`BaseVAE._get_fitted_state` and
:meth:`BaseVAE._set_fitted_state`, so persistence is a file format and nothing
more. The public estimators add their own API (``transform`` for
:class:`~skvae.VAETransformer`, ...).
"""

import copy
import math
from dataclasses import fields
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._data import DataSpace, all_missing_columns, has_missing, is_streamed
from ._devices import resolve_device, usable_device
from ._draws import row_keys, standard_normal_per_row
from ._inference import CHUNK_ROWS, importance_chunk_rows, map_in_fixed_chunks, map_rows
from ._networks import ACTIVATIONS, NetworkSpec
from ._random import independent_seeds, seed_from
from ._tables import TableSchema, is_dataframe
from ._threads import one_thread_for_small
from ._training import (
    TrainingConfig,
    TrainingHistory,
    shuffled_batches,
    streamed_batches,
    train,
)
from ._warnings import warn

# Posterior draws per row when a loaded model is checked (see _check_model_works).
_CHECK_DRAWS = 4
# Seeds are 32-bit words of a SeedSequence.
_SEED_LIMIT = 2**32


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
        "likelihood": [StrOptions({"auto", "bernoulli", "gaussian"})],
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "handle_unknown": [StrOptions({"error", "ignore"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        # Bounded: each row draws n_importance_samples * n_components normals.
        "n_importance_samples": [Interval(Integral, 1, 2**20, closed="both")],
        # Bounded: each training row is decoded n_training_samples times.
        "n_training_samples": [Interval(Integral, 1, 1000, closed="both")],
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
        conv_dense_width=512,
        activation="relu",
        likelihood="auto",
        categorical_features="from_dtype",
        handle_unknown="error",
        beta=1.0,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        n_importance_samples=50,
        n_training_samples=1,
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
        self.categorical_features = categorical_features
        self.handle_unknown = handle_unknown
        self.beta = beta
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_importance_samples = n_importance_samples
        self.n_training_samples = n_training_samples
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
        return self._fit_as_transaction(X, one_pass=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train on ``X`` for one pass of minibatches, continuing from the last call.

        The first call (on an unfitted estimator) sets everything up as
        :meth:`fit` does, from its own ``X``: the likelihood, the scaling (fixed
        from then on, as with ``warm_start``: later calls are scaled the same
        way, so give the first call a representative chunk), the network and the
        seeds. Each call then runs one epoch over its ``X`` and keeps Adam's state
        for the next, as :meth:`sklearn.neural_network.MLPRegressor.partial_fit`
        does; ``n_iter_`` and ``loss_curve_`` count calls. There is no early
        stopping and no ``ConvergenceWarning``: the caller decides when to stop.
        A call that fails or is interrupted leaves the model of the call before.
        Adam's state is not saved by :func:`skvae.save`: a loaded model's next
        ``partial_fit`` starts a new optimizer from the saved weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAETransformer
        >>> X = np.random.RandomState(0).normal(size=(300, 4))
        >>> vae = VAETransformer(hidden_layer_sizes=(8,), random_state=0)
        >>> for chunk in np.array_split(X, 3):
        ...     vae = vae.partial_fit(chunk)
        >>> vae.n_iter_
        3
        """
        return self._fit_as_transaction(X, one_pass=True)

    def _fit_as_transaction(self, X, *, one_pass):
        """Fit a shallow copy, then commit it in one assignment; return self.

        Whatever stops the fit (an error, KeyboardInterrupt), the estimator is
        still its previous fitted self, or unfitted; other threads see the old
        model or the new one, never a mix.
        """
        trained = object.__new__(type(self))
        trained.__dict__ = dict(vars(self))
        X = trained._fit_network(X, one_pass=one_pass)
        trained.__dict__.update(trained._fit_after_training(X))
        self.__dict__ = dict(vars(trained))
        return self

    def _fit_network(self, X, *, one_pass=False):
        """Fit data layer and network, set them with the history; return validated X.

        Runs on the copy that ``fit`` commits, never on the estimator in use. With
        ``one_pass`` (``partial_fit``): one epoch, continuing the fitted network
        and its optimizer when there is one.
        """
        if self.n_training_samples > 1 and self.beta != 1:
            raise ValueError(
                f"n_training_samples={self.n_training_samples} trains on the "
                f"importance-weighted bound, which has no KL weight; beta={self.beta} "
                "needs n_training_samples=1 (the ELBO)."
            )
        fitted = hasattr(self, "module_")
        warm = fitted and (self.warm_start or one_pass)
        X = self._validate_training_X(X, reset=not warm)
        # One draw from random_state, split into independent streams for the weights,
        # the scoring noise, the minibatch order and the validation split.
        init_seed, noise_seed, training_seed, split_seed = independent_seeds(
            self.random_state, 4
        )
        if one_pass and fitted:
            # Each call its own minibatch order and noise, reproducible from
            # random_state and the number of calls before.
            (training_seed,) = np.random.SeedSequence(
                seed_from(self.random_state), spawn_key=(self.n_iter_,)
            ).generate_state(1)
            training_seed = int(training_seed)
        device = resolve_device(self.device)
        if warm:
            data_space, spec = self._data_space, self._warm_start_spec()
            data_space.check_support(X, estimator_name=type(self).__name__)
            # Trained as a copy: the fitted network stays whole until commit.
            module = copy.deepcopy(self.module_).to(device)
            history = TrainingHistory(
                list(self.loss_curve_), list(self.validation_scores_ or [])
            )
            noise_seed = self._noise_seed
        else:
            data_space = DataSpace.fit(
                X, self.likelihood, self._table_schema.levels,
                estimator_name=type(self).__name__,
            )
            n_gaussian, n_bernoulli, levels = data_space.layout
            spec = NetworkSpec.from_params(
                self.get_params(deep=False), data_space.n_values, data_space.likelihood,
                column_layout=(n_gaussian, n_bernoulli, *levels),
                mask_input=has_missing(X),
            )
            # Built on the CPU from a private copy of torch's global generator, so the
            # weights depend only on random_state, not on the device or on other code.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(init_seed)
                module = spec.build()
            module = module.to(device)
            history = None

        optimizer = None
        if one_pass and fitted and "_optimizer" in vars(self):
            # Continued on the copy of the network: the fitted optimizer stays whole.
            optimizer = torch.optim.Adam(module.parameters(), lr=self._learning_rate())
            optimizer.load_state_dict(self._optimizer.state_dict())
        elif one_pass:
            optimizer = torch.optim.Adam(module.parameters(), lr=self._learning_rate())

        train_index, val_index = (
            (None, None) if one_pass else self._split_for_early_stopping(X.shape[0], split_seed)
        )
        n_train = X.shape[0] if train_index is None else len(train_index)
        config = TrainingConfig(
            batch_size=min(self._batch_size(), n_train),
            learning_rate=self._learning_rate(),
            max_iter=1 if one_pass else self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            beta=self.beta,
            loss_offset=data_space.log_abs_det,
            verbose=self.verbose,
            trim_fraction=self._trim_fraction(),
            n_samples=self.n_training_samples,
        )
        generator = torch.Generator(device=device).manual_seed(training_seed)
        X_val = None if val_index is None else data_space.to_tensor(X[val_index], device)
        if is_streamed(X):
            # Minibatches read from X (a memmap, say): never a tensor of all of it.
            # Their order comes from a CPU generator of its own, the noise from
            # the device's.
            (order_seed,) = np.random.SeedSequence(training_seed).generate_state(1)
            order = torch.Generator().manual_seed(int(order_seed))

            def make_batches():
                return streamed_batches(
                    X, train_index, config.batch_size, order,
                    lambda rows: data_space.to_tensor(rows, device),
                )

            first = np.arange(min(1024, n_train)) if train_index is None else (
                train_index[:1024]
            )
            check_rows = data_space.to_tensor(X[np.sort(first)], device)
        else:
            train_rows = data_space.to_tensor(
                X if val_index is None else X[train_index], device
            )

            def make_batches():
                return shuffled_batches(train_rows, config.batch_size, generator)

            check_rows = train_rows
        with one_thread_for_small(module):
            result = train(
                module, make_batches, config, generator, check_rows=check_rows,
                X_val=X_val, history=history, optimizer=optimizer,
            )
        module.load_state_dict(result.state)
        if one_pass and (result.interrupted or result.diverged):
            # The steps whose weights were dropped must not linger in Adam's state.
            optimizer = vars(self).get("_optimizer")
        self._warn_about_training(result, one_pass=one_pass)
        self.__dict__.pop("_optimizer", None)  # fit starts afresh; partial_fit sets it
        self.__dict__.update(
            {
                "device_": device,
                "module_": module,
                "_data_space": data_space,
                "_network_spec": spec,
                "_noise_seed": noise_seed,
                **self._derived_attributes(
                    data_space, spec, result.history,
                    validating=val_index is not None,
                ),
                **({"_optimizer": optimizer} if one_pass and optimizer else {}),
            }
        )
        return X

    def _fit_after_training(self, X):
        """Fitted attributes that need the trained model and validated ``X``; hook."""
        return {}

    # batch_size="auto": a conv network's CPU time grows with the images, not the
    # steps, so small batches cost it little per epoch (1.3x at 32 against 128
    # on MNIST); with the wide dense layer, 32 gained it 3 nats over 128 at 30
    # epochs on MNIST with a 2-D code (benchmarks/results_conv_plateau.md).
    # Subclasses with other needs (the detector's small dense network) override.
    _AUTO_BATCH_SIZE = {"dense": 128, "conv": 32}
    _AUTO_LEARNING_RATE = {"dense": 1e-3, "conv": 1e-3}

    def _batch_size(self):
        """Rows per minibatch: ``batch_size``, or the architecture's for "auto"."""
        if self.batch_size == "auto":
            return self._AUTO_BATCH_SIZE[self.architecture]
        return self.batch_size

    def _learning_rate(self):
        """Adam's step size: ``learning_rate_init``, or the architecture's for "auto"."""
        if self.learning_rate_init == "auto":
            return self._AUTO_LEARNING_RATE[self.architecture]
        return self.learning_rate_init

    def _trim_fraction(self):
        """Fraction of each minibatch left out of training; subclasses may override."""
        return 0.0

    # Whether reaching max_iter before the stopping rule fires is worth a
    # ConvergenceWarning: for a density model it is (more epochs, better fit).
    _warns_at_max_iter = True

    def _derived_attributes(self, data_space, spec, history, validating=False):
        """Public attributes that follow from the fitted state, set in one place."""
        return {
            "likelihood_": data_space.likelihood,
            "n_components_": spec.n_components,
            "image_shape_": spec.image_shape,
            "n_iter_": history.n_iter,
            "loss_curve_": list(history.loss_curve),
            "best_loss_": history.best_loss,
            "validation_scores_": list(history.validation_scores) if validating else None,
            "best_validation_score_": history.best_validation_score if validating else None,
        }

    def _warm_start_spec(self):
        """The fitted network's spec, after checking the parameters still describe it.

        Raises
        ------
        ValueError
            If a parameter that shapes the network changed since it was fitted:
            continuing would give a network that disagrees with the parameters.
        """
        fitted = self._network_spec
        likelihood = fitted.likelihood if self.likelihood == "auto" else self.likelihood
        if fitted.likelihood == "mixed":  # the parameter sets the numeric columns only
            likelihood = "mixed"
        wanted = NetworkSpec.from_params(
            self.get_params(deep=False), fitted.n_features, likelihood,
            fitted.column_layout, fitted.mask_input,
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
        return fitted

    # With early_stopping="auto", rows needed to hold some out for validation.
    _AUTO_EARLY_STOPPING_ROWS = 100

    def _early_stopping_for(self, n_samples):
        """Whether a fit on ``n_samples`` rows holds some out to stop early."""
        if self.early_stopping == "auto":
            return n_samples >= self._AUTO_EARLY_STOPPING_ROWS
        return bool(self.early_stopping)

    def _split_for_early_stopping(self, n_samples, seed):
        """Row indices to train and to validate on; ``(None, None)`` for all, none."""
        if not self._early_stopping_for(n_samples):
            return None, None
        n_val = max(1, int(round(self.validation_fraction * n_samples)))
        if n_samples - n_val < 1:
            raise ValueError(
                f"early_stopping=True holds out validation_fraction="
                f"{self.validation_fraction} of the data, which leaves no training rows "
                f"out of n_samples={n_samples}. Pass more rows or set "
                "early_stopping=False."
            )
        order = np.random.RandomState(seed % (2**32)).permutation(n_samples)
        return order[n_val:], order[:n_val]

    def _warn_about_training(self, result, one_pass=False):
        if result.diverged:
            warn(
                f"Training stopped after {result.history.n_iter} epochs because the loss "
                "or the weights became NaN or infinite; the last weights that gave a "
                "finite loss were kept, so the model is usable but may be undertrained. "
                "Lower learning_rate_init or rescale X (for example with "
                "StandardScaler).",
                RuntimeWarning,
            )
        elif (
            self._warns_at_max_iter
            and not one_pass
            and not (result.converged or result.interrupted)
            and result.n_epochs == self.max_iter
        ):
            warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} epochs "
                "before the loss stopped improving by tol; increase max_iter for a "
                "better fit.",
                ConvergenceWarning,
            )

    # ------------------------------------------------------------ fitted state

    def _get_fitted_state(self):
        """Everything ``fit`` learned: JSON-ready data, and the weights as CPU tensors.

        The inverse of :meth:`_set_fitted_state`. Values that follow from others
        (``best_loss_``, ``likelihood_``, ...) are not included.
        """
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        state = {
            "n_features_in": self.n_features_in_,
            "feature_names_in": None if names is None else [str(n) for n in names],
            "table_schema": self._table_schema.get_state(),
            "data_space": self._data_space.get_state(),
            "network": self._network_spec.to_dict(),
            "device": str(self.device_),
            "noise_seed": self._noise_seed,
            "loss_curve": list(self.loss_curve_),
            "validation_scores": (
                None if self.validation_scores_ is None else list(self.validation_scores_)
            ),
        }
        weights = {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in self.module_.state_dict().items()
        }
        return state, weights

    def _set_fitted_state(self, state, weights):
        """Become the fitted estimator that ``state`` and ``weights`` describe.

        Every entry is checked first and the attributes are set together, so the
        estimator is either unchanged or fitted and usable.

        Raises
        ------
        ValueError
            Naming the entry that is missing, of the wrong type or inconsistent.
        """
        candidate = object.__new__(type(self))
        candidate.__dict__ = {**vars(self), **self._fitted_attributes_from_state(
            dict(state), weights)}
        candidate._check_model_works()
        self.__dict__ = candidate.__dict__

    def _check_model_works(self):
        """Raise ``ValueError`` unless every method gives finite values on a typical row.

        Each entry of a file can be valid on its own while together they make a
        model that overflows (huge weights, a tiny scale); a file that loads must
        be a model that works.
        """
        typical = self._data_space.typical_row()
        codes = np.zeros((1, self.n_components_))
        try:
            outputs = [
                self._encode_codes(typical), self._decode_codes(codes),
                # A few draws: the file's n_importance_samples (up to 2**20)
                # must not make loading cost more than the file's size.
                self._log_likelihood(typical, n_draws=_CHECK_DRAWS),
                self._sample_codes(2, 0, return_mean=False),
                self._sample_codes(2, 0, return_mean=True),
            ]
            self._table_schema.to_user(outputs[3])  # categories and dtypes fit
        except ValueError as error:
            raise ValueError(f"the model it describes does not work ({error})") from None
        if not all(np.all(np.isfinite(values)) for values in outputs):
            raise ValueError("the model it describes gives NaN or infinite values.")

    def _fitted_attributes_from_state(self, state, weights):
        """The fitted attributes ``state`` describes; subclasses take their keys first."""
        expected = {"n_features_in", "feature_names_in", "table_schema", "data_space",
                    "network", "device", "noise_seed", "loss_curve", "validation_scores"}
        if set(state) != expected:
            raise ValueError(f"the entries are {sorted(state)}, expected {sorted(expected)}.")
        n_features = state["n_features_in"]
        if not (type(n_features) is int and n_features >= 1):
            raise ValueError(f"n_features_in={n_features!r} is not a positive integer.")
        names = state["feature_names_in"]
        if names is not None and not (
            isinstance(names, list) and len(names) == n_features
            and all(isinstance(n, str) for n in names)
        ):
            raise ValueError(f"feature_names_in is not {n_features} strings.")
        schema = TableSchema.from_state(state["table_schema"], n_features)
        data_space = DataSpace.from_state(state["data_space"], n_features)
        if list(data_space.levels) != schema.levels:
            raise ValueError("the data scaling does not match the table's categories.")
        spec = NetworkSpec.from_dict(state["network"])
        n_gaussian, n_bernoulli, levels = data_space.layout
        layout = (n_gaussian, n_bernoulli, *levels) if spec.likelihood == "mixed" else ()
        if (spec.n_features != data_space.n_values or spec.likelihood != data_space.likelihood
                or spec.column_layout != layout):
            raise ValueError("the network does not match the data it was fitted on.")
        seed = state["noise_seed"]
        if not (type(seed) is int and 0 <= seed < _SEED_LIMIT):
            raise ValueError(f"noise_seed={seed!r} is not an integer in [0, 2**32).")
        device = _recorded_device(state["device"])
        history = TrainingHistory(
            _finite_floats(state["loss_curve"], "loss_curve"),
            _finite_floats(state["validation_scores"] or [], "validation_scores"),
        )
        if state["validation_scores"] is not None and len(history.validation_scores) > len(
            history.loss_curve
        ):
            raise ValueError("validation_scores is longer than loss_curve.")
        module = spec.build_with_weights(weights).to(usable_device(device))
        attributes = {
            "n_features_in_": n_features,
            "device_": device,
            "module_": module,
            "_table_schema": schema,
            "_data_space": data_space,
            "_network_spec": spec,
            "_noise_seed": seed,
            **self._derived_attributes(data_space, spec, history),
        }
        if state["validation_scores"] is None:
            attributes["validation_scores_"] = attributes["best_validation_score_"] = None
        else:
            attributes["validation_scores_"] = list(history.validation_scores)
            attributes["best_validation_score_"] = history.best_validation_score
        if names is not None:
            if schema.columns is not None and [str(c) for c in schema.columns] != names:
                raise ValueError("the table schema's columns are not feature_names_in.")
            attributes["feature_names_in_"] = np.array(names, dtype=object)
        return attributes

    # --------------------------------------------------------------- inference

    def _validate_X(self, X, *, reset=False):
        """Validated codes of ``X`` (see :mod:`skvae._tables`); NaN where missing.

        With ``reset`` (in ``fit``, on the copy that fit commits) the table schema
        is fitted first and set as ``_table_schema``. Numbers-only input keeps
        scikit-learn's validation and its dtype (float64 or float32).
        """
        if reset:
            self._table_schema = TableSchema.fit(
                X, self.categorical_features, estimator_name=type(self).__name__)
        schema = self._table_schema
        if not schema.has_categorical:
            try:
                return validate_data(
                    self, X, reset=reset, dtype=[np.float64, np.float32],
                    ensure_all_finite="allow-nan",
                )
            except ValueError as error:
                if "infinity" not in str(error):
                    raise
                raise ValueError(_infinite_columns_message(X, self)) from None
        validate_data(self, X, reset=reset, skip_check_array=True)
        shape = getattr(X, "shape", None) if is_dataframe(X) else np.shape(X)
        if shape is None or len(shape) != 2 or shape[0] < 1:
            raise ValueError(
                f"X must be a 2-D table with at least one row; got shape {shape}.")
        names = getattr(self, "feature_names_in_", None)
        return schema.encode(X, handle_unknown=self.handle_unknown,
                             names=None if names is None else list(names))

    def _validate_training_X(self, X, *, reset):
        """:meth:`_validate_X` for ``fit``, refusing columns with nothing observed."""
        X = self._validate_X(X, reset=reset)
        empty = all_missing_columns(X)
        if len(empty):
            names = getattr(self, "feature_names_in_", None)
            label = repr(str(names[empty[0]])) if names is not None else str(empty[0])
            raise ValueError(
                f"Column {label} of X is missing in every row, so nothing can be "
                "learned about it. Drop the column."
            )
        return X

    def _fitted_view(self):
        """This estimator as it is now, whatever fit another thread commits meanwhile.

        ``fit`` replaces the attribute dict in one assignment and never changes a
        committed one in place, so an object that shares the current dict sees
        one model, whole, for the length of a call.
        """
        view = object.__new__(type(self))
        view.__dict__ = self.__dict__  # the same dict, not a copy
        return view

    def _device_here(self):
        """``device_``, or the CPU when that device is missing on this machine."""
        return usable_device(self.device_)

    def _map_rows(self, function, X, chunk_rows, *, verbose=0):
        """``function`` of the scaled rows of validated ``X``, as a float64 array."""
        device = self._device_here()
        with one_thread_for_small(self.module_):
            return map_rows(
                function, X, lambda block: self._data_space.to_tensor(block, device),
                chunk_rows, input_name="X", owner=type(self).__name__, verbose=verbose,
            )

    def encode(self, X):
        """Encode ``X`` as the means of its latent posteriors, ``E[z | x]``.

        Every skvae estimator has it; :meth:`VAETransformer.transform` is the same
        map under scikit-learn's name. :mod:`skvae.plotting` draws latent spaces
        with it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means, in the floating dtype of ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(100, 5))
        >>> detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=3,
        ...                               random_state=0).fit(X)
        >>> Z = detector.encode(X)
        >>> Z.shape, detector.decode(Z).shape
        ((100, 4), (100, 5))
        """
        check_is_fitted(self)
        self = self._fitted_view()  # one model for the whole call, even if refitted
        X = self._validate_X(X)
        self._data_space.check_support(X, estimator_name=type(self).__name__, clip=True)
        return self._encode_codes(X)

    def _encode_codes(self, X):
        means = self._map_rows(lambda x: self.module_.encode(x)[0], X, CHUNK_ROWS)
        return means.astype(X.dtype, copy=False)

    def decode(self, Z):
        """Decode latent codes to the mean of the likelihood, ``E[x | z]``, in data units.

        Every skvae estimator has it; :meth:`VAETransformer.inverse_transform` is
        the same map under scikit-learn's name.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components)
            Latent codes, for example the output of :meth:`encode`.

        Returns
        -------
        X : ndarray of shape (n_samples, ``n_features_in_``)
            Probabilities for the Bernoulli likelihood, means for the Gaussian, in
            the floating dtype of ``Z``.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(100, 5))
        >>> detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=3,
        ...                               random_state=0).fit(X)
        >>> detector.decode(np.zeros((1, detector.n_components_))).shape
        (1, 5)
        """
        check_is_fitted(self)
        self = self._fitted_view()  # one model for the whole call, even if refitted
        Z = check_array(Z, dtype=[np.float64, np.float32], input_name="Z")
        return self._table_schema.to_user(self._decode_codes(Z), dtype=Z.dtype)

    def _decode_codes(self, Z):
        n_components = self._network_spec.n_components
        if Z.shape[1] != n_components:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but {type(self).__name__} has "
                f"{n_components} latent dimensions. Pass codes produced by "
                "transform, one column per latent dimension."
            )
        device = self._device_here()

        def to_tensor(block):
            # Codes beyond float32 become inf; map_rows reports the row.
            with np.errstate(over="ignore"):
                block = np.ascontiguousarray(block, dtype=np.float32)
            return torch.as_tensor(block, device=device)

        with one_thread_for_small(self.module_):
            # Undone block by block into an output of Z's dtype: no temporary the
            # size of the result.
            return map_rows(
                lambda z: self.module_.likelihood.mean(self.module_.decoder(z)),
                Z, to_tensor, CHUNK_ROWS, input_name="Z", owner=type(self).__name__,
                dtype=Z.dtype if self._data_space.likelihood != "mixed" else np.float64,
                finish=self._data_space.to_data,
            )

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
        X : ndarray of shape (n_samples, ``n_features_in_``)
            Generated data, in the units of the training data.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(
                f"n_samples={n_samples!r} must be a positive integer, the number of "
                "rows to generate."
            )
        self = self._fitted_view()  # one model for the whole call, even if refitted
        codes = self._sample_codes(n_samples, seed_from(random_state), return_mean)
        return self._table_schema.to_user(codes)

    def _sample_codes(self, n_samples, seed, return_mean):
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn((n_samples, self._network_spec.n_components), generator=generator)
        with torch.no_grad():
            params = map_in_fixed_chunks(
                self.module_.decoder, z.to(self._device_here()), CHUNK_ROWS
            ).cpu()
            # The draws come from a CPU generator, so they match on every device.
            likelihood = copy.deepcopy(self.module_.likelihood).cpu()
            if return_mean:
                values = likelihood.mean(params)
            else:
                values = likelihood.sample(params, generator=generator)
        samples = self._data_space.to_data(values.numpy())
        if not np.all(np.isfinite(samples)):
            raise ValueError(
                f"{type(self).__name__} generated NaN or infinite values: its decoder "
                "or scaling overflows float64. Refit the model (on rescaled data)."
            )
        return samples

    # ------------------------------------------------------------- scoring

    def score_samples(self, X, *, random_state=None):
        """Estimate the log-likelihood ``log p(x)`` of each row, in nats.

        Uses the importance-weighted bound of Burda et al. (2016) with
        ``n_importance_samples`` posterior draws; with one draw it is the ELBO.
        The estimate is for the data as passed, so internal standardisation is
        accounted for and values compare with
        :meth:`sklearn.mixture.GaussianMixture.score_samples` on the same data.

        Each row gets posterior draws of its own, from a generator keyed by the
        fitted model's seed and the row's content: scores are deterministic, a
        row's score does not depend on the other rows in the call, and the
        Monte-Carlo errors of different rows are independent, so they average
        out in :meth:`score`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score. With the Bernoulli likelihood, values outside [0, 1]
            are scored as the nearest bound, after a ``UserWarning``.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the fitted model's draws (the deterministic default).
            Anything else seeds another, independent set of draws, still one per
            row: the spread of the scores over a few seeds is the Monte-Carlo
            error of the estimate.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Estimated log p(x) per row (higher is more likely).
        """
        check_is_fitted(self)
        self = self._fitted_view()  # one model for the whole call, even if refitted
        X = self._validate_X(X)
        self._data_space.check_support(X, estimator_name=type(self).__name__, clip=True)
        return self._log_likelihood(X, random_state)

    def _log_likelihood(self, X, random_state=None, n_draws=None, *, complete=False):
        """Estimated log p(x_obs) of each row of the codes ``X``.

        With ``complete``, rows with missing entries get the expected
        log-likelihood of those entries added (see ``VAEOutlierDetector``).
        """
        seed = self._noise_seed if random_state is None else seed_from(random_state)
        n_draws = self.n_importance_samples if n_draws is None else n_draws
        n_components = self.n_components_

        def log_px(x):
            noise = standard_normal_per_row(row_keys(x, seed), n_draws, n_components)
            return self.module_.log_likelihood(x, noise)

        log_px = self._map_rows(
            log_px, X, importance_chunk_rows(n_draws), verbose=self.verbose
        )
        if complete:
            return self._complete_missing(log_px, X)
        log_px -= self._data_space.log_abs_det_of(X)
        return log_px

    def _complete_missing(self, log_px_scaled, X):
        """Scores of the scaled data, completed for missing entries, in data units.

        A missing entry adds the expected log-density of its column under the
        model given the row's code, ``-H(p(x_j | z = E[z | x]))``, so a row does
        not look likelier for having fewer terms. In data units this leaves the
        scaling's full log-determinant to subtract, as for a complete row.
        """
        if has_missing(X):
            log_px_scaled -= self._map_rows(self.module_.missing_entropy, X, CHUNK_ROWS)
        log_px_scaled -= self._data_space.log_abs_det
        return log_px_scaled

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Missing entries are left out of the likelihood (see skvae._networks.VAE).
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags

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
            self.module_.to(self._device_here())


def _recorded_device(name):
    """The device a file says a model was fitted on; ``meta`` and nonsense refused."""
    if not isinstance(name, str):
        raise ValueError("device is not a string.")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"device={name!r} names no torch device.") from error
    if device.type == "meta":
        raise ValueError("device='meta' holds no data: no model can have been fitted on it.")
    return device


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


def _infinite_columns_message(X, estimator):
    """The error for infinite values, naming the columns that hold them."""
    array = np.asarray(X, dtype=np.float64)
    columns = np.flatnonzero(np.isinf(array).any(axis=0)) if array.ndim == 2 else []
    names = getattr(estimator, "feature_names_in_", None)
    if names is None and is_dataframe(X):
        names = [str(c) for c in X.columns]
    labels = [repr(str(names[j])) if names is not None else str(j) for j in columns[:5]]
    return (
        f"X holds infinite values (column{'s' if len(labels) > 1 else ''} "
        f"{', '.join(labels) or '?'}), which {type(estimator).__name__} cannot model. "
        "Replace them with np.nan, which it reads as missing, or with finite values."
    )
