"""The rules of the parameters every skvae estimator shares, declared once.

scikit-learn's ``_fit_context`` checks them before every fit; sizes are bounded
to what can be built, so a huge value is a clear error, never torch's overflow.
"""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._draws import MAX_DRAWS
from ._networks import ACTIVATIONS, MAX_WEIGHTS
from ._schedules import SCHEDULES

SHARED_PARAMETER_CONSTRAINTS = {
    # Sizes bounded to what can be built (see skvae._networks.check_sizes).
    "n_components": [Interval(Integral, 1, MAX_WEIGHTS, closed="both")],
    "hidden_layer_sizes": ["array-like", StrOptions({"auto"})],
    "architecture": [StrOptions({"dense", "conv"})],
    "image_shape": [tuple, None],
    "conv_channels": ["array-like"],
    "conv_dense_width": [Interval(Integral, 1, MAX_WEIGHTS, closed="both")],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "likelihood": [StrOptions({"auto", "bernoulli", "gaussian"})],
    "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
    "handle_unknown": [StrOptions({"error", "ignore"})],
    "beta": [Interval(Real, 0, None, closed="left")],
    "batch_size": [Interval(Integral, 1, MAX_WEIGHTS, closed="both"), StrOptions({"auto"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    "learning_rate": [StrOptions(set(SCHEDULES))],
    "max_iter": [Interval(Integral, 1, 2**31 - 1, closed="both"), StrOptions({"auto"})],
    "tol": [Interval(Real, 0, None, closed="left")],
    "early_stopping": ["boolean", StrOptions({"auto"})],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, 2**31 - 1, closed="both")],
    # Bounded: each row draws n_importance_samples * n_components normals.
    "n_importance_samples": [Interval(Integral, 1, MAX_DRAWS, closed="both")],
    # Bounded: each training row is decoded n_training_samples times.
    "n_training_samples": [Interval(Integral, 1, 1000, closed="both")],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
}
