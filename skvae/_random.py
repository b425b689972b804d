"""Seeds from ``random_state`` without touching numpy's or torch's global state."""

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state


def fresh_seed():
    """A seed from OS entropy: unlike ``np.random.randint`` it leaves global state alone."""
    return int(np.random.SeedSequence().generate_state(1)[0])


def seed_from(random_state):
    """An int seed from ``None``, an int or a ``RandomState``, as scikit-learn reads them."""
    if random_state is None:
        return fresh_seed()
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def independent_seeds(random_state, n_seeds):
    """``n_seeds`` independent 32-bit seeds drawn once from ``random_state``."""
    sequence = np.random.SeedSequence(seed_from(random_state))
    return [int(seed) for seed in sequence.generate_state(n_seeds)]
