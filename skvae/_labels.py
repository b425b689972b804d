"""The detector's ``y``: a few labels, checked, as the mask of the known anomalies.

The convention is that of scikit-learn's semi-supervised estimators, with
ADBench's and DeepOD's sign: 1 marks a known anomaly, 0 a known inlier, -1 a row
without a label. Numpy only.
"""

import numpy as np
from sklearn.utils.validation import _num_samples

ANOMALY, INLIER, UNLABELLED = 1, 0, -1


def labelled_anomalies(y, X):
    """Boolean mask of the rows of ``X`` that ``y`` labels as anomalies (1).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels in {-1, 0, 1}, any integer, boolean or float dtype holding them.
    X : array-like of shape (n_samples, n_features)
        The rows ``y`` labels; only its number of rows is read.

    Returns
    -------
    ndarray of bool of shape (n_samples,)

    Raises
    ------
    ValueError
        If ``y`` is not 1-D, not numbers, holds other values than -1, 0 and 1,
        or has another length than ``X``.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(
            f"y must be 1-D, one label per row of X; got shape {labels.shape}.")
    if labels.dtype.kind not in "biuf":
        raise ValueError(
            f"y must hold the numbers -1, 0 and 1; got dtype {labels.dtype}.")
    unknown = np.setdiff1d(labels[~np.isin(labels, (ANOMALY, INLIER, UNLABELLED))], [])
    if unknown.size:
        shown = ", ".join(repr(v.item()) for v in unknown[:5])
        raise ValueError(
            "y must mark each row 1 (a known anomaly), 0 (a known inlier) or -1 "
            f"(no label); it holds {shown}{', ...' if unknown.size > 5 else ''}. Note "
            "that predict's -1 means an outlier, but in y -1 means unlabelled."
        )
    n_rows = _num_samples(X)
    if labels.shape[0] != n_rows:
        raise ValueError(
            f"y has {labels.shape[0]} labels for the {n_rows} rows of X.")
    return labels == ANOMALY
