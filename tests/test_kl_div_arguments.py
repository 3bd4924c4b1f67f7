"""kl_div's argument checking: deprecated size_average, reductions, dtypes, shapes."""
import tracemalloc
import warnings

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div


def test_size_average_warns_at_caller_line_and_is_ignored():
    x, p = np.log([[0.5, 0.5]]), np.array([[0.9, 0.1]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _current_line() + 1
        with_flag = kl_div(x, p, size_average=False, reduction="mean")
    assert len(caught) == 1
    warning = caught[0]
    assert warning.category is FutureWarning
    assert warning.filename == __file__ and warning.lineno == line
    message = str(warning.message)
    assert "ignored" in message and "reduction" in message and "'sum'" in message
    assert with_flag.item() == kl_div(x, p, reduction="mean").item()


def _current_line():
    import inspect
    return inspect.currentframe().f_back.f_lineno


@pytest.mark.parametrize("value", [True, False])
def test_every_non_none_size_average_warns(value):
    with pytest.warns(FutureWarning, match="size_average"):
        kl_div([-1.0], [0.5], size_average=value)


def test_size_average_none_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kl_div([-1.0], [0.5], size_average=None)


@pytest.mark.parametrize("reduction", ["avg", "Mean", "", None, 1])
def test_bad_reduction_raises_value_error_naming_allowed(reduction):
    with pytest.raises(ValueError) as info:
        kl_div([-1.0], [0.5], reduction=reduction)
    message = str(info.value)
    assert repr(reduction) in message
    for allowed in ("'none'", "'mean'", "'sum'", "'batchmean'"):
        assert allowed in message


def test_module_rejects_bad_reduction_at_construction():
    with pytest.raises(ValueError, match="'elementwise_mean'"):
        lucid.nn.KLDivLoss(reduction="elementwise_mean")


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64, np.complex128])
@pytest.mark.parametrize("which", ["x", "target"])
def test_non_float_inputs_raise_type_error(dtype, which):
    good = np.array([-1.0, -2.0])
    bad = np.array([1, 0]).astype(dtype)
    args = (bad, good) if which == "x" else (good, bad)
    with pytest.raises(TypeError) as info:
        kl_div(*args)
    assert which in str(info.value) and str(np.dtype(dtype)) in str(info.value)


def test_integer_python_lists_raise_type_error():
    with pytest.raises(TypeError, match="int64"):
        kl_div([1, 2], [0.5, 0.5])


@pytest.mark.parametrize("bad", [None, "abc", object(), {"a": 1}, [[1.0, 2.0], [3.0]]])
def test_non_arrays_raise_type_error_naming_the_value(bad):
    with pytest.raises(TypeError) as info:
        kl_div(bad, [0.5, 0.5])
    assert type(bad).__name__ in str(info.value)


def test_shapes_that_do_not_broadcast_raise_value_error_naming_both():
    with pytest.raises(ValueError) as info:
        kl_div(np.zeros((2, 3)), np.zeros((4,)))
    assert "(2, 3)" in str(info.value) and "(4,)" in str(info.value)


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_log_target_must_be_bool(flag):
    with pytest.raises(TypeError, match="log_target"):
        kl_div([-1.0], [0.5], log_target=flag)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_array_inputs_are_not_copied(rng, reduction):
    # numpy reports its buffers to tracemalloc: a copy of either 4 MiB input
    # would show in the peak; "none" may allocate its output and nothing more.
    x = np.log(rng.random((512, 2048), dtype=np.float32))
    p = rng.random((512, 2048), dtype=np.float32)
    kl_div(x[:2], p[:2], reduction=reduction)  # first-call imports and caches stay out of the count
    tracemalloc.start()
    try:
        result = kl_div(x, p, reduction=reduction)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    output = result.numpy().nbytes if reduction == "none" else 0
    assert peak - output < x.nbytes // 4, f"kl_div allocated {peak - output} bytes besides its output"


def test_masked_arrays_raise_type_error_instead_of_ignoring_the_mask():
    x = np.ma.masked_array([-1.0, -2.0], mask=[False, True])
    with pytest.raises(TypeError, match="masked array"):
        kl_div(x, [0.5, 0.5])


def test_byte_swapped_floats_raise_type_error_with_the_fix():
    x = np.log(np.array([0.5, 0.5])).astype(">f8")
    with pytest.raises(TypeError, match=r">f8.*non-native byte order.*astype\('float64'\)"):
        kl_div(x, [0.5, 0.5])
