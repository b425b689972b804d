"""torch's process-wide settings, put back as they were when a fit is stopped anywhere.

A fit changes three of torch's global settings for a while: gradient mode
(``torch.no_grad`` blocks), the default device of new tensors (``torch.device("meta")``
while a network is laid out) and the thread count (:mod:`skvae._threads`). Each
change sits in a ``with`` block or a ``finally`` clause, and Python runs their
exits, except when a KeyboardInterrupt arrives at the exit itself: then the
user's session would go on with gradients off, tensors made on the meta device
or one thread. :func:`torch_state_kept` records the three at the start of a fit
and puts them back at its end, whatever stopped it.

Knows torch only.
"""

from contextlib import contextmanager

import torch

# torch's stack of function modes (where torch.device(...) as a context lives)
# has no public accessor; where these are missing, the stack is left alone.
_stack_depth = getattr(torch._C, "_len_torch_function_stack", None)
_pop_mode = getattr(torch._C, "_pop_torch_function_stack", None)


@contextmanager
def torch_state_kept():
    """Gradient mode, torch function modes and thread count restored on leaving.

    Examples
    --------
    >>> import torch
    >>> with torch_state_kept():
    ...     _ = torch.set_grad_enabled(False)  # as an interrupted no_grad block leaves it
    >>> torch.is_grad_enabled()
    True
    """
    grad = torch.is_grad_enabled()
    threads = torch.get_num_threads()
    depth = _stack_depth() if _stack_depth is not None else None
    try:
        yield
    finally:
        torch.set_grad_enabled(grad)
        if depth is not None and _pop_mode is not None:
            while _stack_depth() > depth:
                _pop_mode()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
