"""Grad mode: no_grad, enable_grad, set_grad_enabled, as context managers, decorators and per thread."""
import threading

import pytest

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


def test_set_grad_enabled_as_a_decorator_leaves_the_mode_alone_until_called():
    @set_grad_enabled(False)
    def double(t):
        assert not lucid.is_grad_enabled()
        return t * 2

    assert lucid.is_grad_enabled()
    x = lucid.ones(2, requires_grad=True)
    assert not double(x).requires_grad
    assert lucid.is_grad_enabled() and (x * 2).requires_grad


def test_set_grad_enabled_decorator_restores_the_callers_mode_each_call():
    @set_grad_enabled(True)
    def mode_inside():
        return lucid.is_grad_enabled()

    with lucid.no_grad():
        assert mode_inside() is True
        assert not lucid.is_grad_enabled()
    assert mode_inside() is True and lucid.is_grad_enabled()


def test_set_grad_enabled_decorator_restores_the_mode_after_an_exception():
    @set_grad_enabled(False)
    def fail():
        raise KeyError

    try:
        fail()
    except KeyError:
        pass
    assert lucid.is_grad_enabled()


def test_decorated_recursion_restores_each_level():
    seen = []

    @lucid.enable_grad()
    def recurse(depth):
        seen.append(lucid.is_grad_enabled())
        if depth:
            with lucid.no_grad():
                recurse(depth - 1)
                seen.append(lucid.is_grad_enabled())

    recurse(2)
    assert seen == [True, True, True, False, False]
    assert lucid.is_grad_enabled()


def test_one_decorated_function_in_two_threads_keeps_each_threads_mode():
    barrier = threading.Barrier(2, timeout=10)
    seen = {}

    @lucid.no_grad()
    def wait_inside(name):
        barrier.wait()  # both threads inside at once
        seen[name, "inside"] = lucid.is_grad_enabled()

    def run(name, outer):
        with set_grad_enabled(outer):
            wait_inside(name)
            seen[name, "after"] = lucid.is_grad_enabled()

    threads = [threading.Thread(target=run, args=(name, outer))
               for name, outer in (("a", True), ("b", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert seen == {("a", "inside"): False, ("a", "after"): True,
                    ("b", "inside"): False, ("b", "after"): False}


def grad_mode_trace(is_enabled, set_enabled, no_grad, enable_grad):
    """The mode at each step of one script using every form; run with lucid's or torch's."""
    trace = []

    @set_enabled(False)
    def decorated_off():
        trace.append(is_enabled())

    @enable_grad()
    def decorated_on():
        trace.append(is_enabled())

    @no_grad
    def decorated_bare():
        trace.append(is_enabled())

    trace.append(is_enabled())
    decorated_off()
    trace.append(is_enabled())
    with no_grad():
        decorated_on()
        trace.append(is_enabled())
        with set_enabled(True):
            trace.append(is_enabled())
        trace.append(is_enabled())
    set_enabled(False)
    trace.append(is_enabled())
    with enable_grad():
        decorated_off()
        trace.append(is_enabled())
    trace.append(is_enabled())
    set_enabled(True)
    trace.append(is_enabled())
    decorated_bare()
    trace.append(is_enabled())
    return trace


def lucid_trace():
    return grad_mode_trace(lucid.is_grad_enabled, set_grad_enabled, lucid.no_grad,
                           lucid.enable_grad)


def test_every_form_gives_the_documented_modes():
    # Decorators act only inside their calls; ``with`` restores the mode it found.
    assert lucid_trace() == [True, False, True, True, False, True, False, False, False, True,
                             False, True, False, True]


def test_every_form_matches_the_reference_framework():
    torch = pytest.importorskip("torch")
    assert lucid_trace() == grad_mode_trace(torch.is_grad_enabled, torch.set_grad_enabled,
                                            torch.no_grad, torch.enable_grad)


def test_bare_decorators_work_as_with_parentheses():
    @lucid.no_grad
    def off():
        return lucid.is_grad_enabled()

    @lucid.enable_grad
    def on():
        return lucid.is_grad_enabled()

    assert off() is False and lucid.is_grad_enabled()
    with lucid.no_grad():
        assert on() is True and not lucid.is_grad_enabled()
    assert off.__name__ == "off"


@pytest.mark.parametrize("form", [lucid.no_grad, lucid.enable_grad])
def test_grad_mode_classes_refuse_arguments_that_are_not_functions(form):
    with pytest.raises(TypeError, match=f"{form.__name__} takes no argument.*int 3"):
        form(3)
