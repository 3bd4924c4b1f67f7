"""Sphinx configuration for lucid's documentation.

The API pages come from the numpydoc docstrings (autodoc + autosummary); the
guides are ``.rst`` pages whose ``>>>`` examples pytest runs as doctests (so
Sphinx runs none of them). The ``--help`` text of ``python -m lucid.eval`` is
written into the API pages' generated folder here. Build with

    pip install -e ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html

and open docs/_build/html/index.html: MathJax comes with the build, so the
pages, formulas included, read without a network.
"""
import os

import lucid
from lucid.eval.cli import build_parser

_here = os.path.dirname(os.path.abspath(__file__))

project = "lucid"
author = "the lucid developers"
copyright = "2026, the lucid developers"
release = version = lucid.__version__


def _write_eval_help(path):
    """Write the ``--help`` of ``python -m lucid.eval`` for its API page, 80 columns wide."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        text = build_parser().format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Rewritten only when it changes, so that Sphinx does not rebuild the page each time.
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


_write_eval_help(os.path.join(_here, "api", "generated", "eval_help.txt"))

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # Copies MathJax 3 into _static and points the pages at it: formulas render offline.
    "sphinx-mathjax-offline",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_copybutton",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
html_static_path = ["_static"]

html_theme = "furo"
html_title = f"lucid {release}"

# autodoc / autosummary: one generated page per public name (docs/api/generated,
# not under version control), signatures without type hints (the docstrings
# carry the types, numpydoc style).
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
autodoc_default_options = {"member-order": "bysource"}

# numpydoc: class pages list their members through autosummary tables in the
# hand-written API pages, so numpydoc must not add a second list of its own
# (which also points at pages that do not exist and fails a -W build).
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# Doctest blocks render as Python; the copy button copies the code without the
# ">>> " / "... " prompts and without the expected output.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

# CI builds without network access, so intersphinx inventories (links to the
# Python and numpy docs) are fetched only when LUCID_DOCS_INTERSPHINX=1.
intersphinx_mapping = {}
if os.environ.get("LUCID_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
    }

# The pages load the MathJax that sphinx-mathjax-offline copies into the build;
# LUCID_MATHJAX_PATH points them at another copy instead.
if os.environ.get("LUCID_MATHJAX_PATH"):
    mathjax_path = os.environ["LUCID_MATHJAX_PATH"]
