"""VAEOutlierDetector: a variational autoencoder as a scikit-learn outlier detector."""

from dataclasses import dataclass
from numbers import Real

import numpy as np
from sklearn.base import OutlierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseVAE
from ._draws import MAX_DRAWS
from ._labels import labelled_anomalies
from ._random import spawned_seed
from ._state import FittedEntry, finite_number
from ._tables import _import_pandas, is_dataframe
from ._warnings import warn

# Tukey's fence: with contamination="auto", rows scoring more than this many
# inter-quartile ranges below the first quartile of the training scores are outliers.
# 3, Tukey's "far out" fence: log-likelihoods have a long lower tail even for
# normal rows, and the usual 1.5 flagged 4.0 times the true share of anomalies on
# the ADBench sets with fewer than 10% of them (3: 2.7 times; see
# benchmarks/results_contamination.md).
_TUKEY_K = 3.0

# Training scores kept for p_values: at most this many, evenly spaced order
# statistics of all of them beyond it. A model file stores them as JSON numbers,
# about 20 bytes each: 10,000 add 0.2 MB at most, and give p-values a resolution
# of 1e-4, finer than any false-alarm rate worth setting.
MAX_REFERENCE_SCORES = 10_000


@dataclass(frozen=True)
class RowSample:
    """A uniform sample of at most ``capacity`` of the rows seen so far (reservoir sampling).

    The detector's ``partial_fit`` sets ``offset_`` from it: the threshold must
    describe every row trained on, not the last chunk. Not kept in model files:
    a loaded detector's first ``partial_fit`` starts a new sample.
    """

    rows: np.ndarray
    n_seen: int
    capacity: int = 5000

    @classmethod
    def extended(cls, sample, X, seed):
        """The sample after the rows ``X`` are seen too (Vitter's algorithm R)."""
        if sample is None:
            sample = cls(X[:0].copy(), 0)
        take = min(sample.capacity - len(sample.rows), len(X))
        rows = np.concatenate([sample.rows, X[:take]])  # a new array: sample is kept
        seen = sample.n_seen + take
        positions = np.random.default_rng(seed).integers(
            0, seen + np.arange(len(X) - take) + 1)  # row t replaces a slot of [0, t]
        # Row t of the rest replaces slot positions[t] when that is a slot; of
        # rows aimed at one slot, the last wins, as in the sequential algorithm.
        # Vectorised, and only the chosen rows are read (X may be a memmap).
        aimed = np.flatnonzero(positions < sample.capacity)[::-1]
        slots, last = np.unique(positions[aimed], return_index=True)
        rows[slots] = X[take + aimed[last]]
        return cls(rows, sample.n_seen + len(X), sample.capacity)


def tukey_lower_fence(scores, k=_TUKEY_K):
    """``Q1 - k * IQR`` of ``scores``: below it a score is an outlier by Tukey's rule."""
    q1, q3 = np.percentile(scores, [25.0, 75.0])
    return q1 - k * (q3 - q1)


