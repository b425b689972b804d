"""Seeds from ``random_state`` without touching numpy's or torch's global state."""

from numbers import Integral

import numpy as np

# Seeds are 32-bit words of a SeedSequence.
SEED_LIMIT = 2**32


def fresh_seed():
    """A seed from OS entropy: unlike ``np.random.randint`` it leaves global state alone."""
    return int(np.random.SeedSequence().generate_state(1)[0])


def seed_from(random_state):
    """An int seed from ``None``, an int or a ``RandomState``, as scikit-learn reads them."""
    if random_state is None:
        return fresh_seed()
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state < 2**32:
            raise ValueError(
                f"random_state={random_state!r} must be an integer in [0, 2**32 - 1], "
                "a numpy RandomState or None, as in scikit-learn."
            )
        return int(random_state)
    if not isinstance(random_state, np.random.RandomState):
        raise ValueError(
            f"random_state={random_state!r} must be an integer in [0, 2**32 - 1], a "
            "numpy RandomState or None, as in scikit-learn."
        )
    return int(random_state.randint(np.iinfo(np.int32).max))


def independent_seeds(random_state, n_seeds):
    """``n_seeds`` independent 32-bit seeds drawn once from ``random_state``."""
    sequence = np.random.SeedSequence(seed_from(random_state))
    return [int(seed) for seed in sequence.generate_state(n_seeds)]


def spawned_seed(random_state, key):
    """A seed for the ``key``-th call of a sequence seeded by ``random_state``.

    Independent between keys, reproducible for an int ``random_state``: each
    ``partial_fit`` call's minibatch order, each imputation draw.
    """
    sequence = np.random.SeedSequence(seed_from(random_state), spawn_key=(key,))
    return int(sequence.generate_state(1)[0])
