"""Arithmetic: ``+ - * / ** @`` and negation, with their vjps.

Every binary operation broadcasts as numpy does; its vjp sums each gradient
back to its input's shape with :func:`~lucid.ops.broadcasting.unbroadcast`.
The vjps are written with lucid operations so that they can themselves be
differentiated (``create_graph=True``).
"""

import numpy as np

from lucid import _dtypes
from lucid.autograd.function import Function
from lucid.ops._operands import promote
from lucid.ops.broadcasting import unbroadcast
from lucid.ops.elementwise import where


def _gradient(ctx, index, grad, shape):
    """``unbroadcast(grad, shape)`` if input `index` wants a gradient, else None."""
    return unbroadcast(grad, shape) if ctx.needs_input_grad[index] else None


class _Add(Function):
    @staticmethod
    def forward(ctx, a, b, dtype):
        ctx.shapes = (a.shape, b.shape)
        return np.add(a._data, b._data, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        a_shape, b_shape = ctx.shapes
        return _gradient(ctx, 0, grad, a_shape), _gradient(ctx, 1, grad, b_shape), None


class _Sub(Function):
    @staticmethod
    def forward(ctx, a, b, dtype):
        ctx.shapes = (a.shape, b.shape)
        return np.subtract(a._data, b._data, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        a_shape, b_shape = ctx.shapes
        b_grad = _gradient(ctx, 1, grad, b_shape)
        return _gradient(ctx, 0, grad, a_shape), None if b_grad is None else -b_grad, None


class _Mul(Function):
    @staticmethod
    def forward(ctx, a, b, dtype):
        ctx.save_for_backward(a, b)
        return np.multiply(a._data, b._data, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a_grad = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        b_grad = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return a_grad, b_grad, None


class _Div(Function):
    @staticmethod
    def forward(ctx, a, b, dtype):
        ctx.save_for_backward(a, b)
        return np.true_divide(a._data, b._data, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a_grad = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        b_grad = unbroadcast(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return a_grad, b_grad, None


class _Pow(Function):
    @staticmethod
    def forward(ctx, a, b, dtype):
        ctx.save_for_backward(a, b)
        return np.power(a._data, b._data, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a_grad = b_grad = None
        if ctx.needs_input_grad[0]:
            # d/da a**b = b * a**(b-1), which is 0 (not 0 * inf) when b == 0.
            a_grad = unbroadcast(where(b._data == 0, 0, grad * b * a ** (b - 1)), a.shape)
        if ctx.needs_input_grad[1]:
            # d/db a**b = a**b * log(a), taken as 0 at a == 0 for b >= 0 (the limit).
            at_zero = (a._data == 0) & (b._data >= 0)
            b_grad = unbroadcast(where(at_zero, 0, grad * a ** b * a.log()), b.shape)
        return a_grad, b_grad, None


class _Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return np.negative(x._data)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _binary(function, a, b, dtype=None):
    (a, b), result_dtype = promote(a, b)
    return function.apply(a, b, result_dtype if dtype is None else dtype)


def add(a, b):
    """Add `a` and `b` elementwise, broadcasting (the ``+`` operator).

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar
        At least one is usually a Tensor; Python scalars are weak operands.

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0]) + 1
    Tensor([2., 3.])
    """
    return _binary(_Add, a, b)


def sub(a, b):
    """Subtract `b` from `a` elementwise, broadcasting (the ``-`` operator).

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> 1 - lucid.tensor([1.0, 2.0])
    Tensor([ 0., -1.])
    """
    return _binary(_Sub, a, b)


def mul(a, b):
    """Multiply `a` and `b` elementwise, broadcasting (the ``*`` operator).

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([[1.0], [2.0]]) * lucid.tensor([1.0, 10.0])
    Tensor([[ 1., 10.],
            [ 2., 20.]])
    """
    return _binary(_Mul, a, b)


def div(a, b):
    """Divide `a` by `b` elementwise (true division, the ``/`` operator).

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        Floating point: integer operands give float32, as in the reference
        framework.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1, 2]) / 2
    Tensor([0.5, 1. ])
    """
    (a, b), dtype = promote(a, b)
    return _Div.apply(a, b, dtype if dtype.kind == "f" else _dtypes.float32)


def pow(a, b):
    """Raise `a` to the power `b` elementwise (the ``**`` operator).

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor

    Notes
    -----
    The gradient with respect to the exponent is taken as 0 where ``a == 0``
    and ``b >= 0``, and the gradient with respect to the base as 0 where
    ``b == 0``, as in the reference framework.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0, 3.0]) ** 2
    Tensor([1., 4., 9.])
    """
    return _binary(_Pow, a, b)


def neg(x):
    """Negate `x` elementwise (unary ``-``).

    Parameters
    ----------
    x : Tensor

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> -lucid.tensor([1.0, -2.0])
    Tensor([-1.,  2.])
    """
    return _Neg.apply(x)


class _MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a._data, b._data)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # Promote 1-d operands to matrices as matmul does, differentiate the
        # matrix product, then drop the added axes again.
        a2 = a.unsqueeze(0) if a.ndim == 1 else a
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        grad2 = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        a_grad = b_grad = None
        if ctx.needs_input_grad[0]:
            a_grad = unbroadcast(grad2 @ b2.transpose(-1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            b_grad = unbroadcast(a2.transpose(-1, -2) @ grad2, b2.shape).reshape(b.shape)
        return a_grad, b_grad


def matmul(a, b):
    """Matrix product of `a` and `b` with numpy's ``matmul`` rules (the ``@`` operator).

    Parameters
    ----------
    a, b : Tensor or array-like
        At least 1-d; leading (batch) dimensions broadcast.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        If an operand is 0-d or the inner dimensions differ.

    Examples
    --------
    >>> import lucid
    >>> a = lucid.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> a @ lucid.tensor([1.0, 1.0])
    Tensor([3., 7.])
    """
    (a, b), _ = promote(a, b)
    if min(a.ndim, b.ndim) == 0:
        raise ValueError(
            f"both arguments to matmul need to be at least 1-d, got shapes {a.shape} and {b.shape}"
        )
    return _MatMul.apply(a, b)

