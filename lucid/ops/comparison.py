"""Elementwise comparisons. They return bool tensors and are not differentiable
(their result is piecewise constant), so they run in numpy directly without
recording anything.
"""

import numpy as np

from lucid._creation import as_tensor
from lucid._tensor import Tensor


def _compare(ufunc, a, b):
    # Python scalars go to numpy as they are: numpy compares them exactly.
    a = a if isinstance(a, (bool, int, float)) else as_tensor(a, "operand")._data
    b = b if isinstance(b, (bool, int, float)) else as_tensor(b, "operand")._data
    return Tensor(np.asarray(ufunc(a, b)))


def eq(a, b):
    """Elementwise ``a == b``.

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        bool, broadcast shape.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0]) == 2
    Tensor([False,  True], dtype=bool)
    """
    return _compare(np.equal, a, b)


def ne(a, b):
    """Elementwise ``a != b``.

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        bool.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0]) != 2
    Tensor([ True, False], dtype=bool)
    """
    return _compare(np.not_equal, a, b)


def lt(a, b):
    """Elementwise ``a < b``.

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        bool.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0]) < 2
    Tensor([ True, False], dtype=bool)
    """
    return _compare(np.less, a, b)


def le(a, b):
    """Elementwise ``a <= b``.

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        bool.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0]) <= 2
    Tensor([ True,  True], dtype=bool)
    """
    return _compare(np.less_equal, a, b)


def gt(a, b):
    """Elementwise ``a > b``.

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        bool.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0]) > 1
    Tensor([False,  True], dtype=bool)
    """
    return _compare(np.greater, a, b)


def ge(a, b):
    """Elementwise ``a >= b``.

    Parameters
    ----------
    a, b : Tensor, array-like or Python scalar

    Returns
    -------
    Tensor
        bool.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0]) >= 2
    Tensor([False,  True], dtype=bool)
    """
    return _compare(np.greater_equal, a, b)
