"""lucid's modules import downwards only, and no file imports one that imports it back.

The floors, bottom first: the dtype, dimension and KL-argument helpers and the kernels;
``Tensor``; the creation functions; the autograd tape; the ops; the module
that attaches the ops to ``Tensor``. A file may import its own floor or a lower
one. Imports inside functions count too: they tie files together just the same.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "lucid"

FLOORS = [
    ("lucid._dtypes", "lucid._dims", "lucid._kl_rules", "lucid._ext"),
    ("lucid._tensor",),
    ("lucid._creation",),
    ("lucid.autograd",),
    ("lucid.ops",),
    ("lucid._tensor_methods",),
]


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path):
    """The lucid modules a file imports (``from lucid import x`` names module x when it is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
    return {name for name in found if name == "lucid" or name.startswith("lucid.")}


def floor_of(name):
    for level, prefixes in enumerate(FLOORS):
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            return level
    return None


FLOORED = [name for name in MODULES if floor_of(name) is not None and not name.endswith("__init__")]


@pytest.mark.parametrize("name", FLOORED)
def test_module_imports_only_its_floor_or_lower(name):
    upward = sorted(target for target in imported_modules(MODULES[name])
                    if floor_of(target) is None or floor_of(target) > floor_of(name))
    assert not upward, f"{name} (floor {floor_of(name)}) imports {upward} from above"


def test_no_import_circle():
    # A package __init__ only hands names on, so arrows out of one are not followed.
    edges = {name: {target for target in imported_modules(path) if target in MODULES and target != name}
             for name, path in MODULES.items() if path.name != "__init__.py"}
    state = {}

    def visit(start):
        stack = [(start, iter(sorted(edges.get(start, ()))))]
        state[start] = "open"
        while stack:
            node, targets = stack[-1]
            for target in targets:
                if state.get(target) == "open":
                    path = [entry for entry, _ in stack]
                    return path[path.index(target):] + [target]
                if target not in state:
                    state[target] = "open"
                    stack.append((target, iter(sorted(edges.get(target, ())))))
                    break
            else:
                state[node] = "done"
                stack.pop()
        return None

    for name in sorted(edges):
        if name not in state:
            circle = visit(name)
            assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_floors_name_real_modules():
    for prefixes in FLOORS:
        for prefix in prefixes:
            assert prefix in MODULES, prefix
