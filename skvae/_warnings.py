"""Warnings that point at the user's line, however deep in the call they arise.

A fixed ``stacklevel`` is right for one call path only: ``est.fit(X)`` and
``make_pipeline(..., est).fit(X)`` reach the same warning through different
numbers of frames. :func:`warn` counts the frames instead, up to the first one
outside skvae and the libraries that call it on the user's behalf
(scikit-learn's pipelines and searches, joblib's workers).
"""

import importlib.util
import os
import sys
import warnings


def _package_dir(name):
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return os.path.dirname(os.path.abspath(spec.origin)) + os.sep


_LIBRARY_DIRS = tuple(
    folder
    for folder in (os.path.dirname(os.path.abspath(__file__)) + os.sep,
                   _package_dir("sklearn"), _package_dir("joblib"))
    if folder is not None
)


def warn(message, category):
    """``warnings.warn`` with the stack level of the first frame outside the libraries."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _LIBRARY_DIRS
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class TrainingInterruptedWarning(RuntimeWarning):
    """Ctrl-C stopped training; the estimator kept the weights of the last full epoch.

    A class of its own so that callers which must stop instead (the demo) can
    tell it from other runtime warnings without reading its text.
    """
