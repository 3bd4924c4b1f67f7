"""Conversions: ``to`` (dtype casts) and ``clone``, which stay on the graph, and
``numpy``, ``item``, ``tolist``, which leave lucid.

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


def numpy(x):
    """Return the underlying numpy array (shared memory, no copy).

    Parameters
    ----------
    x : Tensor

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    RuntimeError
        If the tensor requires grad (call ``detach()`` first, as in the
        reference framework, so gradients are not silently lost).

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1, 2]).numpy()
    array([1, 2])
    """
    if x.requires_grad:
        raise RuntimeError(
            "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
        )
    return x._data


def item(x):
    """Return the value of a one-element tensor as a Python number.

    Parameters
    ----------
    x : Tensor

    Returns
    -------
    float, int or bool

    Raises
    ------
    RuntimeError
        If the tensor has more than one element.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([2.5]).item()
    2.5
    """
    if x._data.size != 1:
        raise RuntimeError(f"a Tensor with {x._data.size} elements cannot be converted to Scalar")
    return x._data.item()


def tolist(x):
    """Return the values as (nested) Python lists of Python numbers.

    Parameters
    ----------
    x : Tensor

    Returns
    -------
    list or number
        A number for a 0-d tensor.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([[1, 2], [3, 4]]).tolist()
    [[1, 2], [3, 4]]
    """
    return x._data.tolist()
