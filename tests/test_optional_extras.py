"""Test files import an optional extra only after ``pytest.importorskip`` of it.

``pytest`` without the extras (hypothesis, scipy, Dask, threadpoolctl, tqdm,
the reference framework ...) must skip what needs them, not stop at
collection: a module-level ``import scipy`` in one file is enough to turn the
whole run into an error. Imports inside test functions are free to follow
their own ``importorskip``.
"""
import ast
import pathlib

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
OPTIONAL = {"dask", "distributed", "hypothesis", "matplotlib", "ml_dtypes", "safetensors", "scipy",
            "threadpoolctl", "torch", "tqdm"}


def unguarded_optional_imports(path):
    """Module-level imports of optional packages with no importorskip of them above."""
    skipped, unguarded = set(), []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        for call in ast.walk(node):
            if (isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "importorskip"
                    and call.args and isinstance(call.args[0], ast.Constant)):
                skipped.add(call.args[0].value.split(".")[0])
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        unguarded += [f"line {node.lineno}: {name}" for name in names
                      if name.split(".")[0] in OPTIONAL and name.split(".")[0] not in skipped]
    return unguarded


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda path: path.name)
def test_optional_extras_are_imported_behind_importorskip(path):
    assert not unguarded_optional_imports(path), unguarded_optional_imports(path)


def test_the_check_sees_an_unguarded_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import pytest\nfrom scipy.special import softmax\n"
                      "da = pytest.importorskip('dask.array')\nimport dask.array\n")
    assert unguarded_optional_imports(sample) == ["line 2: scipy.special"]
