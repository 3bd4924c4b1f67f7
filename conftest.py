"""Running the tests without the optional extras: what needs a missing one is skipped, not an error.

Test files skip themselves with ``pytest.importorskip``. Doctests cannot, so
here a doctest whose examples import a module of a missing extra (scipy,
threadpoolctl, Dask ...) is marked skipped, naming the module; and
``lucid/dask.py``, which pytest imports to collect its doctests and which
without Dask raises an ImportError naming the extra (by design), is left out.
"""
import importlib.util
import re

import pytest

# Top-level modules of the optional extras (test, docs, dask, eval, plot) and the reference framework.
OPTIONAL_MODULES = {"dask", "distributed", "hypothesis", "matplotlib", "scipy", "threadpoolctl", "torch", "tqdm"}
IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)")


def _missing(module):
    return importlib.util.find_spec(module) is None


collect_ignore = ["lucid/dask.py"] if _missing("dask") or _missing("distributed") else []


def _missing_imports(doctest):
    found = (IMPORT.match(example.source) for example in doctest.examples)
    return sorted({m.group(1) for m in found if m and m.group(1) in OPTIONAL_MODULES and _missing(m.group(1))})


def pytest_collection_modifyitems(config, items):
    for item in items:
        doctest = getattr(item, "dtest", None)
        missing = _missing_imports(doctest) if doctest is not None else []
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)} (an optional extra)"))


def pytest_report_header(config):
    return [f"not collected without Dask: {', '.join(collect_ignore)}"] if collect_ignore else []
