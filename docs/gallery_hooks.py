"""Hooks that sphinx-gallery calls around each example (named in conf.py).

sphinx-gallery runs an example's code in a fresh namespace without ``__file__``
(by design: a downloaded notebook has no file either). The examples are scripts
that write their figures next to themselves, ``Path(__file__).parent / "output"``,
as they do when run with ``python examples/plot_x.py``; this hook lets the same
code run unchanged in the build.
"""

import builtins
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def provide_file(gallery_conf, fname, when):
    """Make ``__file__`` name the example while it runs, and nothing after."""
    if when == "before" and fname is not None:
        builtins.__file__ = str(EXAMPLES / Path(fname).name)
    elif hasattr(builtins, "__file__"):
        del builtins.__file__
