"""``log_softmax`` and ``softmax`` along one dimension.

Both subtract the maximum along ``dim`` before exponentiating, so large logits
neither overflow nor lose precision. A slice that is all ``-inf`` has no
maximum to subtract and gives NaN, as in the reference framework. float16
inputs are computed in float32 and rounded once at the end.

Each is a :class:`~lucid.autograd.Function` whose vjp is written with lucid
operations (and with the other softmax), so second derivatives through them
(``create_graph=True``, Hessian-vector products) are exact.
"""

import numpy as np

from lucid import _dtypes
from lucid._creation import as_tensor
from lucid.autograd.function import Function
from lucid._dims import normalize_dim


def _shifted_exponentials(data, axis):
    """``x - max(x)``, its exponential and the sum of that along `axis` (numpy, float32 or float64)."""
    # All -inf slices: -inf - (-inf) is NaN, which is the result wanted there.
    shifted = data - np.max(data, axis=axis, keepdims=True)
    exponentials = np.exp(shifted)
    return shifted, exponentials, np.sum(exponentials, axis=axis, keepdims=True)


def _computation_dtype(dtype):
    return _dtypes.float32 if dtype == _dtypes.float16 else dtype


def _widened(x):
    """`x`'s array in the dtype the computation runs in (float16 widened to float32)."""
    return x._data.astype(_computation_dtype(x.dtype), copy=False)


class _LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.save_for_backward(x)
        ctx.dim = dim
        shifted, _, total = _shifted_exponentials(_widened(x), dim)
        return (shifted - np.log(total)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        wide = _computation_dtype(x.dtype)
        grad_wide = grad.to(wide)
        probabilities = _Softmax.apply(x.to(wide), ctx.dim)
        x_grad = grad_wide - probabilities * grad_wide.sum(dim=ctx.dim, keepdim=True)
        return x_grad.to(x.dtype), None


class _Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.save_for_backward(x)
        ctx.dim = dim
        _, exponentials, total = _shifted_exponentials(_widened(x), dim)
        return (exponentials / total).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        wide = _computation_dtype(x.dtype)
        grad_wide = grad.to(wide)
        probabilities = _Softmax.apply(x.to(wide), ctx.dim)
        x_grad = probabilities * (grad_wide - (grad_wide * probabilities).sum(dim=ctx.dim, keepdim=True))
        return x_grad.to(x.dtype), None


def _apply(function, x, dim, name):
    """Check the arguments, then run `function` (_LogSoftmax or _Softmax) along `dim`."""
    x = as_tensor(x, "x")
    if not _dtypes.is_floating(x.dtype):
        raise TypeError(f"{name} expects a floating point input (float16, float32 or float64), got {x.dtype}")
    axis = normalize_dim(dim, x.ndim)
    if x.ndim == 0:
        # A 0-d tensor is a single slice; numpy needs an axis to reduce over.
        return function.apply(x.reshape(1), 0).reshape(())
    return function.apply(x, axis)


def log_softmax(x, dim):
    r"""Logarithm of the softmax along `dim`: ``x - log(sum(exp(x), dim))``.

    Parameters
    ----------
    x : Tensor or array-like
        Logits, floating point. Array-likes are read without copying.
    dim : int
        The dimension whose slices become log-probabilities.

    Returns
    -------
    Tensor
        Same shape and dtype as `x`; each slice along `dim` has
        ``exp(result).sum() == 1``.

    Raises
    ------
    TypeError
        If `x` is not floating point (or not numeric at all).
    IndexError
        If `dim` is out of range.

    Notes
    -----
    Computed as

    .. math:: \mathrm{log\_softmax}(x)_i = (x_i - m) - \log \sum_j e^{x_j - m},
              \quad m = \max_j x_j

    so that no exponential overflows. Slices that are all ``-inf`` give NaN
    (the reference framework's behaviour); a single ``-inf`` entry gives
    ``-inf`` there and is otherwise harmless. float16 is computed in float32.

    Examples
    --------
    >>> import lucid
    >>> from lucid.nn.functional.softmax import log_softmax
    >>> log_softmax(lucid.tensor([[1.0, 2.0, 3.0], [1000.0, 1000.0, float("-inf")]]), dim=1)
    Tensor([[-2.4076061, -1.407606 , -0.407606 ],
            [-0.6931472, -0.6931472,       -inf]])
    """
    return _apply(_LogSoftmax, x, dim, "log_softmax")


def softmax(x, dim):
    r"""Softmax along `dim`: ``exp(x) / sum(exp(x), dim)``, computed stably.

    Parameters
    ----------
    x : Tensor or array-like
        Logits, floating point. Array-likes are read without copying.
    dim : int
        The dimension whose slices become probabilities.

    Returns
    -------
    Tensor
        Same shape and dtype as `x`; each slice along `dim` sums to 1.

    Raises
    ------
    TypeError
        If `x` is not floating point (or not numeric at all).
    IndexError
        If `dim` is out of range.

    Notes
    -----
    .. math:: \mathrm{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},
              \quad m = \max_j x_j

    Slices that are all ``-inf`` give NaN, as in the reference framework.
    float16 is computed in float32.

    Examples
    --------
    >>> import lucid
    >>> from lucid.nn.functional.softmax import softmax
    >>> softmax(lucid.tensor([1.0, 2.0, 3.0]), dim=0)
    Tensor([0.09003057, 0.24472846, 0.66524094])
    >>> softmax(lucid.tensor([float("-inf"), float("-inf")]), dim=0)
    Tensor([nan, nan])
    """
    return _apply(_Softmax, x, dim, "softmax")