class VAEOutlierDetector(OutlierMixin, BaseVAE):
    """Unsupervised outlier detection with a variational autoencoder.

    Fits a VAE (the model, training and parameters of
    :class:`~skvae.VAETransformer`) to the training data, which may contain
    outliers, and scores each row by how well the model explains it: by default
    its estimated log-likelihood ``log p(x)``. Rows the model finds unlikely are
    outliers. The API and sign conventions are those of
    :class:`sklearn.ensemble.IsolationForest`: :meth:`score_samples` is higher for
    normal rows, :meth:`decision_function` is ``score_samples - offset_`` and
    negative for outliers, :meth:`predict` returns -1 for outliers and +1 for
    inliers.

    :meth:`score_features` says which columns make a row an outlier (each
    column's share of its score), :meth:`set_threshold` sets the threshold by
    the false-alarm rate on clean rows, and :meth:`p_values` tests rows against
    the scores of the training rows.

    Tables with categorical columns and missing values are scored as they are
    (see :class:`~skvae.VAETransformer`). A row with missing entries must not
    look more normal for having fewer terms in its likelihood, so each missing
    entry adds to the row's score the log-likelihood its column would be
    expected to add, given the rest of the row: minus the entropy of
    p(x_j | z) at the row's code ``z = E[z | x_obs]``. The score of an
    incomplete row is then that of a typical completion of it, on the scale of
    complete rows; complete rows are scored as before.

    Compared with :class:`~skvae.VAETransformer` the defaults suit tabular
    anomaly detection: a Gaussian likelihood (so rows outside the training range
    of a feature, common after ``MinMaxScaler``, get a finite, low score instead
    of an error), a small network and latent space, a moderate epoch budget, and
    a trimmed training objective (``trim_fraction``), so that the model learns
    the bulk of the data rather than the outliers mixed into it.

    Parameters
    ----------
    contamination : "auto" or float, default="auto"
        Expected proportion of outliers in the training data; sets ``offset_``,
        the threshold of :meth:`predict`. With a float in (0, 0.5], ``offset_`` is
        the ``contamination`` quantile of the training scores, so that fraction
        of the training rows is flagged, as in
        :class:`~sklearn.ensemble.IsolationForest`. With ``"auto"``, ``offset_``
        is Tukey's "far out" lower fence of the training scores, ``Q1 - 3 *
        IQR``: a row is an outlier when its score lies further below the first
        quartile than 3 times the inter-quartile range. The fraction flagged then
        follows the data, and it promises no share: on the 12 ADBench data sets
        it flagged 9.6% of the test rows on average (true share 15.3%), and on
        those with under 10% anomalies 2.7 times the true share (precision 0.41,
        recall 0.51 over all 12). When the expected share is known, pass it as a
        float. The ranking of :meth:`score_samples` does not depend on it.
    anomaly_score : {"log_likelihood", "reconstruction", "latent"}, \
default="log_likelihood"
        What :meth:`score_samples` returns. ``"log_likelihood"``: the
        importance-weighted estimate of ``log p(x)`` (as
        :meth:`VAETransformer.score_samples`), which combines how well the row is
        reconstructed with how typical its latent code is. ``"reconstruction"``:
        ``log p(x | z)`` at the posterior mean ``z = E[z | x]``, the likelihood
        of the reconstruction alone, weighting each feature by its learned noise
        variance. ``"latent"``: ``-KL(q(z | x) || p(z))``, how far the row's code
        lies from the prior, ignoring reconstruction. **It often fails**: rows far
        from the training data tend to be encoded near the prior's centre, so
        they look normal (on blobs with uniform outliers, ROC-AUC 0.20 to 0.37,
        where the other two scores reach 0.98 to 1.00); ``fit`` warns when it
        is chosen.
    trim_fraction : float in [0, 1), default=0.2
        Fraction of each minibatch, the rows the model currently explains worst,
        left out of every training step (a trimmed ELBO). The training data
        contain the outliers; trimming keeps them, and the far tails of the normal
        data, from pulling the model towards themselves, so the model describes
        the core of the data and outliers score lower. ``0`` trains on every row,
        as :class:`~skvae.VAETransformer` does. ``loss_curve_`` and the stopping
        rule follow the trimmed loss, the objective being minimised. On the 12
        ADBench data sets of the benchmark, mean ROC-AUC rose from 0.791 without
        trimming to 0.826 at 0.1 and 0.829 at 0.2 (measured at the earlier
        defaults, batch 128 and lr 3e-3).
    label_weight : float >= 0, default=0.0
        Weight of the known anomalies of ``fit(X, y)`` in training. ``0``:
        ``y`` is ignored, and the detector is unsupervised. Above 0, the rows
        ``y`` labels 1 are left out of the rows the model describes, and every
        training step adds ``label_weight`` times a hinge on their bound
        (in the spirit of Deep SAD's term for labelled anomalies): the mean over
        them of how far their negative ELBO lies below the highest of the
        step's minibatch, so the model learns to give them, and the rows that
        look like them, a likelihood below that of every normal row. ``1``
        weighs the anomalies' mean hinge as much as the minibatch's mean loss.
        The hinge is ramped in over the first 20 epochs, and ``loss_curve_``
        and the stopping rule follow the trimmed loss without it. On the 12
        ADBench sets with 5% of the training anomalies labelled, ``1`` raised
        the mean ROC-AUC from 0.827 to 0.879, most on the sets where the
        likelihood fails (SpamBase 0.48 to 0.71, yeast 0.40 to 0.60), but
        lowered it on Ionosphere (0.92 to 0.84); see
        ``benchmarks/results_labels.md``.
    n_components : int, default=4
        Dimension of the latent space. Small, so that the model summarises the
        bulk of the data rather than reproducing every row.
    hidden_layer_sizes : array-like of int, default=(64, 32)
        Widths of the encoder's hidden layers; the decoder mirrors them. Tabular
        data sets have tens of features, not thousands of pixels.
    architecture : {"dense", "conv"}, default="dense"
        Network type; see :class:`~skvae.VAETransformer`.
    image_shape : tuple of int or None, default=None
        ``(channels, height, width)`` of each image with ``architecture="conv"``.
    conv_channels : array-like of int, default=(32, 64)
        Channels of the convolutional layers with ``architecture="conv"``.
    conv_dense_width : int, default=512
        Width of the dense layer between convolutions and latent space with
        ``architecture="conv"``.
    activation : {"relu", "leaky_relu", "elu", "gelu", "tanh", "logistic", \
"identity"}, default="relu"
        Activation after every hidden layer.
    likelihood : {"auto", "bernoulli", "gaussian"}, default="gaussian"
        Distribution of the data given the latent code. Gaussian by default, on
        internally standardised features, because anomaly detection must score
        rows outside the range of the training data. With ``"bernoulli"`` (and
        ``"auto"`` on binary data, see
        :class:`~skvae.VAETransformer`) scoring rows with values outside [0, 1]
        raises ``ValueError``: the model gives them probability zero, and
        clipping them, as :class:`~skvae.VAETransformer` does, could hide the
        very rows a detector is for. In a table with categorical columns it
        applies to the numeric columns.
    categorical_features : "from_dtype", array-like or None, default="from_dtype"
        Which columns are categorical; see :class:`~skvae.VAETransformer`.
    handle_unknown : {"error", "ignore"}, default="error"
        A category ``fit`` never saw: an error, or (``"ignore"``) a missing
        entry; see :class:`~skvae.VAETransformer`.
    beta : float, default=1.0
        Weight of the KL term in the training objective.
    batch_size : int or "auto", default="auto"
        Rows per minibatch; clipped to the number of training rows. ``"auto"``
        is 512 for the dense network and 32 for the conv network. 512 is large,
        with a large learning rate, because the detector's dense network is
        small: a step costs little more at 512 rows than at 128, so the fit
        takes about a third of the time. On the 12 ADBench sets this kept the
        mean ROC-AUC (0.828 against 0.829 at batch 128, lr 3e-3); see
        ``benchmarks/results_adbench.md``.
    learning_rate_init : float or "auto", default="auto"
        Adam's step size. ``"auto"`` is 2e-2 for the dense network, matched to
        its batches of 512 (3e-2 lost ROC-AUC on some sets), and 1e-3 for the
        conv network, whose wide ReLU layer dies at large steps.
    learning_rate : {"cosine", "constant"}, default="constant"
        Learning-rate schedule over the ``max_iter`` epochs. ``"cosine"`` warms
        up over the first 5% of the steps, then decays to zero along a half
        cosine, so a run that uses all its epochs ends converged (and does not
        warn); ``"constant"`` keeps ``learning_rate_init`` throughout.
        ``partial_fit`` always steps at ``learning_rate_init``.
    max_iter : int, default=100
        Epoch budget. On the ADBench data sets, 20 epochs leave the model
        underfitted and more than about 100 add nothing to the ranking of rows,
        while the likelihood itself keeps improving slowly; so the detector, unlike
        :class:`~skvae.VAETransformer`, gives no ``ConvergenceWarning`` when it
        uses the whole budget.
    tol : float, default=1e-4
        Minimum improvement, in nats per row, that counts as progress; see
        :class:`~skvae.VAETransformer`.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its ELBO stops
        improving, restoring the best weights.
    validation_fraction : float, default=0.1
        Fraction of the training rows held out with ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement before training stops.
    n_importance_samples : int, default=50
        Posterior samples per row (independent for each row) for
        ``anomaly_score="log_likelihood"``.
    n_training_samples : int, default=1
        Posterior draws per row in the training objective: 1, the ELBO; more,
        the importance-weighted bound (see :class:`~skvae.VAETransformer`).
    device : str or torch.device, default="auto"
        Where to train and compute: ``"auto"`` uses CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, minibatch order, training noise and the per-row draws
        used for scoring. Pass an int for reproducible results.
    verbose : int, default=0
        0 prints nothing. 1 shows a progress bar (tqdm's, in a terminal or a
        notebook) over the epochs of :meth:`fit`, with the loss, the validation
        score and the time left, and over the row blocks of long
        :meth:`score_samples` calls. 2 prints one line per epoch instead.
    warm_start : bool, default=False
        Continue training the fitted network on the next call to :meth:`fit`.

    Attributes
    ----------
    offset_ : float
        Threshold on :meth:`score_samples`: ``decision_function`` is
        ``score_samples - offset_``, negative for outliers. Set by ``fit`` from
        ``contamination``, or by :meth:`set_threshold` from a false-alarm rate.
    likelihood_ : str
        The likelihood used: ``"bernoulli"``, ``"gaussian"``, or ``"mixed"`` for
        a table with categorical columns.
    n_components_ : int
        Latent dimensions of the fitted network.
    module_ : torch.nn.Module
        The trained network (encoder, decoder and likelihood).
    device_ : torch.device
        The device the model was trained on.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Training loss (negative ELBO, nats per row, trimmed by
        ``trim_fraction``) after each epoch.
    best_loss_ : float
        Lowest value in ``loss_curve_``.
    validation_scores_ : list of float or None
        Held-out ELBO per row after each epoch with ``early_stopping``, else None.
    best_validation_score_ : float or None
        Highest value in ``validation_scores_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    VAETransformer : The same model as a transformer and density estimator.
    sklearn.ensemble.IsolationForest : Outlier detection with random trees.
    sklearn.covariance.EllipticEnvelope : Outlier detection under a Gaussian.

    References
    ----------
    An, J. and Cho, S. (2015). Variational Autoencoder based Anomaly Detection
    using Reconstruction Probability. SNU Data Mining Center, Tech. Rep.

    Han, S. et al. (2022). ADBench: Anomaly Detection Benchmark. NeurIPS.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sklearn.exceptions import ConvergenceWarning
    >>> from skvae import VAEOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(size=(100, 3)), [[8.0, 8.0, 8.0]]])
    >>> det = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    >>> with warnings.catch_warnings():  # 5 epochs: a demonstration, not a fit
    ...     warnings.simplefilter("ignore", ConvergenceWarning)
    ...     det = det.fit(X)
    >>> det.predict(X[-1:])
    array([-1])
    >>> bool(det.decision_function(X[-1:])[0] < 0 < det.decision_function(X[:1])[0])
    True
    """

    _parameter_constraints = {
        **BaseVAE._parameter_constraints,
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="right"),
        ],
        "anomaly_score": [StrOptions({"log_likelihood", "reconstruction", "latent"})],
        "trim_fraction": [Interval(Real, 0, 1, closed="left")],
        "label_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        contamination="auto",
        anomaly_score="log_likelihood",
        trim_fraction=0.2,
        label_weight=0.0,
        n_components=4,
        hidden_layer_sizes=(64, 32),
        architecture="dense",
        image_shape=None,
        conv_channels=(32, 64),
        conv_dense_width=512,
        activation="relu",
        likelihood="gaussian",
        categorical_features="from_dtype",
        handle_unknown="error",
        beta=1.0,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init="auto",
        max_iter=100,
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
        # Only stores the arguments, as scikit-learn requires.
        vars(self).update((name, value) for name, value in locals().items()
                          if name != "self")

    # The Gaussian likelihood keeps sharpening (the learned variances shrink) long
    # after the ranking of rows has settled: on the 12 ADBench sets the loss was
    # still improving by more than 0.03 nats per row per 10 epochs at epoch 100 in
    # 33 of 36 fits, at the same mean ROC-AUC. A warning there is not worth acting
    # on, so max_iter is the detector's epoch budget.
    _warns_at_max_iter = False
    # The dense network is small: big batches at a big step size fit it in a
    # third of the time (benchmarks/results_adbench.md). A conv network's wide
    # ReLU layer dies at that step size, so it gets the transformer's settings.
    _AUTO_BATCH_SIZE = {"dense": 512, "conv": 32}
    _AUTO_LEARNING_RATE = {"dense": 2e-2, "conv": 1e-3}
    # Parameters added after the format of the model files: a file without them
    # (written before) loads with their defaults.
    _parameters_newer_than_files = {"label_weight": 0.0, "learning_rate": "constant"}
    # offset_ is a threshold on one score: the score it was computed from (its
    # kind and number of draws) is fitted state, so set_params(anomaly_score=...)
    # takes effect at the next fit, as parameters do, instead of silently moving
    # predictions.
    _extra_entries = (
        FittedEntry("offset_", "offset", float,
                    lambda value, n_features: finite_number(value, "offset")),
        FittedEntry("_score_kind", "anomaly_score", str,
                    lambda value, n_features: _score_kind_from_file(value)),
        FittedEntry("_score_draws", "n_importance_samples", int,
                    lambda value, n_features: _score_draws_from_file(value)),
        # Optional: detector files written before p_values still load.
        FittedEntry("_reference_scores", "training_scores", lambda scores: scores.tolist(),
                    lambda value, n_features: _reference_scores_from_file(value),
                    optional=True),
    )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE to ``X``, and ``offset_`` from ``contamination``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, which may contain outliers.
        y : array-like of shape (n_samples,) or None, default=None
            Ignored unless ``label_weight > 0``, as scikit-learn's outlier
            detectors ignore it: a ground truth that a grid search or a pipeline
            passes along never leaks into training. With ``label_weight > 0``, a
            few labels: 1 marks a known anomaly, 0 a known inlier, -1 a row
            without a label (scikit-learn's mark for unlabelled rows; it is
            not :meth:`predict`'s -1). Known anomalies are left out of the rows
            the model describes and trained to a low likelihood instead (see
            ``label_weight``); known inliers and unlabelled rows are trained on
            alike. ``None``, or no row labelled 1, fits exactly as without ``y``.

        Returns
        -------
        self : object
            The fitted detector.

        Examples
        --------
        Forty anomalies in a tight cluster that the likelihood finds typical; ten
        of them are labelled.

        >>> import numpy as np
        >>> from skvae import VAEOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> X = np.vstack([rng.normal(size=(400, 4)), rng.normal(1.0, 0.1, size=(40, 4))])
        >>> y = np.full(len(X), -1)  # no label
        >>> y[400:410] = 1  # known anomalies
        >>> params = dict(hidden_layer_sizes=(8,), max_iter=40, random_state=0)
        >>> for label_weight in (0.0, 1.0):  # 0: y is ignored
        ...     scores = VAEOutlierDetector(label_weight=label_weight, **params).fit(
        ...         X, y).score_samples(X)
        ...     # the share of the 30 unlabelled anomalies below the median inlier
        ...     print(round(float(np.mean(scores[410:] < np.median(scores[:400]))), 2))
        0.23
        0.97
        """
        return self._fit_as_transaction(X, one_pass=False,
                                        anomalous=self._anomalous_rows(X, y))

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train on ``X`` for one pass of minibatches; see :meth:`VAETransformer.partial_fit`.

        ``offset_`` is set from a uniform sample of every row seen so far.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,) or None, default=None
            Labels of this chunk's rows, read as by :meth:`fit` (only with
            ``label_weight > 0``).

        Returns
        -------
        self : object
            The updated detector.
        """
        return self._fit_as_transaction(X, one_pass=True,
                                        anomalous=self._anomalous_rows(X, y))

    def _anomalous_rows(self, X, y):
        """The mask of the rows ``y`` labels anomalous, or None when ``y`` is not read."""
        if y is None or self.label_weight == 0:
            return None
        return labelled_anomalies(y, X)

    def _fit_extras(self, model, X, *, warm, one_pass):
        if self.anomaly_score == "latent":
            warn(
                "anomaly_score='latent' ranks rows by how far their latent code lies "
                "from the prior's centre, and rows far from the training data are "
                "often encoded near that centre: on blobs with uniform outliers it "
                "ranked the outliers as the most normal rows (ROC-AUC 0.20 to 0.37). "
                "Use anomaly_score='log_likelihood' (the default) or "
                "'reconstruction' unless you have checked 'latent' on your data.",
                UserWarning,
            )
        # partial_fit sees one chunk a call: its threshold comes from a uniform
        # sample of every row seen so far, scored by the current model.
        sample = None
        if one_pass:
            previous = vars(self).get("_offset_sample") if warm else None
            sample = RowSample.extended(previous, X, spawned_seed(self.random_state,
                                                                  self.n_iter_))
        scores = anomaly_scores(model, X if sample is None else sample.rows,
                                self.anomaly_score, self.n_importance_samples,
                                verbose=self.verbose)
        if self.contamination == "auto":
            offset = float(tukey_lower_fence(scores))
        else:
            offset = float(np.percentile(scores, 100.0 * self.contamination))
        return {"offset_": offset, "_score_kind": self.anomaly_score,
                "_score_draws": self.n_importance_samples, "_offset_sample": sample,
                "_reference_scores": reference_scores(scores)}

    def score_samples(self, X, *, random_state=None):
        """Normality score of each row: higher is more normal.

        The quantity chosen by ``anomaly_score`` when the detector was fitted (the
        one ``offset_`` is a threshold on), by default the estimated
        log-likelihood ``log p(x)`` in nats, with the ``n_importance_samples`` of
        that fit. Deterministic for a fitted model, and
        a row's score does not depend on the other rows in the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score. Values outside the training range are allowed.
        random_state : int, RandomState instance or None, default=None
            With ``anomaly_score="log_likelihood"``: ``None`` uses the fitted
            model's posterior draws (one independent set per row); anything else
            seeds another set, to see the Monte-Carlo error, as in
            :meth:`VAETransformer.score_samples`. The other scores draw nothing
            and ignore it.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher for more normal rows, lower for outliers.
        """
        fitted = self._snapshot()
        return anomaly_scores(fitted._model, fitted._validate_X(X), fitted._score_kind,
                              fitted._score_draws, random_state=random_state,
                              verbose=fitted.verbose)

    def score_features(self, X):
        """Each column's share of each row's score: which columns make a row an outlier.

        Entry ``(i, j)`` is the log-density of column ``j`` of row ``i`` given the
        row's latent code, ``log p(x_ij | z)`` in nats, in the units of the data
        as passed (a density of the value itself, not of its standardised form).
        Lower is less likely: a row's lowest entries are the columns that make
        it unusual. What ``z`` is depends on the ``anomaly_score`` the detector
        was fitted with:

        - ``"log_likelihood"``: the average over the posterior p(z | x_i),
          estimated from the same ``n_importance_samples`` per-row draws as
          :meth:`score_samples`, weighted by their self-normalised importance
          weights (those of the importance-weighted bound). A row's entries
          sum to the estimate of ``E[log p(x_i | z)]`` under the posterior, the
          reconstruction part of ``log p(x_i) = E[log p(x_i | z)] -
          KL(p(z | x_i) || p(z))``: :meth:`score_samples` minus the sum is the
          estimate of minus that KL divergence, the part no column accounts for.
        - ``"reconstruction"``: ``z = E[z | x_i]``; a row's entries sum to its
          :meth:`score_samples` (up to float32 rounding).
        - ``"latent"`` scores the code alone and has no share per column: a
          ``ValueError``.

        A categorical column is one entry (the log-probability of its category);
        an image has one entry per pixel and channel, in the order of the row's
        values. A missing entry holds the term it is expected to add, minus the
        entropy of p(x_ij | z) at ``z = E[z | x_obs]``, the term
        :meth:`score_samples` adds for it; it is what a typical value would
        score, so a hole is never what makes a row an outlier.

        Deterministic for a fitted model, and a row's entries do not depend on
        the other rows in the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to explain.

        Returns
        -------
        scores : ndarray or DataFrame of shape (n_samples, ``n_features_in_``)
            float64; a DataFrame with the fitted column names (and the index of
            ``X`` when it is a DataFrame) when the detector was fitted on one.

        Raises
        ------
        ValueError
            For a detector fitted with ``anomaly_score="latent"``.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(200, 3))
        >>> detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=20,
        ...                               random_state=0).fit(X)
        >>> row = np.array([[0.0, 8.0, 0.0]])  # column 1 is far out
        >>> int(np.argmin(detector.score_features(row)[0]))
        1
        """
        fitted = self._snapshot()
        if fitted._score_kind == "latent":
            raise ValueError(
                "score_features splits the score among the columns, but this detector "
                "was fitted with anomaly_score='latent', which scores the latent code "
                "alone: no column has a share of it. Fit with "
                "anomaly_score='log_likelihood' (the default) or 'reconstruction'."
            )
        codes = fitted._validate_X(X)
        scores = feature_scores(fitted._model, codes, fitted._score_kind,
                                fitted._score_draws)
        schema = fitted._model.schema
        if not schema.frame:
            return scores
        return _import_pandas().DataFrame(
            scores, columns=schema.columns, index=X.index if is_dataframe(X) else None)

    def set_threshold(self, X, *, fpr):
        """Set ``offset_`` so that a share ``fpr`` of the clean rows ``X`` is flagged.

        A threshold by false-alarm rate, as Alibi Detect's ``infer_threshold``:
        ``offset_`` becomes the ``fpr`` quantile of ``score_samples(X)``, so
        :meth:`predict` flags about that share of ``X``, and, when new clean
        rows come from the same distribution as ``X`` (they are exchangeable),
        about that share of them. ``X`` should be rows known to be normal that
        the model was not trained on: on the training rows the scores are a
        little higher, so a threshold set there flags more new rows than asked.
        The next ``fit`` (or ``partial_fit``) sets ``offset_`` from
        ``contamination`` again; :func:`skvae.save` keeps the threshold set here.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Clean validation rows. With few rows the quantile is coarse: at
            ``fpr=0.01`` use at least a few hundred.
        fpr : float in (0, 1)
            Target false-positive rate: the share of normal rows flagged.

        Returns
        -------
        self : object
            The detector, with the new ``offset_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAEOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=10,
        ...                               random_state=0).fit(rng.normal(size=(300, 3)))
        >>> X_clean = rng.normal(size=(200, 3))
        >>> float((detector.set_threshold(X_clean, fpr=0.05).predict(X_clean) == -1).mean())
        0.05
        """
        if not (isinstance(fpr, Real) and not isinstance(fpr, bool) and 0 < fpr < 1):
            raise ValueError(
                f"fpr={fpr!r} must be a number strictly between 0 and 1: the share of "
                "normal rows the threshold flags, for example fpr=0.05."
            )
        fitted = self._snapshot()
        scores = fitted.score_samples(X)
        offset = float(np.percentile(scores, 100.0 * fpr))
        # One assignment, from the snapshot: offset_ is a threshold on the scores
        # of the model it was computed with.
        self.__dict__ = {**vars(fitted), "offset_": offset}
        return self

    def p_values(self, X):
        """p-value of each row's score against the scores of the training rows.

        ``(1 + #{training scores <= s}) / (n + 1)`` for a row of score ``s``,
        over the ``n`` training rows' :meth:`score_samples` (a conformal
        p-value: small for rows less likely than nearly every training row).
        The training scores are kept at ``fit``, from every training row (from
        the sample of rows ``partial_fit`` keeps, see ``contamination``); beyond
        10,000 rows, from 10,000 evenly spaced order statistics of them, and
        ``n`` is then 10,000.

        The p-value is uniform on normal rows when they and the training rows
        are exchangeable, which holds only approximately: the training rows
        contain the outliers (their lower tail is heavier, which makes
        p-values larger, conservative), and the model was fitted to them (their
        scores are a little higher than those of new normal rows, which makes
        p-values smaller). For calibrated rates, set the threshold on held-out
        clean rows with :meth:`set_threshold`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to test.

        Returns
        -------
        p_values : ndarray of shape (n_samples,)
            In ``[1 / (n + 1), 1]``: low for outliers.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(300, 3))
        >>> detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=10,
        ...                               random_state=0).fit(X)
        >>> p = detector.p_values(np.array([[0.0, 0.0, 0.0], [9.0, 9.0, 9.0]]))
        >>> bool(p[1] < 0.01 < p[0])
        True
        """
        fitted = self._snapshot()
        if fitted._reference_scores is None:
            raise ValueError(
                "This detector was loaded from a model file saved before skvae kept "
                "the training scores that p-values are computed against. Refit it "
                "(or call partial_fit) to compute p-values."
            )
        return conformal_p_values(fitted._reference_scores, fitted.score_samples(X))

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            Shifted scores; the threshold of :meth:`predict` is 0.
        """
        fitted = self._snapshot()  # scores and offset_ of the same fit
        return fitted.score_samples(X) - fitted.offset_

    def predict(self, X):
        """Label each row as an inlier (+1) or an outlier (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, +1 elsewhere.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over the rows of ``X``: higher is more normal.

        With ``anomaly_score="log_likelihood"`` (the default) it is the mean
        estimated log-likelihood per row, in nats; with the other scores, the
        mean of those.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            ``score_samples(X).mean()``.
        """
        return float(self.score_samples(X).mean())


def anomaly_scores(model, X, kind, n_draws, *, random_state=None, verbose=0):
    """The ``kind`` of normality score of each row of ``X`` under ``model``.

    The Bernoulli likelihood gives rows outside [0, 1] probability zero; a score
    of -inf would be exact but breaks means, plots and thresholds, and clipping
    them, as VAETransformer does, could hide an outlier: they are refused.
    """
    model.check_support(X, clip=False)
    if kind == "log_likelihood":
        return model.log_likelihood(X, n_draws, random_state=random_state, complete=True,
                                    verbose=verbose)
    if kind == "reconstruction":
        return model.reconstruction_log_likelihood(X)
    return model.negative_kl(X)


def feature_scores(model, X, kind, n_draws):
    """The share of each column of ``X`` in its ``kind`` of score under ``model``."""
    model.check_support(X, clip=False)
    if kind == "log_likelihood":
        return model.feature_log_likelihood(X, n_draws)
    return model.reconstruction_feature_log_likelihood(X)


def reference_scores(scores, capacity=MAX_REFERENCE_SCORES):
    """``scores`` sorted, as float64; beyond ``capacity``, that many evenly spaced of them.

    The smallest and the largest are always kept.
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    if len(scores) <= capacity:
        return scores
    return scores[np.round(np.linspace(0, len(scores) - 1, capacity)).astype(np.intp)]


def conformal_p_values(reference, scores):
    """``(1 + #{reference <= s}) / (n + 1)`` for each of ``scores``; ``reference`` sorted."""
    at_or_below = np.searchsorted(reference, scores, side="right")
    return (1.0 + at_or_below) / (len(reference) + 1.0)


def _reference_scores_from_file(value):
    if not (isinstance(value, list) and 1 <= len(value) <= MAX_REFERENCE_SCORES):
        raise ValueError(
            f"training_scores is not a list of 1 to {MAX_REFERENCE_SCORES} numbers.")
    scores = np.array([finite_number(v, "training_scores") for v in value])
    if np.any(np.diff(scores) < 0):
        raise ValueError("training_scores is not sorted in increasing order.")
    return scores


def _score_kind_from_file(value):
    kinds = VAEOutlierDetector._parameter_constraints["anomaly_score"][0].options
    if value not in kinds:
        raise ValueError(f"anomaly_score={value!r} is not one of {sorted(kinds)}.")
    return value


def _score_draws_from_file(value):
    if not (type(value) is int and 1 <= value <= MAX_DRAWS):
        raise ValueError(f"n_importance_samples={value!r} is not in [1, 2**20].")
    return value
