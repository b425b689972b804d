"""The documentation's sources: gallery headers, the API page, figures from benchmarks.

These read files only; the site itself is built by .ci/run (Sphinx is in the
``docs`` extra, not the ``test`` one).
"""

import ast
import os
import re
import sys
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
    names += ["get_data_home", "load_idx", "load_mnist_split"]
    names += [
        "LatentSpaceDisplay", "LatentManifoldDisplay", "ReconstructionDisplay",
        "ImageGridDisplay", "TrainingCurveDisplay", "FeatureScoreDisplay",
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


# ------------------------------------------- each extra installs what it runs



def _imported_modules(path, top_level_only):
    """Top-level names of the modules ``path`` imports (and ``pytest.importorskip``s)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip"
              and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value.split(".")[0])
    return names


def _distribution(requirement):
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group()
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("extra, files, top_level_only", [
    # The package itself imports its optional dependencies lazily, inside functions.
    (None, sorted((ROOT / "skvae").glob("*.py")), True),
    # The docs build runs the gallery and docs/*.py: core + docs extra, nothing else.
    ("docs", EXAMPLES + sorted(DOCS.glob("*.py")), False),
    # The test suite runs every test and, through them, every example.
    ("test", sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "examples").glob("*.py"))
     + [ROOT / "conftest.py"], False),
    # _tvae_runner.py runs in a venv of its own (ctgan needs pandas < 3).
    ("benchmark", sorted(set((ROOT / "benchmarks").glob("*.py"))
                         - {ROOT / "benchmarks" / "_tvae_runner.py"}), False),
], ids=["core", "docs", "test", "benchmark"])
def test_each_extra_installs_what_its_command_runs(extra, files, top_level_only):
    """What a command imports comes from the core dependencies and its own extra.

    The README's docs command installs the core and the ``docs`` extra only (so does
    CI, in a venv of its own): a gallery example importing a package of the ``test``
    extra alone broke it.
    """
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11, as the docs need
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + (
        project["optional-dependencies"][extra] if extra else [])
    installed = {_distribution(r) for r in requirements}
    providers = packages_distributions()
    missing = {}
    for path in files:
        # skvae, and scripts importing the files beside them (examples/_data.py).
        local = {"skvae"} | {sibling.stem for sibling in path.parent.glob("*.py")}
        for module in _imported_modules(path, top_level_only) - local:
            if module in sys.stdlib_module_names:
                continue
            distributions = {_distribution(d) for d in providers.get(module, [module])}
            if not distributions & installed:
                missing.setdefault(module, []).append(path.name)
    assert not missing, (
        f"modules imported but not in the core dependencies or the {extra!r} extra of "
        f"pyproject.toml: {missing}"
    )


def test_ci_runs_the_readme_commands_verbatim_docs_in_a_venv_of_their_own():
    """CI tests with the README's test command and builds the docs with its docs
    command, in a fresh venv holding the core and the docs extra only."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = re.search(r"^   (python3 -m venv \.venv && .*\[test\].*)$", readme,
                             flags=re.MULTILINE).group(1)
    docs_block = re.search(r"## Documentation\n.*?```bash\n(.*?)```", readme,
                           flags=re.DOTALL).group(1)
    assert test_command in ci
    for line in docs_block.strip().splitlines():
        assert line in ci, line
    assert "python3 -m venv .venv-docs" in docs_block
    assert '-e ".[docs]"' in docs_block and "[test" not in docs_block
    assert "rm -rf .venv-docs" in ci  # fresh each run: nothing left from another extra


def _readme_quickstart():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_the_readme_quickstart_runs_verbatim_without_any_warning(tmp_path):
    """The first code a new user runs: as written, in a fresh process whose warnings
    are errors, with the user's environment (threads chosen by skvae)."""
    import subprocess
    import time

    script = tmp_path / "quickstart.py"
    script.write_text(_readme_quickstart())
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("SKVAE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-W", "error", str(script)], cwd=tmp_path,
                               env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Warning" not in completed.stderr
    print(f"README quickstart: {seconds:.0f} s")
