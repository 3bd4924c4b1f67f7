"""Every public function and class documents itself the numpydoc way.

Walks the public names of lucid's public modules (``__all__``) and, for each
function, class and public method or property defined in lucid, checks the
sections a reader relies on:

- functions and methods: Parameters (when they take any beyond ``self``),
  Returns, Examples with at least one ``>>>`` line, and Raises when their own
  body contains a ``raise`` statement;
- classes: Parameters when their ``__init__`` takes any (or an Attributes
  section naming them all, as for a dataclass), Examples, and Raises when
  ``__init__`` raises; their methods are checked as functions;
- properties: Examples.

Modules that do not exist, and ``lucid.dask`` without Dask installed, are
skipped. The examples themselves run as
doctests (``--doctest-modules``); this test makes sure there is one to run.
"""
import ast
import importlib
import importlib.util
import inspect
import re
import textwrap

import pytest

PUBLIC_MODULES = [
    "lucid",
    "lucid.nn",
    "lucid.nn.functional",
    "lucid.autograd",
    "lucid.metrics",
    "lucid.dask",
    "lucid.eval",
]
# Modules that need an optional extra to import.
OPTIONAL_MODULES = {"lucid.dask"}

SECTION = re.compile(r"^[ \t]*([A-Z][A-Za-z ]+)\n[ \t]*-{3,}[ \t]*$", re.MULTILINE)


def sections(docstring):
    """Map each numpydoc section title to its text."""
    docstring = inspect.cleandoc(docstring or "")
    found = list(SECTION.finditer(docstring))
    return {
        match.group(1): docstring[match.end():found[i + 1].start() if i + 1 < len(found) else None]
        for i, match in enumerate(found)
    }


def is_lucid(obj):
    return (getattr(obj, "__module__", "") or "").split(".")[0] == "lucid"


def raises_directly(function):
    """True when the function's own body (not its helpers) has a raise statement."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return False
    return any(isinstance(node, ast.Raise) for node in ast.walk(ast.parse(source)))


def takes_parameters(function, skip_first):
    try:
        parameters = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return len(parameters) > (1 if skip_first else 0)


def public_objects():
    """(qualified name, kind, object) for every documented public callable."""
    seen = set()
    for module_name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            if module_name in OPTIONAL_MODULES or importlib.util.find_spec(module_name) is None:
                continue
            raise
        for name in getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]):
            obj = getattr(module, name)
            if not is_lucid(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            qualified = f"{module_name}.{name}"
            if inspect.isclass(obj):
                yield qualified, "class", obj
                yield from class_members(qualified, obj, seen)
            elif callable(obj) and not inspect.ismodule(obj):
                yield qualified, "function", obj


def class_members(qualified, cls, seen):
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            yield f"{qualified}.{name}", "property", member.fget
        elif isinstance(member, (staticmethod, classmethod)):
            yield f"{qualified}.{name}", "function", member.__func__
        elif inspect.isfunction(member) and is_lucid(member):
            kind = "function" if id(member) in seen else "method"
            seen.add(id(member))
            yield f"{qualified}.{name}", kind, member


def attributes_list_parameters(init, found):
    """True when an Attributes section names every constructor parameter (dataclasses)."""
    attributes = found.get("Attributes", "")
    names = list(inspect.signature(init).parameters)[1:]
    return bool(attributes) and all(re.search(rf"\b{name}\b", attributes) for name in names)


def missing_sections(kind, obj):
    found = sections(obj.__doc__)
    missing = []
    if kind in ("function", "method"):
        if takes_parameters(obj, skip_first=kind == "method") and "Parameters" not in found:
            missing.append("Parameters")
        if "Returns" not in found and "Yields" not in found:
            missing.append("Returns")
        if raises_directly(obj) and "Raises" not in found:
            missing.append("Raises")
    elif kind == "class":
        init = vars(obj).get("__init__")
        if init is not None and takes_parameters(init, skip_first=True) and not (
                "Parameters" in found or attributes_list_parameters(init, found)):
            missing.append("Parameters")
        if init is not None and raises_directly(init) and "Raises" not in found:
            missing.append("Raises")
    if ">>>" not in found.get("Examples", ""):
        missing.append("Examples with >>>")
    return missing


OBJECTS = list(public_objects())


def test_the_walk_finds_the_public_api():
    names = {name for name, _, _ in OBJECTS}
    for expected in ["lucid.tensor", "lucid.Tensor", "lucid.Tensor.backward", "lucid.Tensor.exp",
                     "lucid.nn.functional.kl_div", "lucid.nn.KLDivLoss", "lucid.autograd.grad",
                     "lucid.set_num_threads"]:
        assert expected in names


@pytest.mark.parametrize("name, kind, obj", OBJECTS, ids=[name for name, _, _ in OBJECTS])
def test_public_callable_has_numpydoc_sections(name, kind, obj):
    assert obj.__doc__, f"{name} has no docstring"
    missing = missing_sections(kind, obj)
    assert not missing, f"{name} ({kind}) lacks: {', '.join(missing)}"
