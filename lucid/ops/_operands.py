"""Turning the operands of a binary operation into tensors of the right dtype.

Shared by arithmetic, ``where`` and the in-place operators so that all of them
apply the same promotion rule (:func:`lucid._dtypes.result_type`: numpy's for
arrays, weak Python scalars as in the reference framework).
"""

import numpy as np

from lucid import _dtypes
from lucid._creation import as_tensor
from lucid._tensor import Tensor


def promote(*operands):
    """Return `operands` as Tensors together with their result dtype.

    Parameters
    ----------
    *operands : Tensor, array-like or Python scalar

    Returns
    -------
    tensors : tuple of Tensor
        Python scalars become 0-d tensors of the result dtype; everything else
        keeps its own dtype (numpy's ufuncs then promote it).
    dtype : numpy.dtype
        The dtype of the result.

    Examples
    --------
    >>> import lucid
    >>> from lucid.ops._operands import promote
    >>> (x, two), dtype = promote(lucid.ones(2, dtype=lucid.float16), 2)
    >>> two.dtype, dtype
    (dtype('float16'), dtype('float16'))
    """
    tensors = [
        op if isinstance(op, Tensor) or _dtypes.is_python_scalar(op) else as_tensor(op, "operand")
        for op in operands
    ]
    dtype = _dtypes.result_type(*tensors)
    tensors = tuple(
        Tensor(np.asarray(op, dtype=dtype)) if _dtypes.is_python_scalar(op) else op for op in tensors
    )
    return tensors, dtype
