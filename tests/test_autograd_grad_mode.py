"""Grad mode: no_grad, enable_grad, set_grad_enabled, as context managers, decorators and per thread."""
import threading

import lucid
from lucid.autograd import set_grad_enabled


def test_grad_mode_is_on_by_default():
    assert lucid.is_grad_enabled()


def test_no_grad_stops_recording_and_restores_the_mode():
    x = lucid.ones(2, requires_grad=True)
    with lucid.no_grad():
        y = x * 2
        assert not lucid.is_grad_enabled()
    assert lucid.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_enable_grad_records_inside_no_grad():
    x = lucid.ones(2, requires_grad=True)
    with lucid.no_grad(), lucid.enable_grad():
        y = x * 2
    assert y.requires_grad


def test_no_grad_as_a_decorator():
    @lucid.no_grad()
    def double(t):
        return t * 2

    assert not double(lucid.ones(1, requires_grad=True)).requires_grad
    assert lucid.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception():
    try:
        with lucid.no_grad():
            raise KeyError
    except KeyError:
        pass
    assert lucid.is_grad_enabled()


def test_set_grad_enabled_as_a_function_and_a_context_manager():
    with set_grad_enabled(False):
        assert not lucid.is_grad_enabled()
    assert lucid.is_grad_enabled()
    set_grad_enabled(False)
    try:
        assert not lucid.is_grad_enabled()
    finally:
        set_grad_enabled(True)


def test_grad_mode_is_per_thread():
    seen = []
    with lucid.no_grad():
        thread = threading.Thread(target=lambda: seen.append(lucid.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_backward_records_nothing_without_create_graph():
    modes = []

    class Spy(lucid.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x._data * 1

        @staticmethod
        def backward(ctx, grad):
            modes.append(lucid.is_grad_enabled())
            return grad

    x = lucid.ones(1, requires_grad=True)
    Spy.apply(x).sum().backward(retain_graph=True)
    Spy.apply(x).sum().backward(create_graph=True)
    assert modes == [False, True]
