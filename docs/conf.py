"""Sphinx configuration for lucid's documentation.

The API pages come from the numpydoc docstrings (autodoc + autosummary); the
guides are ``.rst`` pages whose ``>>>`` examples pytest runs as doctests, so
nothing here executes code from the pages. Build with

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""
import os
import re

_here = os.path.dirname(os.path.abspath(__file__))

project = "lucid"
author = "the lucid developers"
copyright = "2026, the lucid developers"


def _read_version():
    # Read the version without importing lucid, so a failing import is reported
    # by autodoc (with its traceback) rather than by this file.
    with open(os.path.join(_here, "..", "lucid", "_version.py"), encoding="utf-8") as handle:
        return re.search(r'__version__ = "([^"]+)"', handle.read()).group(1)


release = version = _read_version()

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
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

# MathJax is loaded by the reader's browser from its default location; set
# LUCID_MATHJAX_PATH to a local copy to render math offline (the screenshot
# script in docs/_tools does this).
if os.environ.get("LUCID_MATHJAX_PATH"):
    mathjax_path = os.environ["LUCID_MATHJAX_PATH"]
