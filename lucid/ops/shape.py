"""Shape operations: ``reshape``, ``view``, ``transpose``, ``permute``, ``unsqueeze``, ``squeeze``.

Their results are numpy views whenever numpy can make one (``view`` insists on
it), and a view shares its base's version counter, so an in-place write
through either is seen by the autograd checks. Each vjp is the inverse
reshaping of the gradient.
"""

import numpy as np

from lucid.autograd.function import Function
from lucid._dims import int_tuple_argument, normalize_dim, normalize_dims


class _Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return np.reshape(x._data, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape), None


class _View(_Reshape):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        result = np.reshape(x._data, shape)
        if result.size and not np.may_share_memory(result, x._data):
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one dimension "
                "spans across two contiguous subspaces). Use .reshape(...) instead."
            )
        return result


class _Unsqueeze(_Reshape):
    """A reshape named for what it does, so ``grad_fn`` reads ``<UnsqueezeBackward>``."""


class _Squeeze(_Reshape):
    """A reshape named for what it does, so ``grad_fn`` reads ``<SqueezeBackward>``."""


def reshape(x, *shape):
    """Return `x` with a new shape and the same elements (a view when possible).

    Parameters
    ----------
    x : Tensor
    *shape : int or a tuple of int
        One entry may be -1, inferred from the others.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        If the number of elements differs.

    Examples
    --------
    >>> import lucid
    >>> lucid.arange(6).reshape(2, -1)
    Tensor([[0, 1, 2],
            [3, 4, 5]], dtype=int64)
    """
    shape = int_tuple_argument(shape)
    return x if shape == x.shape else _Reshape.apply(x, shape)


def view(x, *shape):
    """Return a view of `x` with a new shape; never copies.

    Parameters
    ----------
    x : Tensor
    *shape : int or a tuple of int

    Returns
    -------
    Tensor
        Shares memory (and version counter) with `x`.

    Raises
    ------
    RuntimeError
        If the new shape cannot be expressed as a view of `x`'s memory (use
        :func:`reshape`).

    Examples
    --------
    >>> import lucid
    >>> x = lucid.zeros(4)
    >>> v = x.view(2, 2)
    >>> v[0, 0] = 1.0
    >>> x
    Tensor([1., 0., 0., 0.])
    """
    return _View.apply(x, int_tuple_argument(shape))


class _Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return np.transpose(x._data, dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.permute(tuple(np.argsort(ctx.dims).tolist())), None


def permute(x, *dims):
    """Reorder the dimensions of `x` (a view).

    Parameters
    ----------
    x : Tensor
    *dims : int or a tuple of int
        A permutation of the dimensions; negative values count from the end.

    Returns
    -------
    Tensor

    Raises
    ------
    RuntimeError
        If `dims` is not a permutation of ``range(x.ndim)``.

    Examples
    --------
    >>> import lucid
    >>> lucid.zeros(2, 3, 4).permute(2, 0, 1).shape
    (4, 2, 3)
    """
    dims = int_tuple_argument(dims)
    if len(dims) != x.ndim:
        raise RuntimeError(f"permute(): number of dims {len(dims)} does not match the tensor's {x.ndim}")
    normalize_dims(dims, x.ndim)  # raises on a repeated dimension
    return _Permute.apply(x, tuple(normalize_dim(dim, x.ndim) for dim in dims))


def transpose(x, dim0, dim1):
    """Swap two dimensions of `x` (a view).

    Parameters
    ----------
    x : Tensor
    dim0, dim1 : int

    Returns
    -------
    Tensor

    Raises
    ------
    IndexError
        If a dimension is out of range.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([[1, 2, 3]]).transpose(0, 1)
    Tensor([[1],
            [2],
            [3]], dtype=int64)
    """
    dim0, dim1 = normalize_dim(dim0, x.ndim), normalize_dim(dim1, x.ndim)
    if x.ndim < 2 or dim0 == dim1:
        return x
    order = list(range(x.ndim))
    order[dim0], order[dim1] = dim1, dim0
    return _Permute.apply(x, tuple(order))


def unsqueeze(x, dim):
    """Insert a dimension of size 1 at `dim` (a view).

    Parameters
    ----------
    x : Tensor
    dim : int
        In ``[-x.ndim - 1, x.ndim]``.

    Returns
    -------
    Tensor

    Raises
    ------
    IndexError
        If `dim` is out of range.

    Examples
    --------
    >>> import lucid
    >>> lucid.zeros(2, 3).unsqueeze(-1).shape
    (2, 3, 1)
    """
    axis = normalize_dim(dim, x.ndim, extra=1) if x.ndim else normalize_dim(dim, 1)
    shape = x.shape[:axis] + (1,) + x.shape[axis:]
    return _Unsqueeze.apply(x, shape)


def squeeze(x, dim=None):
    """Remove dimensions of size 1 (all of them, or those among `dim`), as a view.

    Parameters
    ----------
    x : Tensor
    dim : int or tuple of int, optional
        Dimensions whose size is not 1 are left alone, as in the reference
        framework.

    Returns
    -------
    Tensor

    Raises
    ------
    IndexError
        If a dimension is out of range.

    Examples
    --------
    >>> import lucid
    >>> lucid.zeros(1, 3, 1).squeeze().shape
    (3,)
    >>> lucid.zeros(1, 3, 1).squeeze(0).shape
    (3, 1)
    """
    dims = normalize_dims(dim, x.ndim)
    shape = tuple(n for axis, n in enumerate(x.shape) if not (axis in dims and n == 1))
    return x if shape == x.shape else _Squeeze.apply(x, shape)
