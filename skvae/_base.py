"""The estimator base shared by every skvae estimator: parameters, fit, public methods.

:class:`BaseVAE` is a thin shell. ``fit`` and ``partial_fit`` call
:func:`~skvae._fitting.fit_model` and commit its outcome, the fitted model
(:class:`~skvae._model.FittedVAE`) with the public attributes, in one assignment,
so whatever stops a fit leaves the previous fitted state whole. Public methods
check that the estimator is fitted, take one snapshot of it, validate their input
and call the model. Subclasses declare what they fit beyond the model
(``_fit_extras``) and what of it the model file keeps (``_extra_entries``).
"""

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils.validation import check_array, check_is_fitted

from ._convergence import warn_about_training
from ._devices import resolve_device, tensors_on_cpu
from ._fitting import FitSettings, PreviousFit, fit_model
from ._networks import check_parameter_sizes
from ._params import SHARED_PARAMETER_CONSTRAINTS
from ._random import seed_from
from ._state import estimator_state, fitted_attributes, fitted_attributes_from_state
from ._torch_state import torch_state_kept
from ._training import TrainingHistory
from ._validation import check_n_samples, given_rows, validate_rows, validate_training_rows


class BaseVAE(BaseEstimator):
    """Base class of skvae estimators; not for direct use.

    Subclasses own their ``__init__`` and document the parameters.
    """

    _parameter_constraints = dict(SHARED_PARAMETER_CONSTRAINTS)

    # Training policy per estimator. batch_size="auto": a conv network's CPU time
    # grows with the images, not the steps, so small batches cost it little per
    # epoch (1.3x at 32 against 128 on MNIST); with the wide dense layer, 32
    # gained it 3 nats over 128 at 30 epochs on MNIST with a 2-D code
    # (benchmarks/results_conv_plateau.md).
    _AUTO_BATCH_SIZE = {"dense": 128, "conv": 32}
    _AUTO_LEARNING_RATE = {"dense": 1e-3, "conv": 1e-3}
    # Rate of the Gaussian likelihood's variances, as a multiple of the
    # learning rate (see skvae._fitting.parameter_groups).
    _VARIANCE_RATE_FACTOR = 1.0
    # Whether reaching max_iter before the stopping rule fires is worth a
    # ConvergenceWarning: for a density model it is (more epochs, better fit).
    _warns_at_max_iter = True
    # What the model file keeps beyond the model and the history (subclasses).
    _extra_entries = ()
    # Parameters newer than some model files, with the value that trains as
    # those files' estimators did (see skvae._persistence.completed_parameters).
    _parameters_newer_than_files = {"learning_rate": "constant"}

    def _validate_params(self):
        # The widths in hidden_layer_sizes and conv_channels, which no constraint
        # reaches: fit, save and load refuse the same parameters.
        super()._validate_params()
        check_parameter_sizes(self.get_params(deep=False))

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

    def _fit_as_transaction(self, X, *, one_pass, anomalous=None):
        """Fit on a shallow copy, then commit it in one assignment; return self.

        Whatever stops the fit (an error, KeyboardInterrupt), the estimator is
        still its previous fitted self, or unfitted; other threads see the old
        model or the new one, never a mix. ``anomalous``: see :func:`fit_model`.
        """
        with torch_state_kept():  # torch's global settings, however the fit stops
            return self._fit_transaction(X, one_pass=one_pass, anomalous=anomalous)

    def _fit_transaction(self, X, *, one_pass, anomalous):
        settings = FitSettings.from_params(
            self.get_params(deep=False), self._AUTO_BATCH_SIZE, self._AUTO_LEARNING_RATE,
            device=resolve_device(self.device), owner=type(self).__name__,
            variance_rate_factor=self._VARIANCE_RATE_FACTOR)
        current = self._snapshot() if "_model" in vars(self) else self  # read once
        previous = current._previous_fit(one_pass)
        trained = object.__new__(type(self))  # fit starts Adam afresh; partial_fit continues
        trained.__dict__ = {k: v for k, v in vars(current).items() if k != "_optimizer_state"}
        X, schema = validate_training_rows(trained, self._prepare_input(X),
                                           previous and previous.model.schema)
        outcome = fit_model(X, schema, settings, previous=previous, one_pass=one_pass,
                            anomalous=anomalous)
        warn_about_training(outcome, self, one_pass=one_pass)
        trained.__dict__.update(fitted_attributes(
            outcome.model, outcome.history, outcome.validating, outcome.optimizer_state))
        trained.__dict__.update(trained._fit_extras(outcome.model, X, warm=bool(previous),
                                                    one_pass=one_pass))
        self.__dict__ = {**vars(trained), **self._fresh_attributes()}
        return self

    def _previous_fit(self, one_pass):
        """The fit to continue (a warm start or ``partial_fit``), or None."""
        if "_model" not in vars(self) or not (self.warm_start or one_pass):
            return None
        history = TrainingHistory(list(self.loss_curve_), list(self.validation_scores_ or []))
        return PreviousFit(self._model, history, vars(self).get("_optimizer_state"),
                           self.n_iter_)

    def _fit_extras(self, model, X, *, warm, one_pass):
        """Fitted attributes beyond the model, from the new ``model`` and the rows ``X``
        (``warm``: the fit continued the previous one; ``one_pass``: ``partial_fit``)."""
        return {}

    def _fresh_attributes(self):
        """Attributes every commit (a fit, a load) starts anew; not kept in files."""
        return {}

    # ------------------------------------------------------------ fitted state

    def _get_fitted_state(self):
        """Everything ``fit`` learned: JSON-ready data, and the weights as CPU tensors.

        The inverse of :meth:`_set_fitted_state`; read from one snapshot, so a fit
        that another thread commits meanwhile cannot mix two models in it.
        """
        return estimator_state(self._snapshot(), self._extra_entries)

    def _set_fitted_state(self, state, weights):
        """Become the fitted estimator that ``state`` and ``weights`` describe.

        Every entry is checked, and the model checked to work, before the
        attributes are set together: the estimator is unchanged, or fitted and
        usable. Raises ``ValueError`` naming what is wrong.
        """
        attributes = fitted_attributes_from_state(
            state, weights, self._extra_entries, owner=type(self).__name__)
        if attributes["_model"].prior is not None and "sampling_prior" not in vars(self):
            # Only the transformer fits a mixture prior; another estimator's
            # file holding one was crafted, and its scores would use it.
            raise ValueError(f"{type(self).__name__} has no sampling prior, but the "
                             "state holds one.")
        if (attributes["_model"].data_space.maps is not None
                and "numeric_transform" not in vars(self)):
            # Only the transformer maps columns; another estimator's file holding
            # maps was crafted. (The transformer's own parameter may read "none"
            # in a file: set_params after fit changes the next fit, not this model.)
            raise ValueError(f"{type(self).__name__} maps no column (it has no "
                             "numeric_transform), but the state holds quantile maps.")
        self.__dict__ = {**vars(self), **attributes, **self._fresh_attributes()}

    def _snapshot(self):
        """This estimator as it is now, whatever fit another thread commits meanwhile.

        ``fit`` replaces the attribute dict in one assignment and never changes a
        committed one in place, so an object that shares the current dict sees
        one model, whole, for the length of a call.
        """
        check_is_fitted(self)
        view = object.__new__(type(self))
        view.__dict__ = self.__dict__  # the same dict, not a copy
        return view

    def _validate_X(self, X):
        """Validated table codes of ``X`` (see :mod:`skvae._tables`); NaN where missing."""
        return validate_rows(self, self._prepare_input(X), self._model.schema)

    def _prepare_input(self, X):
        """``X`` as validation should read it (the imputer marks its placeholders)."""
        return X

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
            Posterior means: float32 for float32 ``X``, else float64.

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
        fitted = self._snapshot()
        return fitted._model.encode(fitted._validate_X(X))

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
        X : ndarray or DataFrame of shape (n_samples, ``n_features_in_``)
            Probabilities for the Bernoulli likelihood, means for the Gaussian, in
            the floating dtype of ``Z``; a DataFrame like the training one when
            ``fit`` saw a DataFrame.

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
        fitted = self._snapshot()
        return fitted._model.decode(check_array(Z, dtype=[np.float64, np.float32],
                                                input_name="Z"))

    def sample(self, n_samples=1, *, given=None, random_state=None, return_mean=False):
        """Generate new data from the fitted model, optionally given some columns.

        Draws ``z`` from the model's prior and then ``x ~ p(x | z)``, as
        :meth:`sklearn.mixture.GaussianMixture.sample` does, or with
        ``return_mean=True`` the decoder means ``E[x | z]`` (the smooth images
        shown for VAEs). With ``given``, its entries are kept and the others
        (NaN) drawn from the model's ``p(x_mis | x_obs)`` by importance
        resampling among ``n_importance_samples`` latent draws, half from the
        encoder's posterior (as :class:`~skvae.VAEImputer` draws) and half from
        the prior, so that a row holding little (only a category) still gets
        draws where that category lives (``return_mean``: conditional means);
        see the tabular guide for an example. The prior is N(0, I), or
        the Gaussian mixture fitted to the training rows' codes for
        :class:`~skvae.VAETransformer` with ``sampling_prior="mixture"`` (its
        default; see ``sampling_prior_``).

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to generate.
        given : array-like or DataFrame of shape (1 or n_samples, n_features), \
default=None
            Rows with the columns to condition on set and NaN elsewhere, in the
            format of the training data; one row serves every sample.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws. ``None`` draws fresh entropy from the operating
            system, without touching numpy's global random state.
        return_mean : bool, default=False
            Return means rather than draws.

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples, ``n_features_in_``)
            Generated data, in the units and format of the training data.
        """
        fitted = self._snapshot()
        check_n_samples(n_samples)
        if given is None:
            return fitted._model.sample(n_samples, seed_from(random_state),
                                        return_mean=return_mean)
        rows = given_rows(fitted._validate_X(given), n_samples)
        fitted._model.check_support(rows, clip=True)
        return fitted._model.sample_given(rows, fitted.n_importance_samples,
                                          seed_from(random_state), return_mean=return_mean)

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
        fitted = self._snapshot()
        X = fitted._validate_X(X)
        fitted._model.check_support(X, clip=True)
        return fitted._model.log_likelihood(X, fitted.n_importance_samples,
                                            random_state=random_state,
                                            verbose=fitted.verbose)

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

    def __getstate__(self):
        # Every tensor pickles with its device; CPU copies unpickle anywhere. A
        # copy of the dict: object.__getstate__ returns the estimator's own.
        state = dict(super().__getstate__())
        if "_model" in state:
            state["_model"] = state["_model"].on_cpu()
            state["module_"] = state["_model"].module
        if state.get("_optimizer_state") is not None:
            state["_optimizer_state"] = tensors_on_cpu(state["_optimizer_state"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_model" in state:
            self._model.placed_here()  # module_ is the same module
