"""Deterministic, independent standard-normal draws for each row, keyed by its content.

Monte-Carlo estimates of ``log p(x)`` need posterior draws. Fixed draws shared by
every row make a row's score deterministic, but give every row the same error, so
the error does not average out over rows in ``score``. Here each row gets draws of
its own, from a counter-based generator keyed by a seed and by the row's content:
the same row gets the same draws in any batch, order or call, and different rows
get independent ones. Everything is vectorised torch integer arithmetic, exact on
every device: a multilinear hash of the row's bits for its key, the SplitMix64
finaliser to turn (key, counter) into random words, and the Box-Muller transform
to turn each word into two normals.

Pure functions only; tested against independence and normality checks.
"""

import math

import torch

# Constants of SplitMix64 (Steele, Lea and Flood, 2014), as signed 64-bit ints.
_GOLDEN = 0x9E3779B97F4A7C15 - 2**64
_MIX1 = 0xBF58476D1CE4E5B9 - 2**64
_MIX2 = 0x94D049BB133111EB - 2**64
_UNIFORM_BITS = 24  # per uniform: float32 holds 24 bits exactly
# Most posterior draws per row a caller may ask for: each row draws
# n_draws * n_components normals, and a model file's count must stay cheap.
MAX_DRAWS = 2**20


def _as_int64(value):
    """A Python int as the signed 64-bit word with the same bits modulo 2**64."""
    value %= 2**64
    return value - 2**64 if value >= 2**63 else value


def _shift_right(x, bits):
    """Logical right shift of int64 tensors (torch's ``>>`` keeps the sign)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def mix64(x):
    """SplitMix64's finaliser: a bijection of 64-bit words that mixes every bit.

    Products wrap modulo 2**64, as torch's int64 arithmetic does.
    """
    x = (x ^ _shift_right(x, 30)) * _MIX1
    x = (x ^ _shift_right(x, 27)) * _MIX2
    return x ^ _shift_right(x, 31)


def row_keys(x, seed):
    """A 64-bit key per row of the float32 tensor ``x``, from its bits and ``seed``.

    A multilinear hash: each value's bits times a random odd multiplier of its
    column, summed modulo 2**64, then mixed with the seed. Rows holding the same
    values get equal keys (-0.0 counts as 0.0); changing a value or moving it to
    another column changes the key, except by chance. The chance is small but not
    2**-64: values whose bits end in zeros (0.0 and 1.0 end in 23) lose as many
    bits of the hash, so two distinct binary rows share a key with a chance of
    about 2**-41. Such rows would only share their draws.
    """
    positions = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=torch.int64)
    multipliers = mix64(positions * _GOLDEN) | 1
    x = x + 0.0  # -0.0 + 0.0 is +0.0: the same value, the same bits
    # A missing entry (NaN) is one value, whatever its sign and payload bits.
    x = torch.where(torch.isnan(x), float("nan"), x)
    bits = x.contiguous().view(torch.int32).to(torch.int64)
    return mix64((bits * multipliers).sum(dim=-1) + _as_int64(int(seed) * _GOLDEN))


def standard_normal_per_row(keys, n_draws, n_dims):
    """Standard-normal draws of shape (n_draws, n_rows, n_dims), one stream per key.

    Draw ``(k, i, j)`` is a function of ``keys[i]``, ``n_draws``, ``n_dims`` and
    ``(k, j)``: the same call always gives the same draws, but the first draws of
    a call with more ``n_draws`` are not those of a call with fewer. Each random
    word gives two 24-bit uniforms and, by Box-Muller, two normals; the smallest
    uniform, 2**-25, bounds the draws at about 5.9 standard deviations (a
    probability of 4e-9 is cut off).
    """
    n_values = n_draws * n_dims
    n_words = (n_values + 1) // 2
    counters = torch.arange(1, n_words + 1, device=keys.device, dtype=torch.int64)
    words = mix64(keys.reshape(1, -1) + counters.reshape(-1, 1) * _GOLDEN)
    scale = 2.0**-_UNIFORM_BITS
    low_mask = (1 << _UNIFORM_BITS) - 1
    u1 = (_shift_right(words, 64 - _UNIFORM_BITS).to(torch.float32) + 0.5) * scale
    u2 = ((_shift_right(words, 16) & low_mask).to(torch.float32) + 0.5) * scale
    radius = torch.sqrt(-2.0 * torch.log(u1))
    angle = (2.0 * math.pi) * u2
    values = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)])[:n_values]
    return values.reshape(n_draws, n_dims, -1).permute(0, 2, 1).contiguous()
