"""Property tests of kl_div's values: random shapes, dtypes, layouts and special values.

Every reduction and both target conventions are compared with the per-element
table and the reductions of docs/api/kl_div.rst, evaluated in float64 by
``hypothesis_kl_div_inputs`` (see there for the tolerances).
"""
import numpy as np
import pytest

pytest.importorskip("hypothesis")  # the test extra: without it these tests are skipped
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lucid.nn.functional import kl_div  # noqa: E402

from hypothesis_kl_div_inputs import (  # noqa: E402
    FLOAT_DTYPES,
    REDUCTIONS,
    assert_matches,
    kl_div_inputs,
    loss_error_bound,
    reduce_like_spec,
    special_values,
    table_losses,
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True], ids=["p", "log_p"])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_kl_div_follows_spec_tables(data, reduction, log_target):
    x, target = data.draw(kl_div_inputs(log_target))
    result = kl_div(x, target, reduction=reduction, log_target=log_target).numpy()
    losses = table_losses(x, target, log_target)
    expected, bound = reduce_like_spec(losses, loss_error_bound(x, target, log_target), reduction)
    assert result.dtype == np.result_type(x.dtype, target.dtype)
    assert result.shape == (losses.shape if reduction == "none" else ())
    assert_matches(result, expected, bound)


@pytest.mark.parametrize("log_target", [False, True], ids=["p", "log_p"])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_kl_div_leaves_its_inputs_unchanged(data, log_target):
    x, target = data.draw(kl_div_inputs(log_target))
    x_before, target_before = x.copy(), target.copy()
    kl_div(x, target, reduction="none", log_target=log_target)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(target, target_before)


@pytest.mark.parametrize("x_dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("target_dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("log_target", [False, True], ids=["p", "log_p"])
def test_every_pair_of_special_values_follows_spec_table(x_dtype, target_dtype, log_target):
    # Random draws rarely put two special values on one element; this meets them all.
    specials = special_values(x_dtype) + [-1.0, 0.25]
    target_specials = special_values(target_dtype) + [0.25, 1.0]
    x = np.array(specials, dtype=x_dtype)[:, None]
    target = np.array(target_specials, dtype=target_dtype)[None, :]
    result = kl_div(x, target, reduction="none", log_target=log_target).numpy()
    losses = table_losses(x, target, log_target)
    assert_matches(result, losses, loss_error_bound(x, target, log_target))
