"""Every examples/plot_*.py runs with quick settings and writes its PNG files."""

import os
import re
import subprocess
import sys
from pathlib import Path

import gzip
import importlib.util

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs_and_writes_pngs(script):
    """Each example runs as written, with every warning an error: none filters the
    ConvergenceWarning any more, since a run whose schedule ended does not warn."""
    env = {**os.environ, "SKVAE_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(EXAMPLES.parent), env.get("PYTHONPATH", "")]
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = re.findall(r"^wrote (.+\.png)$", result.stdout, flags=re.MULTILINE)
    assert written, result.stdout
    for path in written:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def example_data(monkeypatch, tmp_path):
    """examples/_data.py, imported as the examples import it, its clone folder empty."""
    spec = importlib.util.spec_from_file_location("_data", EXAMPLES / "_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "BESIDE_CLONE", tmp_path / "beside-clone")
    return module


def _write_mnist(folder, n=10):
    folder.mkdir(parents=True)
    for name, array in [("t10k-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8)),
                        ("t10k-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8))]:
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
            int(d).to_bytes(4, "big") for d in array.shape)
        (folder / name).write_bytes(gzip.compress(header + array.tobytes()))


def test_examples_read_mnist_from_the_skvae_data_variable(example_data, tmp_path, monkeypatch):
    _write_mnist(tmp_path / "home" / "mnist")
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "home"))
    X_train, X_test, _, _, shape, name = example_data.load_images()
    assert name == "MNIST" and shape == (1, 28, 28) and len(X_train) == 8


def test_examples_fall_back_saying_where_they_looked(example_data, tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "empty"))
    *_, shape, name = example_data.load_images()
    assert name == "digits" and shape == (1, 8, 8)
    printed = capsys.readouterr().out
    assert (f"MNIST not found in {tmp_path / 'empty' / 'mnist'} nor "
            f"{tmp_path / 'beside-clone' / 'mnist'}: using scikit-learn's 8 x 8 digits") in printed
    assert "Set SKVAE_DATA" in printed


def test_data_home_comes_before_the_folder_beside_the_clone(example_data, tmp_path,
                                                            monkeypatch):
    for folder in ("home", "beside-clone"):
        (tmp_path / folder / "tabular").mkdir(parents=True)
        (tmp_path / folder / "tabular" / "penguins.csv").write_text("a\n1\n")
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "home"))
    found, looked = example_data.find_data(Path("tabular") / "penguins.csv")
    assert found == tmp_path / "home" / "tabular" / "penguins.csv"
    assert looked[1] == tmp_path / "beside-clone" / "tabular" / "penguins.csv"


def test_every_example_finds_its_data_through_the_data_home():
    """No example reads a data folder of its own: all go through _data.find_data."""
    for script in sorted(EXAMPLES.glob("*.py")):
        source = script.read_text()
        if script.name != "_data.py":
            assert '"shared"' not in source and "shared/data/" not in source.split('"""')[-1], (
                script.name)
