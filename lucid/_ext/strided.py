"""Canonical 2-D views of same-shape strided arrays, for the 2-D kernels.

Broadcasting and odd layouts are handled here as *views*: inputs are broadcast
with ``np.broadcast_to`` (zero strides, no copy), size-1 axes are dropped and
adjacent axes that every operand can merge are merged. What remains is a list
of 2-D pieces; almost every layout (contiguous, transposed, reversed, broadcast)
becomes a single piece. Nothing is ever copied.
"""
import itertools

import numpy as np


def _merged_axes(shape, strides_list):
    """Merge adjacent axes wherever every operand is contiguous across them."""
    kept = [i for i, n in enumerate(shape) if n != 1]
    dims = [shape[i] for i in kept]
    strides = [[s[i] for i in kept] for s in strides_list]
    i = len(dims) - 1
    while i > 0:
        if all(s[i - 1] == s[i] * dims[i] for s in strides):
            dims[i - 1] *= dims[i]
            for s in strides:
                s[i - 1] = s[i]
                del s[i]
            del dims[i]
        i -= 1
    return dims, strides


def two_d_pieces(shape, *arrays):
    """Split arrays of one common ``shape`` into aligned lists of 2-D views.

    Parameters
    ----------
    shape : tuple of int
        The common shape; every array must already have it (broadcast views are fine).
    *arrays : numpy.ndarray
        The operands. Writeable operands give writeable views.

    Returns
    -------
    list of tuple of numpy.ndarray
        One tuple per piece, one 2-D view per operand, pieces in C order of the
        leading axes, so sums over pieces happen in a fixed order.
    """
    dims, strides = _merged_axes(tuple(shape), [a.strides for a in arrays])
    while len(dims) < 2:
        dims.insert(0, 1)
        for s in strides:
            s.insert(0, 0)
    views = [
        np.lib.stride_tricks.as_strided(a, shape=dims, strides=s, writeable=a.flags.writeable)
        for a, s in zip(arrays, strides)
    ]
    if len(dims) == 2:
        return [tuple(views)]
    return [tuple(v[index] for v in views)
            for index in itertools.product(*(range(n) for n in dims[:-2]))]
