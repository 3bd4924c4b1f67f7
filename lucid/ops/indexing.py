"""Indexing: ``x[index]``, ``take_along_dim``, and the scatters that are their gradients.

The gradient of reading ``x[index]`` adds the upstream gradient into zeros at
``index`` (``numpy.add.at``, so repeated advanced indices accumulate); the
gradient of that scatter is reading at ``index`` again. Each pair refers to
the other, which keeps every derivative differentiable.
"""

import numpy as np

from lucid._creation import as_tensor
from lucid._tensor import Tensor
from lucid.autograd.function import Function
from lucid._dims import normalize_dim
from lucid.ops.broadcasting import unbroadcast
from lucid.ops.elementwise import where


def to_numpy_index(index):
    """Return `index` as numpy understands it: Tensors replaced by their arrays.

    Parameters
    ----------
    index : int, slice, None, Ellipsis, array-like, Tensor or a tuple of them

    Returns
    -------
    tuple
        An index tuple; a purely basic one gets a trailing ``...`` so that
        selecting a single element gives a 0-d view rather than a numpy
        scalar (a copy).

    Examples
    --------
    >>> import lucid
    >>> from lucid.ops.indexing import to_numpy_index
    >>> to_numpy_index((0, lucid.tensor([1, 2])))
    (0, array([1, 2]))
    >>> to_numpy_index(0)
    (0, Ellipsis)
    """
    parts = index if isinstance(index, tuple) else (index,)
    parts = tuple(part._data if isinstance(part, Tensor) else part for part in parts)
    if all(_is_basic(part) for part in parts) and Ellipsis not in parts:
        # x[0] on a 1-d array gives a numpy scalar (a copy); x[0, ...] gives a 0-d view.
        parts += (Ellipsis,)
    return parts


def _is_basic(part):
    if isinstance(part, np.ndarray):
        return part.ndim == 0 and part.dtype.kind in "iu"
    return part is None or part is Ellipsis or isinstance(part, (int, np.integer, slice)) and not isinstance(
        part, bool
    )


class _GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return x._data[index]

    @staticmethod
    def backward(ctx, grad):
        return _IndexAdd.apply(grad, ctx.index, ctx.shape), None


class _IndexAdd(Function):
    """Zeros of `shape` with `grad` added at `index`: the adjoint of reading ``x[index]``."""

    @staticmethod
    def forward(ctx, grad, index, shape):
        ctx.index = index
        result = np.zeros(shape, dtype=grad.dtype)
        np.add.at(result, index, grad._data)
        return result

    @staticmethod
    def backward(ctx, grad):
        return _GetItem.apply(grad, ctx.index), None, None


def getitem(x, index):
    """Read ``x[index]`` with numpy's indexing rules (the ``[]`` operator).

    Parameters
    ----------
    x : Tensor
    index : int, slice, None, Ellipsis, array-like, Tensor or a tuple of them
        Basic indexing gives a view; integer and bool arrays (or Tensors) give
        a copy, as in numpy.

    Returns
    -------
    Tensor
        Differentiable: the gradient is added back at `index`, so an element
        read twice receives both contributions.

    Raises
    ------
    IndexError
        If an index is out of range or of the wrong kind.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> x[1]
    Tensor([4., 5., 6.])
    >>> x[:, [0, 0]]
    Tensor([[1., 1.],
            [4., 4.]])
    >>> x[x > 4]
    Tensor([5., 6.])
    """
    return _GetItem.apply(x, to_numpy_index(index))


class _IndexPut(Function):
    @staticmethod
    def forward(ctx, x, value, index):
        ctx.index, ctx.value_shape = index, value.shape
        result = x._data.copy()
        result[index] = value._data
        return result

    @staticmethod
    def backward(ctx, grad):
        x_grad = value_grad = None
        if ctx.needs_input_grad[0]:
            # The overwritten elements no longer depend on x.
            kept = np.ones(grad.shape, dtype=bool)
            kept[ctx.index] = False
            x_grad = where(kept, grad, 0)
        if ctx.needs_input_grad[1]:
            value_grad = unbroadcast(_GetItem.apply(grad, ctx.index), ctx.value_shape)
        return x_grad, value_grad, None


def index_put(x, index, value):
    """Return a copy of `x` with ``copy[index] = value`` (out of place; the basis of ``x[index] = value``).

    Parameters
    ----------
    x : Tensor
    index : as for :func:`getitem`
    value : Tensor, array-like or Python scalar
        Broadcast to ``x[index]``'s shape and cast to `x`'s dtype.

    Returns
    -------
    Tensor
        Differentiable with respect to `x` (zero gradient where overwritten)
        and to `value`.

    Examples
    --------
    >>> import lucid
    >>> from lucid.ops.indexing import index_put
    >>> index_put(lucid.zeros(3), 1, 5.0)
    Tensor([0., 5., 0.])
    """
    if isinstance(value, Tensor):
        value = value if value.dtype == x.dtype else value.to(x.dtype)
    else:
        value = Tensor(np.asarray(as_tensor(value, "value")._data, dtype=x.dtype))
    return _IndexPut.apply(x, value, to_numpy_index(index))


def _along_dim_index(indices, dim):
    """An advanced index selecting ``indices`` along `dim` and every position elsewhere."""
    grids = list(np.ix_(*(np.arange(n) for n in indices.shape)))
    grids[dim] = indices
    return tuple(grids)


class _TakeAlongDim(Function):
    @staticmethod
    def forward(ctx, x, indices, dim):
        ctx.shape, ctx.indices, ctx.dim = x.shape, indices, dim
        return np.take_along_axis(x._data, indices, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        index = _along_dim_index(ctx.indices, ctx.dim)
        return _IndexAdd.apply(grad, index, ctx.shape), None, None


def take_along_dim(x, indices, dim):
    """Pick values of `x` along `dim` at `indices` (numpy's ``take_along_axis``).

    Parameters
    ----------
    x : Tensor
    indices : numpy.ndarray or Tensor of int
        Same number of dimensions as `x`.
    dim : int

    Returns
    -------
    Tensor
        Differentiable with respect to `x`.

    Examples
    --------
    >>> import numpy as np
    >>> import lucid
    >>> from lucid.ops.indexing import take_along_dim
    >>> x = lucid.tensor([[1.0, 5.0], [7.0, 2.0]])
    >>> take_along_dim(x, np.array([[1], [0]]), 1)
    Tensor([[5.],
            [7.]])
    """
    indices = indices._data if isinstance(indices, Tensor) else np.asarray(indices)
    return _TakeAlongDim.apply(x, indices, normalize_dim(dim, x.ndim))
