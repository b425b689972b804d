"""The fitted model: what ``fit`` learned, and every computation on rows.

:class:`FittedVAE` is frozen. It holds the table schema (the user's columns), the
data space (likelihood and scaling), the network's spec and module, the seed of
the per-row scoring noise and the device it was fitted on, and it does every row
computation the estimators expose: encoding, decoding, sampling, the
log-likelihood, the reconstruction and KL terms, and conditional draws for
imputation. It is built by :func:`skvae._fitting.fit_model` or from a model file
(:meth:`FittedVAE.from_state`), which checks that a loaded model works.

Inputs are rows already validated by the estimator: float arrays of table codes
(numbers as they are, a category as its index, NaN for a hole; see
:mod:`skvae._tables`) or, for :meth:`FittedVAE.decode`, latent points.

Knows torch and numpy, not scikit-learn.
"""

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ._data import DataSpace, has_missing, output_dtype
from ._devices import recorded_device, usable_device
from ._draws import row_keys, standard_normal_per_row
from ._inference import (
    CHUNK_ROWS,
    CONV_CHUNK_DECODER_ROWS,
    importance_chunk_rows,
    map_in_fixed_chunks,
    map_rows,
)
from ._losses import kl_divergence_standard_normal, standard_normal_log_prob
from ._networks import NetworkSpec
from ._priors import PRIOR_TENSORS, MixturePrior
from ._random import SEED_LIMIT, seed_from, spawned_seed
from ._tables import TableSchema
from ._threads import chosen_threads

# Posterior draws per row when a loaded model is checked (see check_works): a
# file's n_importance_samples (up to MAX_DRAWS) must not make loading cost more
# than the file's size.
_CHECK_DRAWS = 4


