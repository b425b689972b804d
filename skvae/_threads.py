"""One torch thread for small networks, the user's setting restored afterwards.

torch runs every operation on all cores by default. For a small network each
operation is too short to share: the threads spend their time waiting for each
other, and on a machine that other jobs keep busy they wait for the scheduler
too. Measured on two cores (``benchmarks/results_threads.md``): alone, two
threads gained nothing below ~300,000 weights; beside two CPU-bound jobs they
made networks up to 330,000 weights 1.6x slower (11x in one run). Larger
networks gain from two threads on a quiet machine (1.6x at 1.07M weights). So
networks with fewer than ``SMALL_NETWORK_WEIGHTS`` weights run on one thread
while skvae uses them, and the thread count the user had is put back afterwards;
larger ones keep the user's setting.
"""

from contextlib import contextmanager

import torch

SMALL_NETWORK_WEIGHTS = 50_000


def is_small(module):
    """Whether ``module`` has so few weights that one thread runs it fastest."""
    return sum(p.numel() for p in module.parameters()) < SMALL_NETWORK_WEIGHTS


@contextmanager
def one_thread_for_small(module):
    """Run the block on one torch thread if ``module`` is small; restore afterwards.

    No lock and no shared count: an interrupt must never leave a lock held (the
    transaction tests interrupt every line). Each call restores what it found,
    and a call that finds one thread already set leaves the setting alone, so
    overlapping calls from several threads end with the user's setting: the
    first to enter restores it when it leaves (later ones may then run on more
    threads, which costs time, not results' correctness).
    """
    previous = torch.get_num_threads()
    if previous == 1 or not is_small(module):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
