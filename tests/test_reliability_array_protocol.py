"""An exception raised by an input's own ``__array__`` reaches the caller unchanged (issue 12, item 13)."""
import numpy as np
import pytest

import lucid
from lucid.metrics import KLDivergence
from lucid.nn.functional import kl_div


class Raises:
    """An array-like whose conversion fails with the given exception."""

    def __init__(self, error):
        self.error = error

    def __array__(self, dtype=None, copy=None):
        raise self.error


class Converts:
    """An array-like that converts to the given array."""

    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array


CALLS = {
    "kl_div x": lambda bad: kl_div(bad, np.array([0.5, 0.5])),
    "kl_div target": lambda bad: kl_div(np.array([-0.7, -0.7]), bad),
    "as_tensor": lambda bad: lucid.as_tensor(bad, name="x"),
    "KLDivergence.update": lambda bad: KLDivergence().update(np.array([[-0.7, -0.7]]), bad),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("error", [ValueError("boom"), TypeError("not today"),
                                   RuntimeError("device busy")], ids=type)
def test_array_protocol_errors_reach_the_caller_unchanged(call, error):
    with pytest.raises(type(error)) as raised:
        call(Raises(error))
    assert raised.value is error


def test_objects_that_convert_are_read_through_array():
    log_q = np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    expected = (p * (np.log(p) - log_q)).sum()
    assert kl_div(Converts(log_q), Converts(p), reduction="sum").item() == pytest.approx(
        expected, rel=1e-14)


def test_buffers_that_numpy_cannot_read_still_get_lucids_type_error():
    with pytest.raises(TypeError, match="x must be a Tensor or array-like of numbers"):
        lucid.as_tensor(memoryview(b"ab").cast("c"), name="x")
