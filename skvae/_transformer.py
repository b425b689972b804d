"""VAETransformer: a variational autoencoder as a scikit-learn transformer."""

from numbers import Integral

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import StrOptions

from ._base import BaseVAE
from ._prior_fitting import fit_mixture_prior
from ._random import spawned_seed


class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseVAE):
    """Variational autoencoder for dimensionality reduction, generation and density.

    An encoder network maps each row to a Gaussian posterior q(z | x) over
    ``n_components`` latent dimensions; a mirrored decoder maps latent codes back to
    the parameters of a likelihood p(x | z). Training maximises the evidence lower
    bound ``E_q[log p(x | z)] - beta * KL(q(z | x) || N(0, I))`` with Adam on
    minibatches, using the reparameterised sample ``z = mu + sigma * eps``.

    ``transform`` returns the posterior mean, so it is deterministic and a row's
    code does not depend on the other rows passed with it.

    Tables come as they are: a pandas DataFrame with numeric, string,
    categorical and boolean columns, and missing values (``np.nan``, ``None``,
    ``pd.NA``), needs no preprocessing. Each column gets its own likelihood
    (see ``likelihood`` and ``categorical_features``), a missing entry is left
    out of the reconstruction term, and on data with missing values the encoder
    also reads which entries are observed (Mattei and Frellsen, 2019), so
    :meth:`transform` encodes incomplete rows and :meth:`score_samples` of an
    incomplete row estimates the likelihood of its observed entries. Fitted on a
    DataFrame, :meth:`sample` and :meth:`inverse_transform` return DataFrames
    with the same columns, dtypes and categories.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the latent space. 2 makes the latent space easy to plot;
        use more (8-16) for features that feed a classifier.
    hidden_layer_sizes : array-like of int or "auto", default="auto"
        Widths of the encoder's hidden layers; the decoder uses them in reverse.
        ``"auto"``: (512, 256) for rows of 256 values or more (images such as
        MNIST), (256, 128) for narrower rows (tables, small images such as the
        8 x 8 digits): a third of the weights there, and as good a fit of the
        digits and real tables (``benchmarks/results_defaults.md``). Columns
        are counted as the network reads them (a categorical column counts once
        per level). Used with ``architecture="dense"`` only; the conv network
        takes its widths from ``conv_channels`` and ``conv_dense_width``.
    architecture : {"dense", "conv"}, default="dense"
        Network type: multilayer perceptrons for tabular data, or convolutional
        networks for images (rows of ``X`` stay flat; see ``image_shape``).
    image_shape : tuple of int or None, default=None
        ``(channels, height, width)`` of each image, or ``(height, width)`` for
        one channel. Rows of ``X`` stay flat: each is one image flattened in that
        order, channels first (``images.reshape(n, -1)``), and its size must be
        ``channels * height * width``. ``None`` reads each row as a 1 x 1 x
        ``n_features`` image, so ``architecture="conv"`` accepts any data (as a
        1-D convolution along the row); pass the real shape for images. With
        ``architecture="dense"`` it is only checked and stored in
        ``image_shape_``, where :mod:`skvae.plotting` finds it.
    conv_channels : array-like of int, default=(32, 64)
        With ``architecture="conv"``: output channels of the encoder's 3x3,
        stride-2 convolutions, each of which halves the height and width
        (rounding up). The decoder mirrors them with stride-2 transposed
        convolutions, each undoing one encoder layer, the last giving the
        likelihood's parameters per pixel. The default is the classic MNIST
        VAE's encoder with a wider dense layer: Conv(32) -> Conv(64) ->
        Dense(256) -> latent; Dense(7*7*64) -> ConvT(32) -> ConvT(1) for
        28 x 28 images. Model files written before this decoder keep the Keras
        example's, ConvT(64) -> ConvT(32) -> a stride-1 ConvT(1), twice as slow.
    conv_dense_width : int, default=256
        With ``architecture="conv"``: width of the dense layer between the
        encoder's last convolution and the latent mean and log-variance. The
        Keras example's 16 trains badly: most of its ReLU units die in the
        first steps and every image then decodes to an average digit. 256 fitted
        MNIST as well as the 512 of before (which model files written with it
        keep) at the same epochs, at a fifth less CPU time an epoch; 128 fell
        1.7 nats behind (``benchmarks/results_conv_cost.md``).
    activation : {"relu", "leaky_relu", "elu", "gelu", "tanh", "logistic", \
"identity"}, default="relu"
        Activation after every hidden layer.
    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        Distribution of the data given the latent code. ``"bernoulli"`` models
        data in [0, 1] (binary data, images scaled to [0, 1]); ``"gaussian"``
        models real values with a learned variance per feature, after
        standardising each feature internally; the variances train at 10 times
        the learning rate, since Adam moves each weight by about its rate per
        step and at the network's rate they had not settled by the end of a
        small table's fit. ``"auto"`` picks ``"bernoulli"``
        for binary data (every value 0 or 1, rounding errors ignored) and
        ``"gaussian"`` otherwise, so that every cross-validation fold of the same
        data gets the same choice; the choice is stored in ``likelihood_``. Pass
        ``"bernoulli"`` for grey-level images, the usual image VAE. A Bernoulli
        model encodes and scores values outside [0, 1] as the nearest bound,
        with a ``UserWarning``.
        In a table with categorical columns, ``"auto"`` chooses per numeric
        column (Bernoulli for 0/1 columns) and ``likelihood_`` is ``"mixed"``.
    categorical_features : "from_dtype", array-like or None, default="from_dtype"
        Which columns are categorical, each modelled by a softmax over its
        categories (sorted, or in the order of a pandas ``category`` dtype).
        ``"from_dtype"``, as in
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`: the
        ``category``, ``object``, ``string`` and ``bool`` columns of a
        DataFrame, and the columns of an object array that hold strings. Or a
        list of column names or indices, or a boolean mask. None: every column
        holds numbers. A categorical column with more than 1,000 levels, or more
        than 50 levels most of them unique to single rows (an identifier), is
        refused.
    handle_unknown : {"error", "ignore"}, default="error"
        A category that ``fit`` never saw, met by :meth:`transform` or
        :meth:`score_samples`: an error naming the column and the value, or
        (``"ignore"``) a missing entry, as
        :class:`~sklearn.preprocessing.OneHotEncoder` does.
    numeric_transform : {"auto", "quantile", "none"}, default="auto"
        How real-valued (Gaussian) columns are shaped before the network models
        them. ``"quantile"``: each gets a monotone, piecewise-linear map that
        sends its training quantiles (up to 1,000, one per 5 rows, ties merged) to the standard
        normal's, continued linearly beyond the training range, as
        :class:`~sklearn.preprocessing.QuantileTransformer` with
        ``output_distribution="normal"`` does; then the standardisation. A
        skewed price, a two-humped wage or a count piled up at zero is then
        modelled, and sampled, with its own shape rather than as a bell. Its
        log-slope enters every likelihood (a change of variables), so
        :meth:`score_samples` stays a log-density of the values as passed.
        ``"none"``: standardisation only, the model of files written before
        this parameter. ``"auto"``: ``"quantile"`` for the numeric columns of
        a table with categorical columns (whose columns are each modelled on
        their own), ``"none"`` for arrays and frames of numbers only (images,
        sensor channels: one model for all their values). The default by
        measurement (``benchmarks/results_synthetic.md``, two seeds): on the
        four real tables there a classifier tells samples from real rows less
        well (mean C2ST ROC-AUC 0.760 against 0.895 without the maps; slid
        0.913 to 0.592), and the held-out log-likelihood rises by 1.9 nats per
        row on average (penguins, without skewed columns, is unchanged).
    beta : float, default=1.0
        Weight of the KL term. 1 is the standard VAE and gives a proper bound on
        the log-likelihood; larger values trade reconstruction for a smoother
        latent space.
    batch_size : int or "auto", default="auto"
        Rows per minibatch; clipped to the number of training rows. ``"auto"``
        is 128 for the dense network and 64 for the conv network: at its
        ``"auto"`` rate, 64 rows fitted MNIST-8k 1.4 nats better in 10 epochs
        than the 32 rows at 1e-3 of before (512 dense units), at 0.67x the
        CPU time of an epoch; 128 rows fell 4 nats behind even at 4e-3
        (``benchmarks/results_conv_cost.md``).
    learning_rate_init : float or "auto", default="auto"
        Adam's (peak) step size. ``"auto"`` is 2e-3 for the dense network and
        3e-3 for the conv network at its batches of 64, times up to 2 when
        ``max_iter="auto"`` plans fewer than 3,200 steps (1e-3 at batches of 32
        before: the schedule's warm-up keeps the wide ReLU layer alive at the
        larger steps; 2e-3 was 0.7 nats behind 3e-3 on MNIST-8k, mean of two
        seeds). With the cosine schedule, 2e-3 reached on MNIST-8k in 50 epochs the
        held-out likelihood that 1e-3 at a constant rate reached in 200 (see
        :doc:`/user_guide/choosing_parameters`).
    learning_rate : {"cosine", "constant"}, default="cosine"
        Learning-rate schedule over the ``max_iter`` epochs. ``"cosine"`` warms
        up over the first 5% of the steps, then decays to zero along a half
        cosine, so a run that uses all its epochs ends converged and does not
        warn; ``"constant"`` keeps ``learning_rate_init`` throughout and warns
        with ``ConvergenceWarning`` when ``max_iter`` cuts it off
        (``learning_rate="constant", learning_rate_init=1e-3, max_iter=200,
        hidden_layer_sizes=(512, 256)`` are skvae's defaults before 0.2).
        ``partial_fit`` always steps at ``learning_rate_init``.
    max_iter : int or "auto", default="auto"
        Maximum number of epochs (passes over the training data). ``"auto"``
        sizes the budget by the data: about 3,200 optimizer steps, within 20 to
        80 epochs (51 epochs for 8,000 rows at batch 128, 80 for fewer than
        about 5,000); when the cap shortens the plan, an ``"auto"``
        ``learning_rate_init`` grows in proportion, up to twice its value.
        ``n_iter_`` is the number run: the stopping rule can end a run sooner,
        once its loss is flat.
    tol : float, default=1e-4
        Minimum improvement, in nats per row, that counts as progress. Without
        early stopping, training stops when the mean loss of the last
        ``n_iter_no_change`` epochs is not ``tol`` below the mean of the
        ``n_iter_no_change`` epochs before (means, because a VAE's loss is noisy
        from epoch to epoch); with it, when the validation ELBO has not beaten its
        best by ``tol`` for ``n_iter_no_change`` epochs.
    early_stopping : bool or "auto", default=False
        Hold out ``validation_fraction`` of the data, stop when its ELBO has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, and restore the
        weights of the best epoch. ``"auto"`` does so when there are at least 100
        rows.
    validation_fraction : float, default=0.1
        Fraction of the training rows held out with ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement before training stops.
    n_importance_samples : int, default=50
        Posterior samples per row in :meth:`score_samples`, drawn independently
        for each row. 1 gives the ELBO; more give a tighter estimate of log p(x),
        with a Monte-Carlo error falling about as one over their square root, at
        proportionally more cost.
    n_training_samples : int, default=1
        Posterior draws per row in the training objective. 1 trains on the
        ELBO, the standard VAE; K > 1 on the importance-weighted bound with K
        draws (IWAE; MIWAE on incomplete rows), a tighter bound that uses more
        of the latent space, at about K times the decoder's cost per step. It
        has no KL weight, so it needs ``beta=1``. ``loss_curve_`` and
        ``validation_scores_`` then report that bound.
    sampling_prior : {"mixture", "standard"}, default="mixture"
        The latent prior of the fitted model. ``"standard"`` is N(0, I), the
        prior the network is trained against. ``"mixture"`` replaces it after
        training by a 10-component Gaussian mixture
        (:class:`~sklearn.mixture.GaussianMixture`, seeded from
        ``random_state``; full covariances up to 32 latent dimensions, diagonal
        beyond, where full ones cost seconds) fitted to posterior draws of the training rows' codes
        (5 per row, at most 20,000 in all): ex-post density estimation (Ghosh
        et al., 2020). The encoder's codes do not fill N(0, I), and decoding
        draws from its empty regions gives rows unlike the data; the mixture
        puts :meth:`sample`'s draws where the codes are. It is the model's
        prior, not only the sampler's: :meth:`score_samples`, ``sample(given=...)``
        and :meth:`sample` all use it, so scores remain an importance-weighted
        bound on log p(x) for the model with that prior. The default by
        measurement (``benchmarks/results_synthetic.md``): on the four real
        tables there, a classifier tells its samples from real rows less well
        than with N(0, I) on every table (mean C2ST ROC-AUC 0.887 against
        0.905), and the held-out log-likelihood is higher on every table. The mixture is
        refitted at the end of every :meth:`fit` and :meth:`partial_fit` call,
        on that call's rows (so with ``warm_start`` or ``partial_fit`` it
        follows the network), and is kept in model files; ``sampling_prior_``
        says which prior the fitted model has (``set_params`` after fitting
        changes it at the next fit only). :meth:`transform` and the network
        are the same under either prior.
    device : str or torch.device, default="auto"
        Where to train and compute: ``"auto"`` uses CUDA when available, else the
        CPU. A model fitted on a GPU can be unpickled and used on a CPU-only
        machine.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the minibatch order, the training noise and the
        per-row draws of :meth:`score_samples`. Pass an int for reproducible
        results; fitting never changes numpy's or torch's global random state.
    verbose : int, default=0
        0 prints nothing. 1 shows a progress bar (tqdm's, in a terminal or a
        notebook) over the epochs of :meth:`fit`, with the loss, the validation
        score and the time left, and over the row blocks of long
        :meth:`score_samples` calls. 2 prints one line per epoch instead.
    warm_start : bool, default=False
        Continue training the fitted network on the next call to :meth:`fit`
        instead of starting again; the likelihood and scaling of the first fit are
        kept.

    Attributes
    ----------
    likelihood_ : str
        The likelihood used: ``"bernoulli"``, ``"gaussian"``, or ``"mixed"`` for
        a table with categorical columns (each column then has its own).
    n_components_ : int
        Latent dimensions of the fitted network (``n_components`` when it was
        fitted; ``set_params`` after fitting does not change the network).
    module_ : torch.nn.Module
        The trained network (encoder, decoder and likelihood).
    device_ : torch.device
        The device the model was trained on.
    image_shape_ : tuple of int
        ``(channels, height, width)`` that the network reads each row as
        (``(1, 1, n_features_in_)`` when ``image_shape`` is None).
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Training loss (negative ELBO, nats per row of the data as passed) after
        each epoch.
    best_loss_ : float
        Lowest value in ``loss_curve_``.
    validation_scores_ : list of float or None
        Held-out ELBO per row after each epoch with ``early_stopping``, else None.
    best_validation_score_ : float or None
        Highest value in ``validation_scores_``, whose weights are kept.
    sampling_prior_ : str
        The prior of the fitted model, ``"standard"`` or ``"mixture"`` (see
        ``sampling_prior``); model files written before the mixture load as
        ``"standard"``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction with a Gaussian
        density (probabilistic PCA).
    sklearn.mixture.GaussianMixture : Density estimation with a mixture of
        Gaussians.

    References
    ----------
    Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.

    Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance Weighted
    Autoencoders. ICLR.

    Ghosh, P., Sajjadi, M. S. M., Vergari, A., Black, M. and Schölkopf, B.
    (2020). From Variational to Deterministic Autoencoders. ICLR.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.exceptions import ConvergenceWarning
    >>> from skvae import VAETransformer
    >>> X = load_digits().data / 16.0  # grey levels in [0, 1]
    >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(64,), max_iter=5,
    ...                      likelihood="bernoulli", random_state=0)
    >>> with warnings.catch_warnings():  # 5 epochs: a demonstration, not a fit
    ...     warnings.simplefilter("ignore", ConvergenceWarning)
    ...     Z = vae.fit_transform(X)
    >>> vae.likelihood_, Z.shape
    ('bernoulli', (1797, 2))
    >>> vae.inverse_transform(Z[:3]).shape, vae.sample(4, random_state=0).shape
    ((3, 64), (4, 64))
    >>> bool(vae.score(X[:100]) < 0)
    True
    """

    # The cosine schedule's peak rate for "auto" (the base class's is the
    # constant-schedule 1e-3 the imputer keeps). The conv network's batches of
    # 64 at 3e-3 beat the base class's 32 at 1e-3 on MNIST-8k in 10 epochs, at
    # 0.67x the CPU time of an epoch (benchmarks/results_conv_cost.md, issue 20).
    _AUTO_BATCH_SIZE = {"dense": 128, "conv": 64}
    _AUTO_LEARNING_RATE = {"dense": 2e-3, "conv": 3e-3}
    # The variances learn 10 times faster than the network: at the network's
    # rate, penguins' fits ended with variances near 0.65 of the data's when
    # the species leave a quarter of it, and samples given a species spread
    # 1.5-2 times as wide as its real rows; with 10 times, diamonds' samples
    # went from C2ST 0.93 to 0.77 (benchmarks/results_synthetic.md). The
    # detector already steps at 2e-2; the imputer was not measured with it.
    _VARIANCE_RATE_FACTOR = 10.0
    _parameter_constraints = {
        **BaseVAE._parameter_constraints,
        "sampling_prior": [StrOptions({"standard", "mixture"})],
        "numeric_transform": [StrOptions({"auto", "quantile", "none"})],
    }
    # Files written before the mixture prior have N(0, I), and refit so.
    _parameters_newer_than_files = {**BaseVAE._parameters_newer_than_files,
                                    "sampling_prior": "standard",
                                    # ... and before the quantile maps, none.
                                    "numeric_transform": "none"}

    def __init__(
        self,
        *,
        n_components=2,
        hidden_layer_sizes="auto",
        architecture="dense",
        image_shape=None,
        conv_channels=(32, 64),
        conv_dense_width=256,
        activation="relu",
        likelihood="auto",
        categorical_features="from_dtype",
        handle_unknown="error",
        numeric_transform="auto",
        beta=1.0,
        batch_size="auto",
        learning_rate="cosine",
        learning_rate_init="auto",
        max_iter="auto",
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        n_importance_samples=50,
        n_training_samples=1,
        sampling_prior="mixture",
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        # Only stores the arguments, as scikit-learn requires.
        vars(self).update((name, value) for name, value in locals().items()
                          if name != "self")

    def transform(self, X):
        """Encode ``X`` as the means of its latent posteriors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means E[z | x], in the floating dtype of ``X``.
        """
        return self.encode(X)

    def inverse_transform(self, X):
        """Decode latent codes to the mean of the likelihood, in data units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes, for example the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, ``n_features_in_``)
            E[x | z] for each code: probabilities for the Bernoulli likelihood,
            means for the Gaussian. A column with a quantile map (see
            ``numeric_transform``) gets the mean of its mapped value, mapped
            back: nearer its conditional median than its mean when it is skewed.
        """
        return self.decode(X)

    def interpolate(self, X_start, X_end, n_steps=8):
        """Decode points on the straight line between two rows' latent codes.

        Each row of ``X_start`` and the row of ``X_end`` at the same position
        are encoded (posterior means, as :meth:`transform`); ``n_steps`` points
        evenly spaced from the first code to the second, both included, are
        decoded to the likelihood's means (as :meth:`inverse_transform`). The
        walk between two images that every VAE tutorial shows:
        :class:`~skvae.plotting.InterpolationDisplay` draws it.

        Parameters
        ----------
        X_start, X_end : array-like or DataFrame of shape (n_pairs, n_features)
            The rows to start and end at, in the format of the training data.
        n_steps : int, default=8
            Points per line, at least 2.

        Returns
        -------
        X_path : ndarray or DataFrame of shape (n_pairs * n_steps, n_features)
            The decoded points, pair by pair, in the format of the training data.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAETransformer
        >>> X = np.random.RandomState(0).normal(size=(100, 3))
        >>> vae = VAETransformer(hidden_layer_sizes=(8,), tol=1.0, random_state=0).fit(X)
        >>> vae.interpolate(X[:1], X[1:2], n_steps=5).shape
        (5, 3)
        """
        if not isinstance(n_steps, Integral) or isinstance(n_steps, bool) or n_steps < 2:
            raise ValueError(f"n_steps={n_steps!r} must be an integer of at least 2.")
        fitted = self._snapshot()
        start, end = fitted.transform(X_start), fitted.transform(X_end)
        if start.shape != end.shape:
            raise ValueError(
                f"X_start has {start.shape[0]} rows and X_end {end.shape[0]}: pass one "
                "row of each per line."
            )
        weights = np.linspace(0.0, 1.0, n_steps, dtype=start.dtype)[None, :, None]
        path = (1 - weights) * start[:, None, :] + weights * end[:, None, :]
        return fitted.inverse_transform(path.reshape(-1, start.shape[1]))

    def _fit_extras(self, model, X, *, warm, one_pass):
        # Fitted on this call's rows, after its training: the prior of the
        # network as it now is (see sampling_prior).
        if self.sampling_prior == "standard":
            return {}
        prior = fit_mixture_prior(*model.posteriors(X), spawned_seed(model.noise_seed, 0))
        return {"_model": model.with_prior(prior)}

    @property
    def sampling_prior_(self):
        """The fitted model's prior: ``"standard"`` (N(0, I)) or ``"mixture"``."""
        return self._snapshot()._model.prior_name

    @property
    def _n_features_out(self):
        # The fitted network's latent size, not the parameter: set_params after
        # fit must not make get_feature_names_out disagree with transform.
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
