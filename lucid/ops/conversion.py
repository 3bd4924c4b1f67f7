"""Conversions that stay on the graph: ``to`` (dtype casts) and ``clone``.

A cast is differentiable: its gradient is cast back to the source dtype, so a
float16 input that is computed on in float32 receives a float16 gradient.
"""

import numpy as np

from lucid import _dtypes
from lucid.autograd.function import Function


class _ToCopy(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.source_dtype = x.dtype
        return x._data.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.source_dtype), None


def to(x, dtype):
    """Return `x` converted to `dtype` (`x` itself when it already has it).

    Parameters
    ----------
    x : Tensor
    dtype : dtype or str
        For example ``lucid.float64`` or ``"float64"``.

    Returns
    -------
    Tensor
        A new tensor; differentiable when both dtypes are floating point (the
        gradient is cast back to ``x.dtype``).

    Raises
    ------
    TypeError
        If `dtype` is not a supported dtype.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([0.5], requires_grad=True)
    >>> y = x.to(lucid.float64)
    >>> y
    Tensor([0.5], dtype=float64, grad_fn=<ToCopyBackward>)
    >>> y.sum().backward()
    >>> x.grad.dtype
    dtype('float32')
    """
    dtype = _dtypes.to_dtype(dtype)
    if dtype is None:
        raise TypeError("to() needs a dtype, got None")
    return x if dtype == x.dtype else _ToCopy.apply(x, dtype)


class _Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return np.array(x._data, copy=True)

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(x):
    """Return a copy of `x` that owns its memory and stays on the graph.

    Parameters
    ----------
    x : Tensor

    Returns
    -------
    Tensor
        Same values and dtype; in-place changes to it do not reach `x`.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> x.clone()
    Tensor([1., 2.], grad_fn=<CloneBackward>)
    """
    return _Clone.apply(x)
