"""Checking and normalising dimension and shape arguments, shared by the ops and the creation functions.

Errors follow the reference framework's wording, so a user who knows its
messages recognises lucid's.
"""

import operator


def normalize_dim(dim, ndim, extra=0):
    """Return `dim` as a non-negative index for a tensor with `ndim` dimensions.

    Parameters
    ----------
    dim : int
        May be negative, counting from the end.
    ndim : int
        The tensor's number of dimensions; a 0-d tensor accepts 0 and -1.
    extra : int, default 0
        Positions beyond the last dimension that are valid too (1 for
        ``unsqueeze``, which may insert after the last dimension).

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If `dim` is not an integer.
    IndexError
        If `dim` is out of range.

    Examples
    --------
    >>> from lucid._dims import normalize_dim
    >>> normalize_dim(-1, 3)
    2
    >>> normalize_dim(5, 2)
    Traceback (most recent call last):
    ...
    IndexError: Dimension out of range (expected to be in range of [-2, 1], but got 5)
    """
    if isinstance(dim, bool):
        raise TypeError(f"dim must be an integer, got bool {dim!r}")
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"dim must be an integer, got {type(dim).__name__} {dim!r}") from None
    size = max(ndim, 1) + extra
    if not -size <= dim < size:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})"
        )
    return dim % size


def normalize_dims(dims, ndim):
    """Return `dims` (None, an int or a sequence of ints) as a sorted tuple of non-negative indices.

    Parameters
    ----------
    dims : None, int or sequence of int
        None means every dimension.
    ndim : int

    Returns
    -------
    tuple of int

    Raises
    ------
    IndexError
        If a dimension is out of range.
    RuntimeError
        If a dimension appears twice.

    Examples
    --------
    >>> from lucid._dims import normalize_dims
    >>> normalize_dims((-1, 0), 3)
    (0, 2)
    >>> normalize_dims(None, 2)
    (0, 1)
    """
    if dims is None:
        return tuple(range(ndim))
    if not isinstance(dims, (tuple, list)):
        dims = (dims,)
    normalized = [normalize_dim(dim, ndim) for dim in dims]
    for dim in normalized:
        if normalized.count(dim) > 1:
            raise RuntimeError(f"dim {dim} appears multiple times in the list of dims")
    # A 0-d tensor has no axis to reduce: dim 0 / -1 name the tensor itself.
    return tuple(sorted(normalized)) if ndim else ()


def int_tuple_argument(args):
    """Return the ``*args`` of ``zeros(2, 3)``, ``reshape(2, 3)`` or ``permute(1, 0)`` as a tuple of ints.

    Parameters
    ----------
    args : tuple
        The positional arguments: ints, or a single tuple or list of ints
        (``zeros((2, 3))`` is ``zeros(2, 3)``).

    Returns
    -------
    tuple of int

    Raises
    ------
    TypeError
        If an entry is not an integer (``int()`` of a float would truncate it).

    Examples
    --------
    >>> from lucid._dims import int_tuple_argument
    >>> int_tuple_argument((2, 3)), int_tuple_argument(([2, 3],)), int_tuple_argument(())
    ((2, 3), (2, 3), ())
    >>> int_tuple_argument((2.5,))
    Traceback (most recent call last):
    ...
    TypeError: sizes and dims must be integers, got float 2.5
    """
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    try:
        return tuple(operator.index(n) for n in args)
    except TypeError:
        bad = next(n for n in args if not hasattr(type(n), "__index__"))
        raise TypeError(f"sizes and dims must be integers, got {type(bad).__name__} {bad!r}") from None
