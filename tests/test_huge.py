"""More than 2**31 elements: reductions over zero-stride broadcast views.

``np.broadcast_to`` gives views of any size for the memory of one row or one
column, so these tests cost seconds, not gigabytes. The row and column inputs
differ along both axes, so a 32-bit index that wrapped, or a count that
overflowed, would read the wrong values or divide by the wrong number and move
the result far outside the tolerance. Expected values come from closed forms in
float64: with x varying by row (x_i) and p by column (p_j),

    sum_ij p_j (log p_j - x_i) = R sum_j p_j log p_j - (sum_i x_i)(sum_j p_j).
"""
import math

import numpy as np
import pytest

from lucid.nn.functional import kl_div

ROWS = 2**16
COLS = 2**15 + 3  # ROWS * COLS = 2**31 + 196608
# Columns where p > 0; the others are 0 (loss 0), so the sweep stays fast.
# They sit at both ends and in the middle of a row.
POSITIVE_COLUMNS = {0: 0.125, 1: 0.25, 4095: 0.0625, 4096: 0.0625, COLS // 2: 0.25,
                    COLS - 2: 0.125, COLS - 1: 0.125}


def row_and_column_inputs(x_dtype, p_dtype):
    """x varies down the rows, p across the columns; both are (ROWS, COLS) views."""
    x_column = (-1.0 - np.arange(ROWS) / ROWS).astype(x_dtype).reshape(ROWS, 1)
    p_row = np.zeros((1, COLS), dtype=p_dtype)
    for column, value in POSITIVE_COLUMNS.items():
        p_row[0, column] = value
    x = np.broadcast_to(x_column, (ROWS, COLS))
    p = np.broadcast_to(p_row, (ROWS, COLS))
    assert x.size > 2**31 and x.strides[1] == 0 and p.strides[0] == 0
    return x, p


def closed_form_sum(x, p):
    """The exact sum of the losses in float64, and S = sum |p log p| + |p x| (what cancels)."""
    x_column = x[:, 0].astype(np.float64)
    p_row = p[0].astype(np.float64)
    positive = p_row[p_row > 0]
    p_log_p = positive * np.log(positive)
    total = ROWS * p_log_p.sum() - x_column.sum() * positive.sum()
    cancelling = ROWS * np.abs(p_log_p).sum() + np.abs(x_column).sum() * positive.sum()
    return total, cancelling


def test_sum_over_more_than_2_31_elements():
    x, p = row_and_column_inputs(np.float64, np.float64)
    expected, cancelling = closed_form_sum(x, p)
    got = kl_div(x, p, reduction="sum").item()
    assert abs(got - expected) <= 1e-12 * cancelling  # the float64 accuracy bound


def test_mean_over_more_than_2_31_elements_divides_by_all_of_them():
    # float32 x with float64 p: computed in float64, x converted block by block.
    # (The float32 compute path passes 2**31 in the 1-D test below.)
    x, p = row_and_column_inputs(np.float32, np.float64)
    expected, _ = closed_form_sum(x, p)
    got = kl_div(x, p, reduction="mean").item()
    assert got == pytest.approx(expected / (ROWS * COLS), rel=1e-12)


def test_one_row_of_more_than_2_31_elements():
    # A 1-D view: the column index itself passes 2**31. Every element is the same
    # loss, so the batchmean equals that of a short row exactly unless an element
    # is skipped or counted twice (one block of 4096 moves it by 2e-6).
    n = 2**31 + 4099
    x, p = np.float32(-2.0), np.float32(0.25)
    short = kl_div(np.full(5, x), np.full(5, p), reduction="batchmean").item()
    got = kl_div(np.broadcast_to(x, (n,)), np.broadcast_to(p, (n,)), reduction="batchmean").item()
    assert short == pytest.approx(0.25 * (math.log(0.25) + 2.0), rel=1e-6)
    assert got == pytest.approx(short, rel=1e-12)
