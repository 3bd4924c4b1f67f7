"""Compiled kernels of lucid and their array-level wrappers.

Nothing here knows about Tensors or autograd: functions take numpy arrays and
return numpy arrays or floats. Imports only numpy and the compiled modules.
"""
