"""Compiled kernels of lucid and their array-level wrappers.

Nothing here knows about Tensors or autograd: functions take numpy arrays and
return numpy arrays or floats. Imports only numpy and the compiled modules.

``simd_level()`` names the instruction set the kernels run with, chosen at
import from what the CPU supports and the ``LUCID_SIMD`` environment variable
(see ``_simd``).
"""
from lucid._ext._simd import simd_level
