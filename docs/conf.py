"""Sphinx configuration: API pages from the numpydoc docstrings, and a gallery
built from examples/plot_*.py (pip install -e ".[docs]"; sphinx-build docs docs/_build)."""

project = "skvae"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
}
html_theme = "alabaster"
