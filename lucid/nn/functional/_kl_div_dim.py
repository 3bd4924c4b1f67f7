"""kl_div along a class axis: the KL of every distribution, masks and validation.

``kl_div(..., dim=k)`` is kl_div's own element-wise sum grouped by
distribution: the kernels walk the inputs with axis ``k`` moved last (a view)
and write one float64 KL per distribution. This module reduces those,
selects masked distributions out, checks distributions when asked, and
records the operation on the tape; the gradient is the element-wise one with
the upstream gradient broadcast along the class axis.
"""
import math

import numpy as np

from lucid import _kl_rules
from lucid._dims import normalize_dim
from lucid._ext import kl_div as kernels
from lucid.autograd.function import Function
from lucid.nn.functional._kl_div_backward import KLDivGrad, _reduce_to

#: How far from 1 a distribution's sum may be under ``validate=True``, by the
#: dtype of what is summed (the target, or x for exp(x)). float32 softmax
#: outputs over 100,000 classes are off by about 1e-6; float16 ones by up to
#: a few 1e-3, their smallest probabilities being subnormal.
SUM_TOLERANCE = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-3,
                 np.dtype(np.float64): 1e-6}


def class_axis(dim, ndim):
    """``dim`` as an axis in ``range(ndim)``; negative dims count from the end.

    lucid's one rule for dims (``normalize_dim``), except that a 0-d loss,
    which holds no distribution, has no class axis at all.
    """
    if ndim == 0:
        raise IndexError(f"kl_div: dim={dim!r} needs a loss with at least one dimension; "
                         "x and target broadcast to a 0-d loss")
    return normalize_dim(dim, ndim)


def distribution_selection(mask, loss_shape, axis):
    """``mask`` as a bool array of the per-distribution shape (a broadcast view), or None."""
    if mask is None:
        return None
    data = getattr(mask, "_data", mask)
    array = np.asarray(data)
    if array.dtype != np.bool_:
        raise TypeError(f"kl_div: mask must hold bools (True keeps a distribution), "
                        f"got dtype {array.dtype}")
    shape = loss_shape[:axis] + loss_shape[axis + 1:]
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"kl_div: mask of shape {array.shape} does not broadcast to the "
                         f"distributions' shape {shape} (the loss shape {loss_shape} without "
                         f"dim={axis})") from None


