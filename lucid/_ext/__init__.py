"""Compiled kernels of lucid and their array-level wrappers.

Nothing here knows about Tensors or autograd: functions take numpy arrays and
return numpy arrays or floats. Imports only numpy and the compiled modules.

``simd_level()`` names the instruction set the kernels run with, chosen at
import from what the CPU supports and the ``LUCID_SIMD`` environment variable
(see ``_simd``).
"""
import os as _os

try:
    from lucid._ext._simd import simd_level
except ModuleNotFoundError as _error:
    if _error.name is None or not _error.name.startswith("lucid._ext."):
        raise
    # numpy's way: an unbuilt source tree shadowing an installed lucid (``python -m``
    # and the interpreter started in the repository root put ./lucid first on the path)
    # gets a message that says what happened and what to do, not a private module name.
    raise ImportError(
        f"lucid's compiled kernels are missing from {_os.path.dirname(__file__)}: this "
        "looks like lucid's source tree, which has not been built in place. Build it "
        "with `pip install -e .` (or `python setup.py build_ext --inplace`), or run "
        "Python from another folder to use an installed lucid (`pip install .` installs "
        "the `lucid-eval` command, which works from anywhere)."
    ) from None