@dataclass(frozen=True, eq=False)
class FittedVAE:
    """A fitted VAE: its data layer, its network and its noise, and what they compute.

    Parameters
    ----------
    schema : TableSchema
        The user's columns: which are categories, and how rows come back.
    data_space : DataSpace
        The likelihood of each column and its scaling.
    spec : NetworkSpec
        The network's architecture, from which ``module`` was built.
    module : skvae._networks.VAE
        The trained network. Never changed once the model is built: training
        works on a copy.
    noise_seed : int
        Seed of the per-row posterior draws of :meth:`log_likelihood` and of
        imputation.
    device : torch.device
        Where the model was fitted; it runs there when that device exists here,
        else on the CPU.
    owner : str
        The estimator's class name, for error messages.
    prior : MixturePrior or None
        The latent prior p(z): None for N(0, I), the prior the network was
        trained with, or a Gaussian mixture fitted to the training rows' codes
        after training (see :mod:`skvae._priors`). Sampling draws z from it and
        every importance-weighted computation (the log-likelihood, conditional
        draws and means) uses its density, so they are those of one model.

    Two models are equal only when they are the same object: the module's
    weights are not compared.
    """

    schema: TableSchema
    data_space: DataSpace
    spec: NetworkSpec
    module: torch.nn.Module
    noise_seed: int
    device: torch.device
    owner: str = field(default="estimator", compare=False)
    prior: MixturePrior = None

    @property
    def log_prior(self):
        """log p(z) of the model's prior, as a function of a latent tensor."""
        return standard_normal_log_prob if self.prior is None else self.prior.log_prob

    @property
    def prior_name(self):
        """``"standard"`` for N(0, I), ``"mixture"`` for a fitted mixture."""
        return "standard" if self.prior is None else "mixture"

    @property
    def n_components(self):
        return self.spec.n_components

    @property
    def device_here(self):
        """The device the model computes on: ``device``, or the CPU where it is missing."""
        return usable_device(self.device)

    # ------------------------------------------------------------ row maps

    def _map_rows(self, function, X, chunk_rows, *, verbose=0, finish=None):
        """``function`` of the scaled rows of ``X`` (table codes), as a float64 array."""
        device = self.device_here
        with self._threads_for(X.shape[0], chunk_rows) as threads:
            return map_rows(
                lambda x: threads.run(function, x), X,
                lambda block: self.data_space.to_tensor(block, device),
                chunk_rows, input_name="X", owner=self.owner, verbose=verbose,
                finish=finish,
            )

    def _threads_for(self, n_rows, chunk_rows):
        """The thread chooser for ``n_rows`` rows in chunks of ``chunk_rows``."""
        return chosen_threads(self.module, n_calls=-(-n_rows // chunk_rows),
                              device=self.device_here)

    def _importance_rows(self, n_draws):
        """Rows per chunk when each row is decoded ``n_draws`` times (see ``_inference``)."""
        if self.spec.architecture == "conv":
            return importance_chunk_rows(n_draws, CONV_CHUNK_DECODER_ROWS)
        return importance_chunk_rows(n_draws)

    def row_noise(self, x, seed, n_draws):
        """Standard-normal posterior draws of shape (n_draws, rows, n_components).

        A function of each row's content and ``seed`` only: the same row gets the
        same draws in any batch, and different rows independent ones.
        """
        return standard_normal_per_row(row_keys(x, seed), n_draws, self.n_components)

    def check_support(self, X, *, clip):
        """Refuse values the likelihood cannot model, or with ``clip`` warn about them."""
        self.data_space.check_support(X, estimator_name=self.owner, clip=clip)

    # ------------------------------------------------------------ encoding

    def encode(self, X):
        """Posterior means ``E[z | x]`` of the rows ``X``, float32 for float32 rows."""
        self.check_support(X, clip=True)
        return self._encode(X)

    def _encode(self, X):
        means = self._map_rows(lambda x: self.module.encode(x)[0], X, CHUNK_ROWS)
        return means.astype(output_dtype(X), copy=False)

    def decode(self, Z):
        """Decoder means ``E[x | z]`` of the latent points ``Z``, in the user's format."""
        return self.schema.to_user(self.decode_rows(Z), dtype=Z.dtype)

    def decode_rows(self, Z):
        """Decoder means of the latent points ``Z`` as table codes in data units."""
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but {self.owner} has "
                f"{self.n_components} latent dimensions. Pass codes produced by "
                "transform, one column per latent dimension."
            )
        device = self.device_here

        def to_tensor(block):
            # Points beyond float32 become inf; map_rows reports the row.
            with np.errstate(over="ignore"):
                block = np.ascontiguousarray(block, dtype=np.float32)
            if not block.flags.writeable:
                # Read-only float32 codes (a memmap opened "r", a frozen array)
                # come through unchanged, and torch warns on read-only memory.
                block = block.copy()
            return torch.as_tensor(block, device=device)

        with self._threads_for(Z.shape[0], CHUNK_ROWS) as threads:
            # Undone block by block into an output of Z's dtype: no temporary the
            # size of the result.
            return map_rows(
                lambda z: threads.run(
                    lambda chunk: self.module.likelihood.mean(self.module.decoder(chunk)), z),
                Z, to_tensor, CHUNK_ROWS, input_name="Z", owner=self.owner,
                dtype=Z.dtype if self.data_space.likelihood != "mixed" else np.float64,
                finish=self.data_space.to_data,
            )

    def posteriors(self, X):
        """Means and log-variances of q(z | x) of the rows ``X`` (table codes), float64."""
        both = self._map_rows(lambda x: torch.cat(self.module.encode(x), dim=-1), X,
                              CHUNK_ROWS)
        return both[:, :self.n_components], both[:, self.n_components:]

    def with_prior(self, prior):
        """This model with the latent prior ``prior`` (a MixturePrior, or None for N(0, I))."""
        return replace(self, prior=prior)

    # ---------------------------------------------------------- generation

    def sample(self, n_samples, seed, *, return_mean=False):
        """``n_samples`` rows drawn from the model, in the user's format."""
        return self.schema.to_user(self.sample_rows(n_samples, seed, return_mean=return_mean))

    def _prior_draws(self, n_samples, generator):
        """``n_samples`` latent points from the model's prior (float32, CPU)."""
        if self.prior is None:
            return torch.randn((n_samples, self.n_components), generator=generator)
        return self.prior.sample(n_samples, generator)

    def sample_rows(self, n_samples, seed, *, return_mean=False):
        """Rows drawn from the model (or their decoder means) as table codes.

        Gaussian columns are clipped to their observed range and whole-number
        ones rounded (:meth:`DataSpace.into_support`).
        """
        generator = torch.Generator().manual_seed(seed)
        z = self._prior_draws(n_samples, generator)
        with torch.no_grad():
            params = map_in_fixed_chunks(
                self.module.decoder, z.to(self.device_here), CHUNK_ROWS
            ).cpu()
            # The draws come from a CPU generator, so they match on every device.
            likelihood = copy.deepcopy(self.module.likelihood).cpu()
            if return_mean:
                values = likelihood.mean(params)
            else:
                values = likelihood.sample(params, generator=generator)
        samples = self.data_space.to_data(values.numpy())
        if not np.all(np.isfinite(samples)):
            raise ValueError(
                f"{self.owner} generated NaN or infinite values: its decoder "
                "or scaling overflows float64. Refit the model (on rescaled data)."
            )
        return self.data_space.into_support(samples)

    def sample_given(self, X, n_draws, seed, *, return_mean=False):
        """The rows ``X`` (table codes) with their holes drawn from p(x_mis | x_obs).

        Observed entries are kept. Each row gets draws of its own from
        generators seeded by ``seed``, so identical given rows get independent
        samples (unlike imputation, whose draws are keyed by the row's content).

        Of the ``n_draws`` resampled, half come from the prior rather than the
        encoder's posterior (:func:`~skvae._networks.defensive_log_proposal`):
        the encoder reads a row holding only a category as one of average
        values elsewhere, and its posterior can miss p(z | x_obs) by far. On
        penguins given the species, 50 posterior draws left the species'
        column means up to 0.5 standard deviations off where the model's own
        samples of that species were 0.22 off.
        """
        generator = torch.Generator(device=self.device_here).manual_seed(seed)
        prior_generator = torch.Generator().manual_seed(spawned_seed(seed, 1))
        n_prior = n_draws // 2

        def draw(x):
            noise = torch.randn((n_draws - n_prior, x.shape[0], self.n_components),
                                generator=generator, device=x.device)
            prior_z = None
            if n_prior:
                prior_z = self._prior_draws(n_prior * x.shape[0], prior_generator).reshape(
                    n_prior, x.shape[0], self.n_components).to(x.device)
            if return_mean:
                return self.module.conditional_mean(x, noise, self.log_prior, prior_z)
            return self.module.conditional_draw(x, noise, generator, self.log_prior, prior_z)

        values = self.data_space.to_data(
            self._map_rows(draw, X, self._importance_rows(n_draws)))
        missing = np.isnan(X)
        filled = np.where(missing, self.data_space.into_support(values), X)
        if not np.all(np.isfinite(filled)):
            raise ValueError(
                f"{self.owner} generated NaN or infinite values: its decoder "
                "or scaling overflows float64. Refit the model (on rescaled data)."
            )
        return self.schema.to_user(filled)

    # ------------------------------------------------------------- scoring

    def log_likelihood(self, X, n_draws, *, random_state=None, complete=False, verbose=0):
        """Importance-weighted estimate of log p(x_obs) of each row, in data units.

        ``random_state`` None uses the model's own per-row draws; anything else
        seeds another independent set. With ``complete``, rows with missing
        entries get the expected log-likelihood of those entries added (see
        :meth:`complete_missing`).
        """
        seed = self.noise_seed if random_state is None else seed_from(random_state)
        log_px = self._map_rows(
            lambda x: self.module.log_likelihood(x, self.row_noise(x, seed, n_draws),
                                                 self.log_prior),
            X, self._importance_rows(n_draws), verbose=verbose,
        )
        if complete:
            return self.complete_missing(log_px, X)
        log_px -= self.data_space.log_abs_det_of(X)
        return log_px

    def reconstruction_log_likelihood(self, X):
        """log p(x | z = E[z | x]) of each row, completed for holes, in data units."""
        values = self._map_rows(self.module.reconstruction_log_prob, X, CHUNK_ROWS)
        return self.complete_missing(values, X)

    def feature_log_likelihood(self, X, n_draws):
        """Each column's term of the posterior's reconstruction log-likelihood, in data units.

        Entry (i, j) is ``E[log p(x_ij | z)]`` under the posterior p(z | x_i),
        estimated from the model's own ``n_draws`` per-row draws with their
        self-normalised importance weights; a missing entry holds its expected
        term, as :meth:`complete_missing` adds it. One column per user column
        (a categorical column is one). A row's entries sum to the
        importance-weighted estimate of ``E[log p(x | z)]``, completed for
        holes, in data units.
        """
        seed = self.noise_seed

        def terms(x):
            return self.module.posterior_feature_terms(
                x, self.row_noise(x, seed, n_draws), self.log_prior)

        return self.data_space.column_terms_to_data(
            self._map_rows(terms, X, self._importance_rows(n_draws)), X)

    def reconstruction_feature_log_likelihood(self, X):
        """Each column's term of :meth:`reconstruction_log_likelihood`: its rows' sums."""
        return self.data_space.column_terms_to_data(
            self._map_rows(self.module.reconstruction_feature_terms, X, CHUNK_ROWS), X)

    def negative_kl(self, X):
        """-KL(q(z | x) || N(0, I)) of each row: how typical its latent code is.

        Against N(0, I), the prior of training, whatever ``prior`` is (only the
        outlier detector uses it, and it has no other prior).
        """

        def negative_kl(x):
            mean, log_variance = self.module.encode(x)
            return -kl_divergence_standard_normal(mean, log_variance)

        return self._map_rows(negative_kl, X, CHUNK_ROWS)

    def complete_missing(self, log_px_scaled, X):
        """Scores of the scaled data, completed for missing entries, in data units.

        A missing entry adds the expected log-density of its column under the
        model given the row's code, ``-H(p(x_j | z = E[z | x]))``, so a row does
        not look likelier for having fewer terms. In data units this leaves the
        scaling's full log-determinant to subtract, as for a complete row (a
        missing entry of a quantile-mapped column counts its map's expected
        log-slope, :meth:`DataSpace.complete_log_abs_det_of`).
        """
        if has_missing(X):
            log_px_scaled -= self._map_rows(self.module.missing_entropy, X, CHUNK_ROWS)
        log_px_scaled -= self.data_space.complete_log_abs_det_of(X)
        return log_px_scaled

    # ---------------------------------------------------------- imputation

    def impute_rows(self, X, n_draws, *, draw_seed=None):
        """The rows ``X`` (table codes) filled from p(x | x_obs), everywhere.

        ``draw_seed`` None: the importance-weighted conditional mean, from the
        model's own per-row draws. An int: one joint draw per row by sampling
        importance resampling, every random number from that seed.
        """
        if draw_seed is None:
            def impute(x):
                return self.module.conditional_mean(
                    x, self.row_noise(x, self.noise_seed, n_draws), self.log_prior)
        else:
            generator = torch.Generator(device=self.device_here).manual_seed(draw_seed)

            def impute(x):
                return self.module.conditional_draw(
                    x, self.row_noise(x, draw_seed, n_draws), generator, self.log_prior)

        values = self._map_rows(impute, X, self._importance_rows(n_draws))
        return self.data_space.to_data(values)

    # --------------------------------------------------------- persistence

    def to_state(self):
        """What the model file holds: JSON-ready entries, and the weights on the CPU."""
        state = {
            "table_schema": self.schema.get_state(),
            "data_space": self.data_space.get_state(),
            "network": self.spec.to_dict(),
            "device": str(self.device),
            "noise_seed": self.noise_seed,
        }
        weights = {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in self.module.state_dict().items()
        }
        if self.prior is not None:
            weights.update(self.prior.to_tensors())
        return state, weights

    @classmethod
    def from_state(cls, state, weights, n_features, *, owner="estimator"):
        """The model :meth:`to_state` describes, every entry checked, and checked to work.

        Raises
        ------
        ValueError
            Naming the entry that is missing, of the wrong type or inconsistent,
            or saying that the model they describe does not work.
        """
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
        if not (type(seed) is int and 0 <= seed < SEED_LIMIT):
            raise ValueError(f"noise_seed={seed!r} is not an integer in [0, 2**32).")
        device = recorded_device(state["device"])
        # A file without the prior's entries (all files before it) has N(0, I).
        prior = MixturePrior.from_tensors(weights, spec.n_components)
        network_weights = {k: v for k, v in weights.items() if k not in PRIOR_TENSORS}
        module = spec.build_with_weights(network_weights).to(usable_device(device))
        model = cls(schema, data_space, spec, module, seed, device, owner, prior)
        model.check_works()
        return model

    def check_works(self):
        """Raise ``ValueError`` unless every computation gives finite values on a typical row.

        Each entry of a file can be valid on its own while together they make a
        model that overflows (huge weights, a tiny scale); a file that loads must
        be a model that works.
        """
        typical = self.data_space.typical_row()
        origin = np.zeros((1, self.n_components))
        self.schema.check_centre(typical)
        try:
            outputs = [
                self._encode(typical), self.decode_rows(origin),
                self.log_likelihood(typical, _CHECK_DRAWS),
                self.sample_rows(2, 0, return_mean=False),
                self.sample_rows(2, 0, return_mean=True),
            ]
            # The samples fit the columns' categories and dtype ranges; checked on
            # codes, so a model fitted on a frame loads where pandas is absent.
            self.schema.check_codes(outputs[3])
        except ValueError as error:
            raise ValueError(f"the model it describes does not work ({error})") from None
        if not all(np.all(np.isfinite(values)) for values in outputs):
            raise ValueError("the model it describes gives NaN or infinite values.")

    def on_cpu(self):
        """This model with its module on the CPU (for a pickle that loads anywhere)."""
        if all(p.device.type == "cpu" for p in self.module.parameters()):
            return self
        return replace(self, module=copy.deepcopy(self.module).cpu())

    def placed_here(self):
        """This model with its module on the device it runs on here."""
        self.module.to(self.device_here)
        return self

