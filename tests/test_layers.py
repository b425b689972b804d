"""The package's layering: the fitted model and the fitting function know no scikit-learn."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skvae"


def _skvae_imports(path):
    """The skvae modules ``path`` imports, and whether it imports scikit-learn."""
    tree = ast.parse(path.read_text())
    modules, sklearn = set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            sklearn |= any(alias.name.split(".")[0] == "sklearn" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                sklearn |= (node.module or "").split(".")[0] == "sklearn"
            elif node.level == 1 and node.module:
                modules.add(node.module)
    return modules, sklearn


@pytest.mark.parametrize("module", ["_model", "_fitting"])
def test_model_and_fitting_import_nothing_from_sklearn(module):
    """Neither module, nor any skvae module they import (transitively), imports sklearn."""
    seen, pending = set(), [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        imported, sklearn = _skvae_imports(PACKAGE / f"{name}.py")
        assert not sklearn, f"skvae.{name} (imported by skvae.{module}) imports sklearn"
        pending.extend(imported)
    assert {"_model", "_data", "_networks"} <= seen  # the walk followed the imports


def test_the_walk_finds_an_sklearn_import(tmp_path, monkeypatch):
    """The check above can fail: a module importing sklearn is found."""
    (tmp_path / "a.py").write_text("from . import b\nfrom .b import c\n")
    (tmp_path / "b.py").write_text("from sklearn.utils import gen_batches\n")
    assert _skvae_imports(tmp_path / "a.py") == ({"b"}, False)
    assert _skvae_imports(tmp_path / "b.py") == (set(), True)
