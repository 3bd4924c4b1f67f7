"""Grad mode: whether operations are recorded on the autograd tape.

One flag, checked by :meth:`lucid.autograd.Function.apply` when it decides
whether to record a node. The flag is thread-local (as in the reference
framework), so a thread evaluating under :class:`no_grad` does not switch off
recording in another thread that is training.
"""

import functools
import threading


class _GradState(threading.local):
    # Class attribute: every new thread starts with recording enabled.
    enabled = True


_state = _GradState()


def is_grad_enabled():
    """Tell whether operations are currently recorded for autograd.

    Returns
    -------
    bool
        True unless inside :class:`no_grad` (or ``set_grad_enabled(False)``).

    Examples
    --------
    >>> import lucid
    >>> lucid.is_grad_enabled()
    True
    >>> with lucid.no_grad():
    ...     lucid.is_grad_enabled()
    False
    """
    return _state.enabled


def _swap_enabled(mode):
    """Set the mode and return the previous one (a cheaper form of set_grad_enabled for hot paths)."""
    previous = _state.enabled
    _state.enabled = mode
    return previous


class _GradMode:
    """A grad mode set on ``with`` entry and restored on exit, or around each call of a
    decorated function: the one body of no_grad, enable_grad and set_grad_enabled."""

    def __init__(self, mode):
        self._mode = bool(mode)

    def __enter__(self):
        self._previous = _swap_enabled(self._mode)

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False

    def __call__(self, function):
        mode = self._mode

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            # The previous mode is a local of each call: recursive calls and
            # calls from several threads each restore their own.
            previous = _swap_enabled(mode)
            try:
                return function(*args, **kwargs)
            finally:
                _state.enabled = previous

        return wrapper


class set_grad_enabled(_GradMode):
    """Switch recording on or off, as a function, context manager or decorator.

    Parameters
    ----------
    mode : bool
        True records operations, False does not.

    See Also
    --------
    no_grad, enable_grad : The context managers for a fixed mode.
    is_grad_enabled : Read the current mode.

    Notes
    -----
    As the reference framework's: called as a function, it sets the mode
    immediately (for the calling thread); used with ``with``, the mode before
    the call is restored on exit; used as a decorator, it leaves the mode as
    it was and sets ``mode`` around each call of the function only, restoring
    the caller's mode afterwards.

    Examples
    --------
    >>> import lucid
    >>> from lucid.autograd.grad_mode import set_grad_enabled
    >>> x = lucid.ones(2, requires_grad=True)
    >>> with set_grad_enabled(False):
    ...     (x * 2).requires_grad
    False
    >>> (x * 2).requires_grad
    True
    >>> @set_grad_enabled(False)
    ... def evaluate(t):
    ...     return t * 2
    >>> evaluate(x).requires_grad, (x * 2).requires_grad
    (False, True)
    """

    def __init__(self, mode):
        super().__init__(mode)
        # The function form acts at once; the previous mode is what ``with`` restores.
        self._previous = _swap_enabled(self._mode)

    def __enter__(self):
        _state.enabled = self._mode

    def __call__(self, function):
        # Construction switched the mode; a decorator must only act around calls.
        _state.enabled = self._previous
        return super().__call__(function)


class _FixedGradMode(_GradMode):
    """no_grad and enable_grad: the mode is the class's; ``@no_grad`` works bare too."""

    _fixed_mode = True

    def __new__(cls, function=None):
        if function is None:
            return super().__new__(cls)
        # A bare ``@no_grad`` hands over the function, as the reference framework allows.
        if not callable(function):
            raise TypeError(f"{cls.__name__} takes no argument but a function to decorate, "
                            f"got {type(function).__name__} {function!r}")
        return cls()(function)

    def __init__(self, function=None):
        super().__init__(self._fixed_mode)


class no_grad(_FixedGradMode):
    """Context manager and decorator that stops recording operations.

    Results computed inside do not require grad, so no graph is kept: use it
    for evaluation and for updating parameters in place.

    Parameters
    ----------
    function : callable, optional
        Only in the bare decorator form, ``@no_grad`` without parentheses,
        which decorates it at once as ``@no_grad()`` does.

    Returns
    -------
    no_grad or callable
        The context manager, or the decorated function.

    Raises
    ------
    TypeError
        If given something other than a function.

    See Also
    --------
    enable_grad, set_grad_enabled

    Examples
    --------
    >>> import lucid
    >>> x = lucid.ones(3, requires_grad=True)
    >>> with lucid.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    >>> @lucid.no_grad()
    ... def evaluate(t):
    ...     return t.exp()
    >>> evaluate(x).requires_grad
    False
    >>> @lucid.no_grad
    ... def halve(t):
    ...     return t / 2
    >>> halve(x).requires_grad, lucid.is_grad_enabled()
    (False, True)
    """

    _fixed_mode = False


class enable_grad(_FixedGradMode):
    """Context manager and decorator that turns recording back on inside :class:`no_grad`.

    Parameters
    ----------
    function : callable, optional
        Only in the bare decorator form, ``@enable_grad`` without
        parentheses, as for :class:`no_grad`.

    Returns
    -------
    enable_grad or callable
        The context manager, or the decorated function.

    Raises
    ------
    TypeError
        If given something other than a function.

    See Also
    --------
    no_grad, set_grad_enabled

    Examples
    --------
    >>> import lucid
    >>> x = lucid.ones(3, requires_grad=True)
    >>> with lucid.no_grad():
    ...     with lucid.enable_grad():
    ...         y = x * 2
    >>> y.requires_grad
    True
    """

    _fixed_mode = True
