"""The documentation's sources: gallery headers, the API page, figures from benchmarks.

These read files only; the site itself is built by .ci/run (Sphinx is in the
``docs`` extra, not the ``test`` one).
"""

import ast
import re
from pathlib import Path

import pytest

import skvae

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[s.stem for s in EXAMPLES])
def test_example_has_a_gallery_header_and_runs_as_written(script):
    source = script.read_text()
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring is not None, f"{script.name} needs a module docstring"
    title, underline = docstring.strip("\n").splitlines()[:2]
    assert underline == "=" * len(title), f"{script.name}: title underline"
    # Examples read as a user would write them.
    assert "sys.path" not in source
    assert "matplotlib.use(" not in source


def test_api_page_lists_every_public_name():
    api = (DOCS / "api.rst").read_text()
    names = [name for name in skvae.__all__ if name != "__version__"]
    names += ["load_idx", "load_mnist_split"]
    names += [
        "LatentSpaceDisplay", "LatentManifoldDisplay", "ReconstructionDisplay",
        "ImageGridDisplay", "TrainingCurveDisplay",
    ]
    listed = set(re.findall(r"^   (\w+)$", api, flags=re.MULTILINE))
    assert set(names) <= listed, set(names) - listed


def test_comparison_states_only_figures_from_the_committed_results():
    results = "\n".join(
        path.read_text() for path in sorted((ROOT / "benchmarks").glob("results_*.md"))
    )
    figures = set(re.findall(r"-?\d+\.\d+", (DOCS / "comparison.rst").read_text()))
    missing = {figure for figure in figures if figure not in results}
    assert not missing, f"figures not in benchmarks/results_*.md: {sorted(missing)}"


def test_changelog_has_an_unreleased_section_and_the_first_version():
    changelog = (DOCS / "changelog.rst").read_text()
    assert re.search(r"^Unreleased\n-+$", changelog, flags=re.MULTILINE)
    assert re.search(r"^0\.1\.0\n-+$", changelog, flags=re.MULTILINE)
    assert "safetensors" in changelog and "format version 2" in changelog
