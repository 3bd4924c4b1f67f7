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


class set_grad_enabled:
    """Switch recording on or off, as a function, context manager or decorator.

    Parameters
    ----------
    mode : bool
        True records operations, False does not.

    Notes
    -----
    Called as a function it sets the mode immediately; used with ``with``, the
    previous mode is restored on exit.

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
    """

    def __init__(self, mode):
        self._previous = _state.enabled
        self._mode = bool(mode)
        _state.enabled = self._mode

    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self.__class__(self._mode):
                return function(*args, **kwargs)

        return wrapper


class _GradModeContext:
    """Shared body of no_grad and enable_grad: a mode set on enter, restored on exit."""

    _mode = True

    def __enter__(self):
        self._previous = _state.enabled
        _state.enabled = self._mode
        return None

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return function(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager and decorator that stops recording operations.

    Results computed inside do not require grad, so no graph is kept: use it
    for evaluation and for updating parameters in place.

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
    """

    _mode = False


class enable_grad(_GradModeContext):
    """Context manager and decorator that turns recording back on inside :class:`no_grad`.

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

    _mode = True
