"""Readers for data stored locally; nothing here downloads anything.

:func:`load_idx` reads the IDX format of MNIST and its relatives (gzip or raw);
:func:`load_mnist_split` reads the MNIST test-set files into the fixed
8,000/2,000 split that the benchmarks and examples use; :func:`get_data_home` says
where they look, following scikit-learn's convention (a ``data_home`` argument, else
the ``SKVAE_DATA`` environment variable, as ``SCIKIT_LEARN_DATA`` is for
:func:`sklearn.datasets.get_data_home`, else ``~/skvae_data``).
"""

import gzip
import os

import numpy as np

__all__ = ["get_data_home", "load_idx", "load_mnist_split"]

DATA_HOME_VARIABLE = "SKVAE_DATA"
_MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def get_data_home(data_home=None):
    """The folder skvae's data loaders read from, as scikit-learn's convention has it.

    ``data_home`` when given; else the ``SKVAE_DATA`` environment variable (as
    ``SCIKIT_LEARN_DATA`` is for :func:`sklearn.datasets.get_data_home`); else
    ``~/skvae_data``. A leading ``~`` is expanded. The folder is not created:
    nothing is ever downloaded into it. It holds one sub-folder per data set:
    ``mnist/`` (the two MNIST test-set files), ``tabular/`` (CSV tables such as
    ``penguins.csv``), ``adbench/`` (ADBench ``.npz`` files).

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use; None for ``SKVAE_DATA`` or the default.

    Returns
    -------
    data_home : str
        The folder's path.

    Examples
    --------
    >>> import os
    >>> from skvae.datasets import get_data_home
    >>> get_data_home("/data/skvae")
    '/data/skvae'
    >>> get_data_home() == os.path.expanduser(os.environ.get("SKVAE_DATA", "~/skvae_data"))
    True
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_VARIABLE) or os.path.join("~", "skvae_data")
    return os.path.expanduser(os.fsdecode(os.fspath(data_home)))

# Third byte of the magic number -> element type (all big-endian).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path):
    with open(path, "rb") as file:
        start = file.read(2)
    try:
        if start == _GZIP_MAGIC:
            with gzip.open(path, "rb") as file:
                return file.read()
    except (OSError, EOFError) as error:
        raise ValueError(
            f"{os.fspath(path)!r} starts like a gzip file but cannot be decompressed "
            f"({error}); the file is probably truncated or corrupt."
        ) from error
    with open(path, "rb") as file:
        return file.read()


def load_idx(path):
    """Read an IDX file (the format of MNIST) into a numpy array.

    The file may be raw or gzip-compressed; compression is detected from the
    file's first bytes, not from its name. The magic number, the dimensions in
    the header and the length of the data are all checked.

    Parameters
    ----------
    path : str or path-like
        Path to a local IDX file, for example ``t10k-images-idx3-ubyte.gz``.

    Returns
    -------
    array : ndarray
        Array with the shape given in the file's header and its element type
        (``uint8`` for MNIST), in native byte order.

    Raises
    ------
    ValueError
        If the magic number is not an IDX one, or the file is shorter or longer
        than its header announces.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvae.datasets import load_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx2-ubyte")
    >>> header = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(header + bytes(range(6)))
    >>> load_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    data = _read_bytes(path)
    name = os.fspath(path)
    if len(data) < 4:
        raise ValueError(
            f"{name!r} has {len(data)} bytes, fewer than the 4-byte IDX magic "
            "number; it is not an IDX file or it is truncated."
        )
    zero, type_code, n_dims = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{name!r} does not start with an IDX magic number: got 0x"
            f"{data[:4].hex()}, expected 0x0000TTDD with type byte TT in "
            f"{{{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}}} (0x08 for uint8 "
            "images such as MNIST)."
        )
    header_size = 4 + 4 * n_dims
    if len(data) < header_size:
        raise ValueError(
            f"{name!r} announces {n_dims} dimensions, which needs a {header_size}-byte "
            f"header, but the file has only {len(data)} bytes; it is truncated."
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)
    )
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise ValueError(
            f"{name!r} is {problem}: its header announces shape {shape} of "
            f"{dtype.name}, that is {expected} data bytes, but {actual} bytes follow "
            "the header."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def load_mnist_split(data_dir=None, *, data_home=None):
    """The fixed 8,000/2,000 train/test split of the 10,000 MNIST test images.

    Reads ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` from
    ``data_dir``, or from the ``mnist`` folder of :func:`get_data_home` (the
    ``data_home`` argument, else the ``SKVAE_DATA`` environment variable, else
    ``~/skvae_data``) when ``data_dir`` is None; shuffles with ``np.random.RandomState(0).permutation(10000)``
    and keeps the first 8,000 rows for training and the last 2,000 for testing.
    Images are flattened to 784 columns and scaled to [0, 1].

    Parameters
    ----------
    data_dir : str or path-like, default=None
        Folder holding the two MNIST files (for example ``../shared/data/mnist``);
        None for ``<data_home>/mnist``.
    data_home : str or path-like, default=None
        The data folder whose ``mnist`` sub-folder is read when ``data_dir`` is
        None; None for ``SKVAE_DATA`` or ``~/skvae_data``, see :func:`get_data_home`.

    Returns
    -------
    X_train : ndarray of shape (8000, 784), float32
    X_test : ndarray of shape (2000, 784), float32
    y_train : ndarray of shape (8000,), int64
    y_test : ndarray of shape (2000,), int64

    Raises
    ------
    FileNotFoundError
        If either file is missing; the message names the folder looked in and how
        to point the loader elsewhere. Nothing is downloaded.

    Examples
    --------
    With two small stand-in files of 10 images (the real ones hold 10,000):

    >>> import gzip, os, tempfile
    >>> import numpy as np
    >>> from skvae.datasets import load_mnist_split
    >>> folder = tempfile.mkdtemp()
    >>> def write_idx(name, array):
    ...     shape = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    ...     with gzip.open(os.path.join(folder, name), "wb") as file:
    ...         _ = file.write(bytes([0, 0, 0x08, array.ndim]) + shape
    ...                        + array.astype(np.uint8).tobytes())
    >>> write_idx("t10k-images-idx3-ubyte.gz", np.full((10, 28, 28), 255))
    >>> write_idx("t10k-labels-idx1-ubyte.gz", np.arange(10))
    >>> X_train, X_test, y_train, y_test = load_mnist_split(folder)
    >>> X_train.shape, X_test.shape, float(X_train.max())
    ((8, 784), (2, 784), 1.0)
    """
    if data_dir is None:
        data_dir, origin = os.path.join(get_data_home(data_home), "mnist"), _origin(data_home)
    else:
        origin = "data_dir"
    paths = [os.path.join(data_dir, name) for name in _MNIST_FILES]
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path!r} does not exist (the folder came from {origin}). "
                "load_mnist_split reads local MNIST IDX files and never downloads them: "
                "pass data_dir=<folder holding them>, or data_home= (or set the "
                f"{DATA_HOME_VARIABLE} environment variable) to a folder whose mnist/ "
                "sub-folder holds them."
            )
    images, labels = (load_idx(path) for path in paths)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{paths[0]!r} has {images.shape[0]} images but {paths[1]!r} has "
            f"{labels.shape[0]} labels."
        )
    X = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255)
    y = labels.astype(np.int64)
    n_train = images.shape[0] * 4 // 5
    order = np.random.RandomState(0).permutation(images.shape[0])
    train, test = order[:n_train], order[n_train:]
    return X[train], X[test], y[train], y[test]


def _origin(data_home):
    """Where :func:`get_data_home` took its folder from, for messages."""
    if data_home is not None:
        return "data_home"
    if os.environ.get(DATA_HOME_VARIABLE):
        return f"the {DATA_HOME_VARIABLE} environment variable"
    return f"the default, as {DATA_HOME_VARIABLE} is not set"
