"""torch threads chosen by timing the work itself, the user's setting restored afterwards.

torch runs every operation on all cores by default. Whether that is fast depends
on the network and on the machine's load, which no rule known in advance can
tell: on two cores that other jobs kept busy, the 512-256 network (the default
then) fitted penguins in 27-70 s on torch's two threads and in 3-8 s on one
(``benchmarks/results_threads.md``), while a quiet machine gives larger networks
1.6x from the second thread. So skvae measures. Repeated work of one shape (the
training steps of a fit, the fixed-size chunks of an inference call) runs its
first calls alternately on one thread and on torch's setting, keeps the faster,
and measures again every ``REMEASURE_SECONDS`` in case the load changed. Work
that would take less than ``MIN_MEASURED_SECONDS`` on one thread, by its second
call's time, stays on one thread: a second core could not save much of it. The
timed calls are the work itself, and the choice changes only the time: skvae
chooses only between counts that give the same bits (below;
``tests/test_threads.py`` checks it).

Bit-identical on any count needs one thing torch does not give by default: MKL,
which does torch's matrix products on the CPU, splits some shapes (a 6 x 128
by 128 x 32 product, say) differently on two threads than on one. Its
conditional numerical reproducibility mode (``MKL_CBWR=AUTO,STRICT``) removes
most of that (its products are not those of the default mode in the last bits,
even on one thread); skvae turns it on when it is imported, which MKL allows
only before its first product. Where it cannot (torch already computed a
product, or the user set ``MKL_CBWR`` otherwise), skvae does not measure and
runs on torch's setting. Some kernels still split their sums by thread in that
mode, so before choosing, a fit tries one training step on copies of the
network on both counts, and an inference call computes its first chunk on both;
work whose bits differ runs on one thread. Convolutional networks are not
measured: oneDNN's convolutions at inference round differently on one thread
and on two.

Nothing is measured, and torch's setting is used as it is, when the user chose
threads: ``SKVAE_THREADS`` set to a number (skvae uses that many),
``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set, or ``torch.set_num_threads``
called since skvae was imported (the count differs from torch's default), or a
single thread to start with. ``SKVAE_THREADS=auto`` (or unset) measures.
"""

import ctypes
import os
import time
from contextlib import contextmanager

import torch

# Timed calls per candidate before choosing; the first call of all is a warm-up
# (allocations, kernel selection) and is not timed.
TRIALS = 3
REMEASURE_SECONDS = 30.0
# Calls with fewer chunks than this are too short to measure: they run on one
# thread.
MIN_MEASURED_CALLS = 1 + 2 * TRIALS
# Work whose calls would take less than this on one thread, by the second call's
# time, is not measured: the second core could save a few seconds at most, the
# check of the bits and the timed calls on two threads cost part of that, and
# timings of a millisecond are too noisy on a busy machine to trust (the 12
# ADBench fits of the detector, 0.1 to 2 s each, took 1.16x their one-thread
# time when measured; benchmarks/results_defaults.md).
MIN_MEASURED_SECONDS = 10.0
# One thread must be this much slower before several are chosen: the second
# core of a busy machine costs more than it gives when timings are close.
_MARGIN = 0.9

# torch's count when skvae was imported: a different count later means the user
# called torch.set_num_threads.
_TORCH_DEFAULT = torch.get_num_threads()

# mkl_service.h: MKL_CBWR_AUTO | MKL_CBWR_STRICT.
_MKL_CBWR_AUTO_STRICT = 2 | 0x10000


def _reproducible_matrix_products():
    """Turn on MKL's reproducibility across thread counts; whether products have it.

    MKL is linked into torch's CPU library; a torch built without it (another
    BLAS, or none) has no such mode, and its products are not known to agree
    across thread counts, so nothing is measured there.
    """
    setting = os.environ.get("MKL_CBWR")
    if setting is not None:
        return "STRICT" in setting.upper()
    if not torch.backends.mkl.is_available():
        return False
    try:
        library = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib",
                                           "libtorch_cpu.so"))
        set_mode = library.mkl_serv_cbwr_set
    except (OSError, AttributeError):
        return False
    set_mode.argtypes, set_mode.restype = [ctypes.c_int], ctypes.c_int
    return set_mode(_MKL_CBWR_AUTO_STRICT) == 0  # fails once MKL has computed


