"""Broadcasting and its adjoint: ``broadcast_to`` and ``unbroadcast``.

An operation that broadcast an input must sum the gradient back to that
input's shape; :func:`unbroadcast` does it with lucid's differentiable ``sum``,
so it records itself under ``create_graph=True``. It handles inputs with fewer
dimensions than the gradient (sum the leading axes) as well as size-1 axes.
"""

import numpy as np

from lucid.autograd.function import Function


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing numpy broadcasting.

    Parameters
    ----------
    grad : Tensor
        A gradient with the broadcast shape.
    shape : tuple of int
        The shape of the input that was broadcast.

    Returns
    -------
    Tensor
        `grad` itself when the shapes already agree.

    Raises
    ------
    ValueError
        If `shape` does not broadcast to ``grad.shape``.

    Notes
    -----
    Leading axes that `shape` lacks are summed away first, then the axes where
    `shape` has size 1 are summed with ``keepdim=True``.

    Examples
    --------
    >>> import lucid
    >>> from lucid.ops.broadcasting import unbroadcast
    >>> g = lucid.ones(2, 3, 4)
    >>> unbroadcast(g, (3, 1)).shape
    (3, 1)
    >>> unbroadcast(g, (3, 1))[:, 0]
    Tensor([8., 8., 8.])
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)
    if leading < 0 or any(n not in (1, m) for n, m in zip(shape, grad.shape[leading:])):
        raise ValueError(f"a gradient of shape {grad.shape} cannot be summed to shape {shape}")
    if leading:
        grad = grad.sum(dim=tuple(range(leading)))
    size_one_axes = tuple(axis for axis, n in enumerate(shape) if n == 1 and grad.shape[axis] != 1)
    if size_one_axes:
        grad = grad.sum(dim=size_one_axes, keepdim=True)
    return grad


class _BroadcastTo(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return np.broadcast_to(x._data, shape)

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.input_shape), None


def broadcast_to(x, shape):
    """Broadcast `x` to `shape` (a read-only view, no copy).

    Parameters
    ----------
    x : Tensor
    shape : tuple of int

    Returns
    -------
    Tensor
        A view with zero strides along the broadcast axes.

    Raises
    ------
    ValueError
        If `x` does not broadcast to `shape`.

    Examples
    --------
    >>> import lucid
    >>> from lucid.ops.broadcasting import broadcast_to
    >>> broadcast_to(lucid.tensor([1.0, 2.0]), (2, 2))
    Tensor([[1., 2.],
            [1., 2.]])
    """
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return _BroadcastTo.apply(x, shape)

