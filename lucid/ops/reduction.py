"""Reductions: ``sum``, ``mean`` and ``max``, with their vjps.

float16 inputs are accumulated in float32 and the result rounded back once,
as the reference framework does, so a long float16 sum does not drift.
The gradient of a reduction broadcasts the upstream gradient back over the
reduced axes (:func:`~lucid.ops.broadcasting.broadcast_to`, a view: no copy).
"""

import collections

import numpy as np

from lucid import _dtypes
from lucid._tensor import Tensor
from lucid.autograd.function import Function
from lucid.ops import indexing
from lucid._dims import normalize_dim, normalize_dims
from lucid.ops.broadcasting import broadcast_to

MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])
MaxResult.__doc__ = "The result of ``max(x, dim)``: the maxima (differentiable) and their int64 indices."


def _accumulation_dtype(dtype):
    return _dtypes.float32 if dtype == _dtypes.float16 else None


def _kept_shape(shape, dims):
    """`shape` with the reduced `dims` set to 1 (the result's shape under keepdim=True)."""
    return tuple(1 if axis in dims else n for axis, n in enumerate(shape))


class _Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        total = np.sum(x._data, axis=dims, keepdims=keepdim, dtype=_accumulation_dtype(x.dtype))
        return total.astype(x.dtype) if x.dtype == _dtypes.float16 else total

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdim:
            grad = grad.reshape(_kept_shape(ctx.shape, ctx.dims))
        return broadcast_to(grad, ctx.shape), None, None


def sum(x, dim=None, keepdim=False):
    """Sum the elements of `x`, over all of them or over `dim`.

    Parameters
    ----------
    x : Tensor
    dim : int or tuple of int, optional
        The dimensions to reduce; all by default.
    keepdim : bool, default False
        Keep the reduced dimensions with size 1.

    Returns
    -------
    Tensor
        Bool and integer inputs give int64.

    Raises
    ------
    IndexError
        If a dimension is out of range.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.sum()
    Tensor(10.)
    >>> x.sum(dim=1, keepdim=True)
    Tensor([[3.],
            [7.]])
    """
    return _Sum.apply(x, normalize_dims(dim, x.ndim), bool(keepdim))


class _Mean(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        ctx.count = int(np.prod([x.shape[axis] for axis in dims]))
        total = np.sum(x._data, axis=dims, keepdims=keepdim, dtype=_accumulation_dtype(x.dtype))
        # Division by a zero count gives NaN for empty inputs, without numpy's warning.
        return np.true_divide(total, ctx.count).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdim:
            grad = grad.reshape(_kept_shape(ctx.shape, ctx.dims))
        return broadcast_to(grad / ctx.count, ctx.shape), None, None


def mean(x, dim=None, keepdim=False):
    """Average the elements of `x`, over all of them or over `dim`.

    Parameters
    ----------
    x : Tensor
        Floating point.
    dim : int or tuple of int, optional
        The dimensions to reduce; all by default.
    keepdim : bool, default False

    Returns
    -------
    Tensor
        NaN for an empty reduction.

    Raises
    ------
    TypeError
        If `x` is not floating point.
    IndexError
        If a dimension is out of range.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([[1.0, 2.0], [3.0, 5.0]]).mean(dim=0)
    Tensor([2. , 3.5])
    """
    if x.dtype.kind != "f":
        raise TypeError(f"mean expects a floating point tensor, got dtype {x.dtype}")
    return _Mean.apply(x, normalize_dims(dim, x.ndim), bool(keepdim))


class _Max(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.max(x._data)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # Ties share the gradient evenly, as in the reference framework.
        value = np.max(x._data)
        ties = (x._data == value) | (np.isnan(x._data) & np.isnan(value))
        # np.asarray: on a 0-d input the division gives a numpy scalar.
        return grad * Tensor(np.asarray(ties / np.count_nonzero(ties), dtype=x.dtype))


def max(x, dim=None, keepdim=False):
    """Largest element of `x`, or the largest along `dim` with its index.

    Parameters
    ----------
    x : Tensor
    dim : int, optional
        Without it, the maximum of all elements is returned.
    keepdim : bool, default False

    Returns
    -------
    Tensor or MaxResult
        Without `dim`, a 0-d tensor. With `dim`, a named tuple ``(values,
        indices)``: the maxima (differentiable) and the int64 index of the
        first maximum. NaN counts as the largest value.

    Raises
    ------
    IndexError
        If `dim` is out of range.
    RuntimeError
        If the reduction is over no elements.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([[1.0, 5.0], [7.0, 2.0]])
    >>> x.max()
    Tensor(7.)
    >>> values, indices = x.max(dim=1)
    >>> values, indices
    (Tensor([5., 7.]), Tensor([1, 0], dtype=int64))
    """
    if dim is None:
        if x.numel() == 0:
            raise RuntimeError("max(): Expected reduction dim to be specified for input.numel() == 0.")
        return _Max.apply(x)
    axis = normalize_dim(dim, x.ndim)
    source = x.reshape(1) if x.ndim == 0 else x
    if source.shape[axis] == 0:
        raise RuntimeError(f"max(): Expected reduction dim {axis} to have non-zero size.")
    indices = np.expand_dims(np.argmax(source._data, axis=axis), axis)
    values = indexing.take_along_dim(source, indices, axis)
    if x.ndim == 0:
        return MaxResult(values.reshape(()), Tensor(np.zeros((), dtype=np.int64)))
    if not keepdim:
        values, indices = values.squeeze(axis), np.squeeze(indices, axis)
    return MaxResult(values, Tensor(indices.astype(np.int64, copy=False)))
