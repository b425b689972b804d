"""IDX reading on small files the tests write, and the MNIST split."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from skvae.datasets import get_data_home, load_idx, load_mnist_split

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_raw_and_gzip(tmp_path, compress):
    images = np.random.RandomState(0).randint(0, 256, size=(3, 4, 5)).astype(np.uint8)
    data = _idx_bytes(images)
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if compress else data)
    loaded = load_idx(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (3, 4, 5)
    np.testing.assert_array_equal(loaded, images)


def test_labels_and_wider_types(tmp_path):
    labels = np.arange(7, dtype=np.uint8)
    (tmp_path / "labels").write_bytes(_idx_bytes(labels))
    np.testing.assert_array_equal(load_idx(tmp_path / "labels"), labels)
    values = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    (tmp_path / "floats").write_bytes(_idx_bytes(values, type_code=0x0D))
    loaded = load_idx(str(tmp_path / "floats"))
    assert loaded.dtype == np.float32 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, values)


def test_corrupt_magic_number(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="IDX magic number"):
        load_idx(path)
    path.write_bytes(b"\x00\x00\x42\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="IDX magic number"):
        load_idx(path)


def test_truncated_data_and_header(tmp_path):
    data = _idx_bytes(np.zeros((2, 3, 3), dtype=np.uint8))
    path = tmp_path / "short"
    path.write_bytes(data[:-1])
    with pytest.raises(ValueError, match="truncated.*18 data bytes.*17"):
        load_idx(path)
    path.write_bytes(data[:9])  # magic says 3 dims, the header needs 16 bytes
    with pytest.raises(ValueError, match="16-byte header"):
        load_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="fewer than the 4-byte"):
        load_idx(path)
    path.write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(ValueError, match="cannot be decompressed"):
        load_idx(path)


def test_wrong_dims_too_much_data(tmp_path):
    # The header announces 2 x 2 but 6 bytes follow.
    path = tmp_path / "long"
    path.write_bytes(_idx_bytes(np.zeros((2, 2), dtype=np.uint8)) + b"\x00\x00")
    with pytest.raises(ValueError, match="longer than its header says"):
        load_idx(path)


def test_mnist_split_missing_files_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_mnist_split(tmp_path)


def test_mnist_split_on_written_files(tmp_path):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(10, 2, 3)).astype(np.uint8)
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
    X_train, X_test, y_train, y_test = load_mnist_split(tmp_path)
    assert X_train.shape == (8, 6) and X_test.shape == (2, 6)
    assert X_train.dtype == np.float32 and 0 <= X_train.min() and X_train.max() <= 1
    order = np.random.RandomState(0).permutation(10)
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), order)
    np.testing.assert_allclose(X_test[0] * 255, images[order[8]].ravel(), atol=1e-4)


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="../shared/data/mnist is absent")
def test_real_mnist_split():
    X_train, X_test, y_train, y_test = load_mnist_split(os.fspath(MNIST_DIR))
    assert X_train.shape == (8000, 784) and X_test.shape == (2000, 784)
    assert set(np.unique(y_test)) == set(range(10))
    assert X_train.max() == 1.0 and X_train.min() == 0.0


def _write_mnist(folder, n=10):
    folder.mkdir(parents=True, exist_ok=True)
    images = np.random.RandomState(0).randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.arange(n, dtype=np.uint8) % 10)))


def test_data_home_argument_then_variable_then_default(tmp_path, monkeypatch):
    """scikit-learn's convention: data_home=, else SKVAE_DATA, else ~/skvae_data."""
    monkeypatch.delenv("SKVAE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == str(tmp_path / "home" / "skvae_data")
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "from-variable"))
    assert get_data_home() == str(tmp_path / "from-variable")
    assert get_data_home(tmp_path / "from-argument") == str(tmp_path / "from-argument")
    assert get_data_home("~/elsewhere") == str(tmp_path / "home" / "elsewhere")
    assert not (tmp_path / "from-variable").exists()  # never created: nothing downloads


def test_mnist_split_reads_the_data_home(tmp_path, monkeypatch):
    _write_mnist(tmp_path / "home-a" / "mnist")
    _write_mnist(tmp_path / "home-b" / "mnist", n=20)
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "home-a"))
    assert len(load_mnist_split()[0]) == 8
    assert len(load_mnist_split(data_home=tmp_path / "home-b")[0]) == 16


def test_mnist_split_says_where_it_looked_and_how_to_point_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"empty/mnist/t10k-images.*SKVAE_DATA "
                                                r"environment variable.*data_home="):
        load_mnist_split()
    with pytest.raises(FileNotFoundError, match=r"other/mnist.*came from data_home\)"):
        load_mnist_split(data_home=tmp_path / "other")
