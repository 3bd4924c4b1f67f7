"""Axis merging for kernels that walk strided arrays themselves.

A shape and the strides of several same-shape operands describe the same
elements with fewer axes when size-1 axes are dropped and adjacent axes that
every operand walks as one are merged; the logical C order of the elements is
unchanged. (``_kl_div`` does the same in C for its own operands.)
"""


def _merged_axes(shape, strides_list):
    """Merge adjacent axes wherever every operand is contiguous across them.

    Returns ``(dims, strides)``: the remaining sizes and one list of strides
    per operand; no axis of size 1 remains (an empty shape gives empty lists).
    """
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