class KLDivDim(Function):
    """Records kl_div with ``dim`` on the tape; its vjp is :class:`KLDivGrad` along the axis."""

    @staticmethod
    def forward(ctx, x, target, reduction, log_target, axis, select, validate):
        ctx.save_for_backward(x, target)
        ctx.reduction, ctx.log_target, ctx.axis, ctx.select = reduction, log_target, axis, select
        shape = np.broadcast_shapes(x.shape, target.shape)
        kl, p_sums, q_sums = kernels.kl_div_rows(x._data, target._data, axis, log_target,
                                                 select=select, sums=validate)
        if validate:
            _check_distributions(x._data, target._data, log_target, axis, kl, p_sums, q_sums,
                                 select)
        ctx.count = kl.size if select is None else int(np.count_nonzero(select))
        dtype = np.result_type(x.dtype, target.dtype)
        if reduction == "none":
            return kl.reshape(shape[:axis] + shape[axis + 1:]).astype(dtype)
        # Deselected distributions hold 0: the sum is that of the selected ones.
        total = float(np.sum(kl))
        if reduction == "sum":
            return np.asarray(total, dtype=dtype)
        return np.asarray(_kl_rules.mean_over(total, ctx.count), dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        x, target = ctx.saved_tensors
        if ctx.reduction == "none":
            grad = grad.unsqueeze(ctx.axis)
        elif ctx.reduction != "sum":
            grad = grad / ctx.count if ctx.count else grad * math.nan
        select = None if ctx.select is None else np.expand_dims(ctx.select, ctx.axis)
        grad_x = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_x = _reduce_to(KLDivGrad.apply(x, target, grad, ctx.log_target, False, select), x)
        if ctx.needs_input_grad[1]:
            grad_target = _reduce_to(
                KLDivGrad.apply(x, target, grad, ctx.log_target, True, select), target)
        return grad_x, grad_target, None, None, None, None, None


def _check_distributions(x, target, log_target, axis, kl, p_sums, q_sums, select):
    """Raise ValueError naming the first distribution that is not one (see kl_div's validate)."""
    p_tolerance = SUM_TOLERANCE[target.dtype]
    q_tolerance = SUM_TOLERANCE[x.dtype]
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(p_sums - 1) <= p_tolerance) | ~(np.abs(q_sums - 1) <= q_tolerance)
        bad |= np.isnan(kl)
    if select is not None:
        bad &= np.ascontiguousarray(select).reshape(-1)
    if not bad.any():
        return
    shape = np.broadcast_shapes(x.shape, target.shape)
    row = int(np.argmax(bad))
    index = np.unravel_index(row, shape[:axis] + shape[axis + 1:])
    where = tuple(int(i) for i in index[:axis]) + (slice(None),) + tuple(int(i) for i in index[axis:])
    p_row = np.broadcast_to(target, shape)[where]
    name = "exp(target)" if log_target else "target"
    place = f"distribution {tuple(int(i) for i in index)} (the loss's [{_show(where)}])"
    problem = _entry_problem(p_row, log_target)
    if problem is None and not abs(p_sums[row] - 1) <= p_tolerance:
        problem = (f"sums to {_exact_sum(p_row, log_target):.6g}, not 1 "
                   f"(tolerance {p_tolerance:g} for {target.dtype})")
    if problem is not None:
        raise ValueError(f"kl_div(validate=True): {name} of {place} {problem}")
    q_sum = _exact_sum(np.broadcast_to(x, shape)[where], True)
    raise ValueError(f"kl_div(validate=True): exp(x) of {place} sums to {q_sum:.6g}, "
                     f"not 1 (tolerance {q_tolerance:g} for {x.dtype})")


def _exact_sum(row, exponentiate):
    """One distribution's sum (of ``exp(row)`` when ``exponentiate``) in float64, for a message.

    The kernels' sums decide, to within 1e-4 for float inputs (a faster exp
    and float lanes; a NaN in x may even leave exp(x)'s finite, the KL being
    NaN), but the message reports the distribution's own sum.
    """
    values = np.asarray(row, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sum(np.exp(values) if exponentiate else values))


def _entry_problem(p_row, log_target):
    """What is wrong with one distribution's p entries (negative or NaN), or None."""
    values = np.asarray(p_row, dtype=np.float64)
    bad = np.isnan(values) if log_target else np.isnan(values) | (values < 0)
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    kind = "a NaN" if np.isnan(values[k]) else f"a negative entry {values[k]:.9g}"
    return f"has {kind} at class {k}"


def _show(where):
    return ", ".join(":" if isinstance(i, slice) else str(i) for i in where)


def check_elements(x, target, log_target, result):
    """validate=True without ``dim``: raise ValueError naming the first bad p entry.

    A negative or NaN p makes its loss NaN, so only a NaN ``result`` (the
    forward's own output) sends the check looking for the entry.
    """
    data = np.asarray(result)
    if not (data.size and np.isnan(np.min(data))):
        return
    shape = np.broadcast_shapes(x.shape, target.shape)
    values = np.broadcast_to(target, shape)
    with np.errstate(invalid="ignore"):
        bad = np.isnan(values) if log_target else np.isnan(values) | (values < 0)
    if not bad.any():
        return
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), shape))
    value = float(values[index])
    name = "exp(target)" if log_target else "target"
    kind = "NaN" if math.isnan(value) else f"negative ({value:.9g})"
    raise ValueError(f"kl_div(validate=True): {name} is {kind} at index {index}")
