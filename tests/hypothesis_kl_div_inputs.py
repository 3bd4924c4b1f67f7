"""Hostile kl_div inputs for the property tests, and docs/api/kl_div.rst's tables in float64.

Strategies draw broadcasting shape pairs (0-d, empty and size-1 axes included),
a dtype per input, a memory layout per input (Fortran order, negative strides,
a step, zero strides, read-only) and values: mostly ordinary log-probabilities
and probabilities, with special values (0, -0.0, denormals, +-inf, NaN,
negative p, huge magnitudes) written over a few positions, so that sums are
often finite and still meet every special case.

The references are written from docs/api/kl_div.rst's tables row by row,
independently of the kernels and of ``conftest.reference_losses``. Tolerances
follow the accuracy promise: the compute precision (float32 unless an input is
float64) errs by a few ulps of S_i = |p log p| + |p x| per element, plus
gradual underflow (an absolute error of the smallest subnormal times the factor
it is multiplied by), then the result is rounded to its own dtype.
"""
import numpy as np
import pytest

pytest.importorskip("hypothesis")  # the test extra: without it this helper is skipped
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

FLOAT_DTYPES = [np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)]
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
LAYOUTS = ["contiguous", "fortran", "negative_strides", "stepped", "zero_strides", "read_only"]
# Finite magnitudes stop here so that per-element float32 products cannot overflow
# (|p (log p - x)| <= 1e30) while the float64 reference stays finite.
HUGE = 1e15


def compute_dtype(*dtypes):
    return np.dtype(np.float64) if np.dtype(np.float64) in dtypes else np.dtype(np.float32)


def special_values(dtype):
    info = np.finfo(dtype)
    huge = min(HUGE, float(info.max))
    return [0.0, -0.0, np.inf, -np.inf, np.nan, float(info.smallest_subnormal),
            float(info.smallest_subnormal) * 3, -float(info.smallest_subnormal),
            float(info.smallest_normal), -0.5, huge, -huge, -200.0, -1000.0]


def _width(dtype):
    return dtype.itemsize * 8


@st.composite
def values(draw, dtype, shape, low, high):
    """An array of ``shape``: ordinary values in [low, high] with a few special ones,
    or (so that special values meet each other) special values throughout."""
    ordinary = st.floats(low, high, width=_width(dtype))
    if draw(st.booleans()):
        everywhere = st.one_of(st.sampled_from(special_values(dtype)), ordinary)
        return draw(hnp.arrays(dtype, shape, elements=everywhere))
    array = draw(hnp.arrays(dtype, shape, elements=ordinary))
    if array.size:
        specials = st.sampled_from(special_values(dtype))
        positions = st.integers(0, array.size - 1)
        for index, value in draw(st.lists(st.tuples(positions, specials), max_size=3)):
            array.flat[index] = value
    return array


@st.composite
def operand(draw, shape, low, high):
    """Values of ``shape`` in a drawn dtype and memory layout (the values do not change)."""
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "zero_strides":
        # Stored with size-1 axes, read through a zero-stride broadcast view.
        stored = tuple(1 if draw(st.booleans()) else n for n in shape)
        return np.broadcast_to(draw(values(dtype, stored, low, high)), shape)
    array = draw(values(dtype, shape, low, high))
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "negative_strides":
        reverse = (slice(None, None, -1),) * array.ndim
        return np.ascontiguousarray(array[reverse])[reverse]
    if layout == "stepped" and array.ndim:
        wide = np.zeros(shape[:-1] + (2 * shape[-1] + 1,), dtype=dtype)
        wide[..., 1::2] = array
        return wide[..., 1::2]
    if layout == "read_only":
        array.flags.writeable = False
    return array


