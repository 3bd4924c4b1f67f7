"""In-place operators: ``+= -= *= /=``, ``t[i] = v``, ``add_``, ``zero_`` and friends.

Each computes its result out of place with the ordinary (recorded) operation,
writes it into the tensor's array and bumps the version counter. When the
result requires grad, the tensor takes over the new history: the operation
was applied to a snapshot of the old values (so the new node does not see its
own write), and the tensor's ``grad_fn`` becomes the new node.

Refused, as in the reference framework, with grad mode on: writing into a
leaf that requires grad. Refused by lucid (the reference framework rewrites
the base's history instead): writing a value that requires grad through a
view, or writing through a view of a tensor that requires grad; lucid does
not rebase a base's history, so the result would be silently wrong.
"""

import numpy as np

from lucid._tensor import Tensor
from lucid.autograd import grad_mode
from lucid.ops import arithmetic, elementwise, indexing


def _apply_in_place(tensor, compute, *operands):
    """Replace `tensor`'s values with ``compute(tensor)``, keeping autograd consistent."""
    recording = grad_mode.is_grad_enabled() and (
        tensor.requires_grad or any(isinstance(op, Tensor) and op.requires_grad for op in operands)
    )
    if recording:
        _check_recordable(tensor)
        source = Tensor(tensor._data.copy())
        source.grad_fn, source._requires_grad = tensor.grad_fn, tensor.requires_grad
    else:
        source = tensor
    result = compute(source)
    if result.dtype != tensor.dtype:
        if not np.can_cast(result.dtype, tensor.dtype, "same_kind"):
            raise RuntimeError(
                f"result type {result.dtype} can't be cast to the desired output type {tensor.dtype}"
            )
        result = result.to(tensor.dtype)
    _write(tensor, lambda array: np.copyto(array, result._data))
    if recording:
        tensor.grad_fn, tensor._requires_grad = result.grad_fn, True
    return tensor


def _check_recordable(tensor):
    if tensor.is_leaf and tensor.requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if tensor._base is not None:
        raise RuntimeError(
            "lucid does not record in-place operations on a view when gradients are involved "
            "(the view's base would keep its old history); compute out of place instead, "
            "e.g. y = x.clone(); y[...] = value"
        )


def _write(tensor, write):
    if not tensor._data.flags.writeable:
        raise ValueError(
            "cannot write in place into a read-only tensor (its array is read-only, e.g. a memory-mapped "
            "file or a broadcast view); use clone() first"
        )
    write(tensor._data)
    tensor._bump_version()


def add_(x, other, alpha=1):
    """Add ``alpha * other`` to `x` in place.

    Parameters
    ----------
    x : Tensor
    other : Tensor, array-like or Python scalar
        Broadcast to `x`'s shape.
    alpha : int or float, default 1

    Returns
    -------
    Tensor
        `x`, with its version counter bumped.

    Raises
    ------
    RuntimeError
        If `x` is a leaf that requires grad (with grad mode on), or if the
        result's dtype cannot be cast to `x`'s (``int += float``).

    Examples
    --------
    >>> import lucid
    >>> x = lucid.zeros(2)
    >>> x.add_(lucid.ones(2), alpha=3)
    Tensor([3., 3.])
    >>> x += 1
    >>> x
    Tensor([4., 4.])
    """
    scaled = other if alpha == 1 else arithmetic.mul(other, alpha)
    return _apply_in_place(x, lambda source: arithmetic.add(source, scaled), scaled)


def sub_(x, other):
    """Subtract `other` from `x` in place (the ``-=`` operator).

    Parameters
    ----------
    x : Tensor
    other : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        `x`.

    Raises
    ------
    RuntimeError
        As :func:`add_`.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.ones(2)
    >>> x -= 0.5
    >>> x
    Tensor([0.5, 0.5])
    """
    return _apply_in_place(x, lambda source: arithmetic.sub(source, other), other)


def mul_(x, other):
    """Multiply `x` by `other` in place (the ``*=`` operator).

    Parameters
    ----------
    x : Tensor
    other : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        `x`.

    Raises
    ------
    RuntimeError
        As :func:`add_`.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.ones(2)
    >>> x.mul_(3)
    Tensor([3., 3.])
    """
    return _apply_in_place(x, lambda source: arithmetic.mul(source, other), other)


def div_(x, other):
    """Divide `x` by `other` in place (the ``/=`` operator).

    Parameters
    ----------
    x : Tensor
        Floating point (true division of an integer tensor cannot be stored
        in it).
    other : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        `x`.

    Raises
    ------
    RuntimeError
        As :func:`add_`.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.ones(2)
    >>> x /= 4
    >>> x
    Tensor([0.25, 0.25])
    """
    return _apply_in_place(x, lambda source: arithmetic.div(source, other), other)


def fill_(x, value):
    """Set every element of `x` to `value`, in place.

    Parameters
    ----------
    x : Tensor
    value : Python scalar or 0-d Tensor

    Returns
    -------
    Tensor
        `x`.

    Raises
    ------
    RuntimeError
        If `x` is a leaf that requires grad (with grad mode on).

    Examples
    --------
    >>> import lucid
    >>> lucid.zeros(3).fill_(2.5)
    Tensor([2.5, 2.5, 2.5])
    """
    return _apply_in_place(x, lambda source: elementwise.where(True, value, source), value)


def zero_(x):
    """Set every element of `x` to zero, in place.

    Parameters
    ----------
    x : Tensor

    Returns
    -------
    Tensor
        `x`.

    Raises
    ------
    RuntimeError
        If `x` is a leaf that requires grad (with grad mode on).

    Examples
    --------
    >>> import lucid
    >>> lucid.ones(2).zero_()
    Tensor([0., 0.])
    """
    return fill_(x, 0)


def setitem(x, index, value):
    """Write `value` into ``x[index]`` in place (the ``x[index] = value`` statement).

    Parameters
    ----------
    x : Tensor
    index : as for :func:`lucid.ops.indexing.getitem`
    value : Tensor, array-like or Python scalar
        Broadcast to ``x[index]``'s shape and cast to `x`'s dtype.

    Raises
    ------
    RuntimeError
        If `x` is a leaf that requires grad (with grad mode on).

    Examples
    --------
    >>> import lucid
    >>> x = lucid.zeros(2, 2)
    >>> x[0] = lucid.tensor([1.0, 2.0])
    >>> x
    Tensor([[1., 2.],
            [0., 0.]])
    """
    records = grad_mode.is_grad_enabled() and (
        x.requires_grad or (isinstance(value, Tensor) and value.requires_grad)
    )
    if not records:
        # The common case writes straight into the array: no out-of-place copy.
        data = value._data if isinstance(value, Tensor) else value
        _write(x, lambda array: array.__setitem__(indexing.to_numpy_index(index), data))
        return
    _apply_in_place(x, lambda source: indexing.index_put(source, index, value), value)