REPRODUCIBLE_ACROSS_THREADS = _reproducible_matrix_products()


def user_threads():
    """The thread count the user chose, or None if skvae may choose.

    Raises
    ------
    ValueError
        If ``SKVAE_THREADS`` is neither "auto" nor a positive integer.
    """
    setting = os.environ.get("SKVAE_THREADS", "auto").strip()
    if setting.lower() != "auto":
        try:
            count = int(setting)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(
                f"SKVAE_THREADS={setting!r}: it must be 'auto' or a positive integer "
                "number of torch threads."
            )
        return count
    current = torch.get_num_threads()
    if (current == 1 or current != _TORCH_DEFAULT or not REPRODUCIBLE_ACROSS_THREADS
            or os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS")):
        return current
    return None


class ThreadChooser:
    """Runs calls of one shape on the fastest of one thread and torch's setting.

    The first call runs on the first candidate (one thread) as a warm-up, the
    second is timed there: if the calls left would take less than
    ``MIN_MEASURED_SECONDS`` at that pace, or if the work gives other bits on the
    other count, every call stays on the first candidate. Otherwise the calls
    alternate between the counts until each has ``TRIALS`` timings, and the
    faster is kept.

    Parameters
    ----------
    candidates : tuple of int
        Thread counts to compare, the reference count (one thread) first; one
        count means no choice.
    n_calls : int or None, default=None
        Calls the work will make, when known; None: enough to be worth measuring.
    same_bits : callable or None, default=None
        ``same_bits(a, b)``: whether the work gives the same bits on ``a`` and
        ``b`` threads, asked once, when measuring would pay.
    compare_first : bool, default=False
        Compare the first measured call's results on the two counts instead
        (work that changes nothing, such as inference), keeping the first count
        alone if they differ.
    """

    def __init__(self, candidates, *, n_calls=None, same_bits=None, compare_first=False):
        self.candidates = tuple(candidates)
        self.chosen = self.candidates[0]
        self._n_calls, self._same_bits = n_calls, same_bits
        self._compare_first = compare_first and len(self.candidates) > 1
        self._times = {count: [] for count in self.candidates}
        # Calls made before deciding whether to measure: a warm-up, then one timed.
        self._calls_before_deciding = 2 if len(self.candidates) > 1 else None
        self._measuring = False
        self._chosen_at = time.perf_counter()

    @property
    def measuring(self):
        return self._measuring or self._calls_before_deciding is not None

    def run_fixed(self, function, *args):
        """``function(*args)`` on the first candidate count, whatever was chosen.

        For work whose results must not depend on the choice and whose shape
        was not checked for it (a short last batch, a validation pass).
        """
        _set_threads(self.candidates[0])
        return function(*args)

    def pin(self, count):
        """Stop choosing: every call runs on ``count`` from now on."""
        self.candidates, self.chosen = (count,), count
        self._measuring, self._calls_before_deciding = False, None

    def run(self, function, *args):
        """``function(*args)`` on the count chosen (or being timed) for this call."""
        if self._calls_before_deciding is not None:
            return self._run_before_deciding(function, args)
        if not self._measuring:
            if len(self.candidates) > 1 and (
                    time.perf_counter() - self._chosen_at > REMEASURE_SECONDS):
                self._times = {count: [] for count in self.candidates}
                self._measuring = True
            else:
                _set_threads(self.chosen)
                return function(*args)
        if self._compare_first:
            self._compare_first = False
            return self._call_compared(function, args)
        count = self._next_candidate()
        _set_threads(count)
        start = time.perf_counter()
        result = function(*args)
        self._times[count].append(time.perf_counter() - start)
        if all(len(times) >= TRIALS for times in self._times.values()):
            self._choose()
        return result

    def _run_before_deciding(self, function, args):
        """The warm-up and the first timed call, on the first count; then whether
        to measure at all."""
        first = self.candidates[0]
        _set_threads(first)
        self._calls_before_deciding -= 1
        if self._calls_before_deciding:  # the warm-up: allocations, kernel choice
            return function(*args)
        start = time.perf_counter()
        result = function(*args)
        elapsed = time.perf_counter() - start
        calls_left = None if self._n_calls is None else self._n_calls - 2
        if calls_left is not None and elapsed * calls_left < MIN_MEASURED_SECONDS:
            self.pin(first)
        elif self._same_bits is not None and not self._same_bits(*self.candidates[:2]):
            self.pin(first)
        else:
            self._calls_before_deciding, self._measuring = None, True
            self._times[first].append(elapsed)
        return result

    def _call_compared(self, function, args):
        """The call on the first count, repeated on the second: the same bits
        allow choosing; other bits pin the first count, so results never depend
        on the machine's load."""
        first, second = self.candidates[:2]
        _set_threads(first)
        result = function(*args)
        _set_threads(second)
        if not _same_bits(result, function(*args)):
            self.pin(first)
        return result

    def _next_candidate(self):
        return min(self.candidates, key=lambda count: len(self._times[count]))

    def _choose(self):
        medians = {count: sorted(times)[len(times) // 2]
                   for count, times in self._times.items()}
        single = medians.get(1)
        fastest = min(medians, key=medians.get)
        if single is not None and medians[fastest] > _MARGIN * single:
            fastest = 1
        self.chosen, self._measuring = fastest, False
        self._chosen_at = time.perf_counter()


def _same_bits(a, b):
    """Whether two results (tensors, or tuples and lists of them) are equal bit for bit."""
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_bits(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
    return a == b


def _has_convolutions(module):
    """Whether ``module`` convolves: oneDNN's convolutions at inference round
    differently on one thread and on two, so a conv network is not measured."""
    return any(isinstance(part, torch.nn.modules.conv._ConvNd) for part in module.modules())


def _set_threads(count):
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


@contextmanager
def chosen_threads(module, *, n_calls=None, device=None, same_bits=None):
    """A :class:`ThreadChooser` for repeated work on ``module``; restores torch's setting.

    Parameters
    ----------
    module : torch.nn.Module
        The network the work runs (a conv network is not measured).
    n_calls : int or None, default=None
        Calls the block will make, when known: fewer than
        ``MIN_MEASURED_CALLS``, or too few to take ``MIN_MEASURED_SECONDS`` at
        the second call's pace, run on one thread.
    device : torch.device or None, default=None
        Where the work runs; on an accelerator nothing is measured (its calls
        return before the work is done, and the CPU threads hardly matter).
    same_bits : callable or None, default=None
        ``same_bits(a, b)``: whether the work gives the same bits on ``a`` and
        ``b`` threads, checked once, when the work is long enough to measure
        (a training step, tried on copies of the network). None: the chooser
        compares one call's results on both counts (inference, which changes
        nothing). Work that
        differs runs on one thread: some of torch's kernels (a 4 x 32 by 32 x 16
        product, say) split their sums by thread even in MKL's reproducible
        mode, and a choice that followed the machine's load would then make
        the same ``random_state`` give another model.

    No lock and no shared count: an interrupt must never leave a lock held. Each
    block restores the count it found, and a block that finds one thread set
    leaves the setting alone (it is the user's, or another block's measurement),
    so overlapping blocks from several threads end with the user's setting.
    """
    previous = torch.get_num_threads()
    try:  # the check of same_bits sets threads too: restored whatever stops it
        yield ThreadChooser(_candidates(module, n_calls, device, previous), n_calls=n_calls,
                            same_bits=same_bits, compare_first=same_bits is None)
    finally:
        _set_threads(previous)


def _candidates(module, n_calls, device, previous):
    """The thread counts :func:`chosen_threads` may choose from (one: no choice)."""
    fixed = user_threads()  # the user's count holds for every network, conv included
    if fixed is not None:
        return (fixed,)
    if (device is not None and torch.device(device).type != "cpu") or _has_convolutions(module):
        return (previous,)
    if n_calls is not None and n_calls < MIN_MEASURED_CALLS:
        return (1,)  # too short to measure, or to check that its shapes give the same bits
    return (1, previous)