@st.composite
def kl_div_inputs(draw, log_target):
    """``(x, target)``: two arrays whose shapes broadcast together."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                    min_side=0, max_side=4))
    x_shape, target_shape = shapes.input_shapes
    x = draw(operand(x_shape, -30.0, 2.0))
    target = draw(operand(target_shape, -30.0, 0.5) if log_target else operand(target_shape, 0.0, 1.0))
    return x, target


def upstream_gradient(shape, dtype):
    """Finite upstream gradients for reduction="none", in the loss dtype."""
    return hnp.arrays(dtype, shape, elements=st.floats(-4.0, 4.0, width=_width(dtype)))


def table_losses(x, target, log_target):
    """The per-element table of docs/api/kl_div.rst in float64.

    p > 0 even where exp(target) underflows (in float64 or in the compute
    precision), so an infinite x gives an infinite loss there too.
    """
    x64, t = np.broadcast_arrays(x.astype(np.float64), target.astype(np.float64))
    with np.errstate(all="ignore"):
        if log_target:
            p, log_p = np.exp(t), t
            zero_p = t == -np.inf
            positive_p = ~zero_p & ~np.isnan(t)  # p = exp(t) > 0, even where it underflows
        else:
            p, log_p = t, np.log(np.where(t > 0, t, 1.0))
            zero_p, positive_p = t == 0, t > 0
        losses = np.select(
            [np.isnan(x64) | np.isnan(t),     # any NaN input: NaN
             ~positive_p & ~zero_p,           # p < 0: NaN, never clipped
             zero_p & (x64 == np.inf),        # 0 * inf, not in the table: NaN as in the reference framework
             zero_p,                          # 0 log 0 = 0, also for x = -inf
             positive_p & (x64 == -np.inf),   # q = 0 where p > 0: +inf
             positive_p & (x64 == np.inf) & np.isfinite(log_p)],  # p (log p - inf) = -inf
            [np.nan, np.nan, np.nan, 0.0, np.inf, -np.inf],
            default=p_times_difference(p, log_p, log_p - x64))
    return losses


def p_times_difference(p, log_p, difference):
    """p * difference, in the log domain where exp(log p) overflows float64 (0 for a tie)."""
    scaled = np.sign(difference) * np.exp(log_p + np.log(np.abs(difference)))
    return np.where(np.isinf(p) & np.isfinite(log_p),
                    np.where(difference == 0, 0.0, scaled), p * difference)


def loss_error_bound(x, target, log_target):
    """Per-element bound on |kernel loss - table loss| in the compute precision."""
    compute = np.finfo(compute_dtype(x.dtype, target.dtype))
    x64, t = np.broadcast_arrays(x.astype(np.float64), target.astype(np.float64))
    with np.errstate(all="ignore"):
        if log_target:
            p, log_p = np.exp(t), t
        else:
            p, log_p = np.where(t > 0, t, 0.0), np.log(np.where(t > 0, t, 1.0))
        cancelling = np.abs(p * log_p) + np.abs(p * x64)
        underflow = 1 + np.abs(log_p) + np.abs(x64)
        bound = 4 * float(compute.eps) * cancelling + 2 * float(compute.smallest_subnormal) * underflow
    return np.where(np.isfinite(bound), bound, 0.0)


def assert_matches(got, expected, bound):
    """``got`` (any float dtype) equals the float64 ``expected`` within ``bound``.

    NaN and infinities must match exactly. The rounding of ``got`` to its own dtype is allowed for,
    including overflow to inf where ``expected`` lies at the edge of its range.
    """
    info = np.finfo(got.dtype)
    got64 = np.asarray(got, dtype=np.float64)
    expected = np.broadcast_to(np.asarray(expected, dtype=np.float64), got64.shape)
    tolerance = np.asarray(bound) + np.abs(expected) * float(info.eps) + float(info.smallest_subnormal)
    with np.errstate(all="ignore"):
        finite = np.isfinite(expected)
        close = finite & np.isfinite(got64) & (np.abs(got64 - expected) <= tolerance)
        overflowed = (finite & np.isinf(got64) & (np.sign(got64) == np.sign(expected))
                      & (np.abs(expected) + tolerance >= float(info.max)))
        same_special = ~finite & ((got64 == expected) | (np.isnan(got64) & np.isnan(expected)))
    ok = close | overflowed | same_special
    if not ok.all():
        bad = np.argwhere(~ok)[:5] if got64.ndim else [()]
        details = [(tuple(i), got64[tuple(i)], expected[tuple(i)],
                    np.broadcast_to(tolerance, got64.shape)[tuple(i)]) for i in bad]
        raise AssertionError(f"{int((~ok).sum())} mismatches (index, got, expected, tolerance): "
                             f"{details}")


def reduce_like_spec(losses, bounds, reduction):
    """Reduce table losses and their error bounds as docs/api/kl_div.rst says."""
    if reduction == "none":
        return losses, bounds
    finite = np.isfinite(losses)
    # The float64 reference sum errs too, by at most n eps sum |L_i|.
    total_bound = bounds.sum() + losses.size * np.finfo(np.float64).eps * np.abs(losses[finite]).sum()
    with np.errstate(invalid="ignore"):  # inf + -inf is NaN, as it should be
        total = losses.sum()
    count = losses.size if reduction == "mean" else (
        losses.shape[0] if reduction == "batchmean" and losses.ndim else 1)
    if count == 0:
        return np.float64(np.nan), 0.0
    return total / count, total_bound / count


