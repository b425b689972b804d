"""Sphinx configuration of the skvae documentation.

Build (from the repository root, in a venv holding skvae and its ``docs`` extra only,
as .ci/run does: ``python3 -m venv .venv-docs && .venv-docs/bin/pip install -q -c
constraints.txt -e ".[docs]"``)::

    SKVAE_EXAMPLE_QUICK=1 OMP_NUM_THREADS=1 .venv-docs/bin/python -m sphinx -q -W --keep-going -b html docs docs/_build/html

API pages come from the numpydoc docstrings, the gallery from ``examples/plot_*.py``
(run by sphinx-gallery), the benchmark pages from ``benchmarks/results_*.md`` (read
by MyST). Nothing is downloaded: there is no intersphinx; references to
scikit-learn, PyTorch, NumPy and Python objects become plain links (see
``_external_reference`` below).
"""

import sys
from pathlib import Path

import skvae

# gallery_hooks.py, next to this file, is named by sphinx-gallery's configuration.
sys.path.insert(0, str(Path(__file__).resolve().parent))

project = "skvae"
author = "the skvae developers"
copyright = "the skvae developers"
version = release = skvae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# Broken cross-references are errors (with -W), so a renamed function shows up.
nitpicky = True
default_role = "literal"

# -- API pages ---------------------------------------------------------------
autosummary_generate = True
autodoc_member_order = "groupwise"
# "fit()" rather than "VAETransformer.fit()" in the page tables of contents.
toc_object_entries_show_parents = "hide"
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Types in "Parameters" stay text ("array-like of shape (n, m)" is no Python name).
numpydoc_xref_param_type = False

# -- Gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"[\\/]plot_",
    # examples/_data.py is a helper the image examples import, not an example.
    "ignore_pattern": r"(^|[\\/])_[^\\/]*\.py$",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skvae",),
    "backreferences_dir": "gen_modules/backreferences",
    # Links from the examples' code to skvae's API pages; None = this site, offline.
    "reference_url": {"skvae": None},
    "remove_config_comments": True,
    # Show what the scripts print, nothing more (no repr of a cell's last value).
    "capture_repr": (),
    "show_memory": False,
    "min_reported_time": 0,
    "matplotlib_animations": False,
    "plot_gallery": "True",
    # Examples use __file__ to find their output folder, as scripts do.
    "reset_modules": ("matplotlib", "gallery_hooks.provide_file"),
    "reset_modules_order": "both",
}

# -- MyST (benchmark tables) -------------------------------------------------
myst_heading_anchors = 3

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skvae {release}"
html_static_path = ["_static"]
html_css_files = ["skvae.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": {"**": ["page-toc"], "index": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# Pages without sub-pages get no (empty) section navigation.
html_sidebars = {page: [] for page in ("index", "getting_started", "comparison", "changelog")}


# -- External references without intersphinx ----------------------------------
_PYTHON = "https://docs.python.org/3/library/"


def _external_url(target):
    """A documentation URL for a scikit-learn, PyTorch, NumPy or Python name."""
    import builtins

    if target.startswith("sklearn."):
        parts = target.split(".")
        if len(parts) == 2:  # a module: sklearn.pipeline
            return f"https://scikit-learn.org/stable/api/{target}.html"
        # sklearn.mod.Class.method -> the class's page, anchored at the method.
        for depth in range(2, len(parts)):
            if parts[depth][:1].isupper():
                page = ".".join(parts[: depth + 1])
                url = f"https://scikit-learn.org/stable/modules/generated/{page}.html"
                return url if page == target else f"{url}#{target}"
        return f"https://scikit-learn.org/stable/modules/generated/{target}.html"
    if target.startswith("torch."):
        special = {
            "torch.device": "tensor_attributes.html#torch.device",
            "torch.dtype": "tensor_attributes.html#torch.dtype",
            "torch.Tensor": "tensors.html",
        }
        page = special.get(target, f"generated/{target}.html")
        return f"https://docs.pytorch.org/docs/stable/{page}"
    if target.startswith(("numpy.", "np.")):
        name = "numpy." + target.split(".", 1)[1]
        return f"https://numpy.org/doc/stable/reference/generated/{name}.html"
    if target.startswith("matplotlib."):
        return f"https://matplotlib.org/stable/api/_as_gen/{target}.html"
    obj = getattr(builtins, target, None)
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return f"{_PYTHON}exceptions.html#{target}"
    if obj is not None:
        return f"{_PYTHON}functions.html#{target}"
    module = target.split(".")[0]
    if module in ("pickle", "os", "pathlib", "warnings"):
        return f"{_PYTHON}{module}.html" + ("" if module == target else f"#{target}")
    return None


# Labels of scikit-learn's own documentation that the docstrings skvae inherits
# from it (get_metadata_routing, set_output) refer to.
_SKLEARN_LABELS = {
    "metadata_routing": ("metadata routing", "metadata_routing.html"),
    "df_output_transform": (
        "the set_output API",
        "auto_examples/miscellaneous/plot_set_output.html",
    ),
    "sphx_glr_auto_examples_miscellaneous_plot_set_output.py": (
        "Introducing the set_output API",
        "auto_examples/miscellaneous/plot_set_output.html",
    ),
}


def _external_reference(app, env, node, contnode):
    from docutils import nodes

    target = node.get("reftarget", "")
    if node.get("refdomain") == "py":
        url = _external_url(target)
    elif node.get("refdomain") == "std" and target in _SKLEARN_LABELS:
        title, page = _SKLEARN_LABELS[target]
        url = f"https://scikit-learn.org/stable/{page}"
        if contnode.astext() == target:  # no explicit title in the reference
            contnode = nodes.inline(title, title)
    else:
        return None
    if url is None:
        return None
    reference = nodes.reference("", "", internal=False, refuri=url)
    reference += contnode
    return reference


def setup(app):
    app.connect("missing-reference", _external_reference)
