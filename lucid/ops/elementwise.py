"""Elementwise functions: ``exp``, ``log`` and ``where``, with their vjps.

The vjps recompute what they need from the saved inputs with lucid operations
(``exp`` differentiates to ``grad * x.exp()``) rather than keeping the numpy
result, so that the backward is itself differentiable.
"""

import numpy as np

from lucid._creation import as_tensor
from lucid.autograd.function import Function
from lucid.ops._operands import promote
from lucid.ops.broadcasting import unbroadcast


def _floating(x, name):
    x = as_tensor(x, "x")
    if x.dtype.kind != "f":
        raise TypeError(f"{name} expects a floating point tensor, got dtype {x.dtype}")
    return x


class _Exp(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.exp(x._data)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.exp()


class _Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x._data)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


def exp(x):
    """Exponential, elementwise.

    Parameters
    ----------
    x : Tensor
        Floating point.

    Returns
    -------
    Tensor

    Raises
    ------
    TypeError
        If `x` is not floating point.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([0.0, 1.0]).exp()
    Tensor([1.      , 2.718282])
    """
    return _Exp.apply(_floating(x, "exp"))


def log(x):
    """Natural logarithm, elementwise (``log(0) = -inf``, negative values give NaN, silently).

    Parameters
    ----------
    x : Tensor
        Floating point.

    Returns
    -------
    Tensor

    Raises
    ------
    TypeError
        If `x` is not floating point.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 0.0]).log()
    Tensor([  0., -inf])
    """
    return _Log.apply(_floating(x, "log"))


class _Where(Function):
    @staticmethod
    def forward(ctx, condition, a, b, dtype):
        ctx.condition = condition
        ctx.shapes = (a.shape, b.shape)
        return np.where(condition, a._data, b._data).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        a_shape, b_shape = ctx.shapes
        a_grad = b_grad = None
        if ctx.needs_input_grad[1]:
            a_grad = unbroadcast(where(ctx.condition, grad, 0), a_shape)
        if ctx.needs_input_grad[2]:
            b_grad = unbroadcast(where(ctx.condition, 0, grad), b_shape)
        return None, a_grad, b_grad, None


def where(condition, a, b):
    """Choose elementwise from `a` where `condition` holds, else from `b`.

    Parameters
    ----------
    condition : Tensor or array-like of bool
    a, b : Tensor, array-like or Python scalar
        Broadcast together with `condition`.

    Returns
    -------
    Tensor
        Differentiable with respect to `a` and `b`; each gets the gradient
        where it was chosen and 0 elsewhere (never ``0 * inf``).

    Examples
    --------
    >>> import lucid
    >>> from lucid.ops.elementwise import where
    >>> x = lucid.tensor([-1.0, 2.0])
    >>> where(x > 0, x, 0)
    Tensor([0., 2.])
    """
    condition = np.asarray(as_tensor(condition, "condition")._data, dtype=bool)
    (a, b), dtype = promote(a, b)
    return _Where.apply(condition, a, b, dtype)
