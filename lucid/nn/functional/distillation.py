r"""``distillation_loss``: the knowledge-distillation loss from logits, fused per distribution.

Every distillation script writes
``kl_div(log_softmax(s / T), softmax(t / T), reduction="batchmean") * T**2``,
which allocates two input-sized temporaries forward and more backward. Here
the arithmetic happens in the kernels of ``lucid._ext.distill``: the forward
reads each distribution's logits twice while they sit in cache (the maxima,
then the normalisers and the divergence; a third time for the JSD) and keeps
a few float64 constants per distribution; neither softmax is written out.

With q = softmax(s / T) and p = softmax(t / T) along ``dim``, and D the
divergence of one distribution (before the :math:`T^2` factor):

==============  ==========================================  ==============================================
divergence      dD / ds                                      dD / dt
==============  ==========================================  ==============================================
"kl"            (q - p) / T                                  p (log p - log q - D) / T
"reverse_kl"    q (log q - log p - D) / T                    (p - q) / T
"jsd"           (1 - b) q (log q - log m - KL(q||m)) / T     b p (log p - log m - KL(p||m)) / T
==============  ==========================================  ==============================================

(b = beta, m = b p + (1 - b) q.) Each is the softmax chain rule
:math:`\partial D / \partial s_j = \frac{1}{T} q_j (G_j - \sum_k q_k G_k)` with
:math:`G = \partial D / \partial q`; a term whose probability is 0 is 0.

When the student requires grad, the forward also writes the student's
gradient (for an upstream gradient of 1) while each row is in cache, so a
training step reads the logits from memory once; the backward hands that
array over, scaled in place when the upstream gradient is not 1. A second
backward (``retain_graph=True``) and the teacher's gradient are recomputed
from the logits and the saved constants.

Under ``create_graph=True`` the backward instead builds the same gradients
from lucid's differentiable operations (``softmax``, ``log_softmax``, ``where``
and arithmetic, the formulas above), so second derivatives and
Hessian-vector products work, at the memory cost of the unfused composition.
"""
import math
import numbers
from collections import namedtuple

import numpy as np

from lucid import _kl_rules
from lucid._creation import as_tensor
from lucid._ext import _cache, distill as kernels
from lucid._tensor import Tensor
from lucid.autograd import grad_mode
from lucid.autograd.function import Function
from lucid.nn.functional.softmax import log_softmax, softmax
from lucid.ops.elementwise import where
from lucid._dims import normalize_dim
from lucid.ops.broadcasting import unbroadcast

DIVERGENCES = kernels.DIVERGENCES

# The options of one call, checked; ``axis`` is the normalised class axis.
_Options = namedtuple("_Options", "temperature axis reduction divergence beta scale_by_t2")



def distillation_loss(student_logits, teacher_logits, temperature=1.0, *, dim=-1,
                      reduction="batchmean", mask=None, divergence="kl", beta=0.5,
                      scale_by_t2=True):
    r"""Knowledge-distillation loss between a teacher's and a student's logits.

    Softens both sets of logits with the temperature :math:`T`, turns them
    into distributions along ``dim``, :math:`p = \operatorname{softmax}(t / T)`
    for the teacher and :math:`q = \operatorname{softmax}(s / T)` for the
    student, and measures how far the student is from the teacher, per
    distribution, fused: neither softmax is ever written out.

    Parameters
    ----------
    student_logits : Tensor or array_like
        The student's logits :math:`s`, float16, float32 or float64, any
        shape with the classes along ``dim``. Usually requires grad.
    teacher_logits : Tensor or array_like
        The teacher's logits :math:`t`; broadcasts with ``student_logits``
        (numpy rules), usually the same shape.
    temperature : float, default 1.0
        :math:`T > 0`, finite. Larger values soften both distributions.
    dim : int, default -1
        The class axis; negative values count from the end.
    reduction : {"batchmean", "mean", "sum", "none"}, default "batchmean"
        ``"none"``: the loss of every distribution (the broadcast shape
        without ``dim``). ``"sum"``: their sum. ``"mean"`` and
        ``"batchmean"``: the sum divided by the number of distributions that
        ``mask`` keeps, so for ``(B, S, V)`` logits with ``dim=-1`` by
        :math:`B S`.
    mask : Tensor or array_like of bool, optional
        Broadcastable to the per-distribution shape. False drops that
        distribution from the sum, from the denominator and from the
        gradient: it is never read, so -inf or NaN logits there do not
        matter; its ``"none"`` value and its gradient are 0.
    divergence : {"kl", "reverse_kl", "jsd"}, default "kl"
        ``"kl"``: :math:`D_{KL}(p \,\|\, q)` (Hinton et al.). ``"reverse_kl"``:
        :math:`D_{KL}(q \,\|\, p)` (MiniLLM). ``"jsd"``: the generalised
        Jensen-Shannon divergence of GKD,
        :math:`\beta D_{KL}(p \,\|\, m) + (1 - \beta) D_{KL}(q \,\|\, m)` with
        :math:`m = \beta p + (1 - \beta) q`.
    beta : float, default 0.5
        The JSD's weight, :math:`0 < \beta < 1`; ignored by the other two.
    scale_by_t2 : bool, default True
        Multiply by :math:`T^2`, so that gradient magnitudes do not shrink
        as :math:`1/T^2` when the temperature grows.

    Returns
    -------
    Tensor
        0-d for ``"sum"``, ``"mean"`` and ``"batchmean"``; the per-distribution
        losses for ``"none"``. Its dtype is the promotion of the input dtypes
        (float16 inputs compute in float32 and return float16).

    Raises
    ------
    TypeError
        If an input is not floating, ``mask`` is not bool, ``temperature`` or
        ``beta`` is not a real number, ``scale_by_t2`` is not a bool, or
        ``dim`` is not an integer.
    ValueError
        If ``temperature`` is not positive and finite, ``reduction`` or
        ``divergence`` is not one of the names above, ``beta`` is outside
        (0, 1) with ``divergence="jsd"``, the inputs are 0-d or their shapes
        (or the mask's) do not broadcast.
    IndexError
        If ``dim`` is out of range.

    See Also
    --------
    lucid.nn.DistillationLoss : The same as a callable module.
    lucid.nn.functional.kl_div : The divergence from log-probabilities and probabilities.

    Notes
    -----
    For ``divergence="kl"`` and one distribution the loss is

    .. math:: T^2 \sum_j p_j (\log p_j - \log q_j),

    the unfused composition
    ``kl_div(log_softmax(s / T, dim), softmax(t / T, dim)) * T**2`` summed
    per distribution, and equal to it evaluated in float64 within 1e-6
    relative (absolute floor 1e-7) for float32 inputs and 1e-12 for float64
    ones: the kernels compute every exp, log and sum in float64. With AVX-512
    the student's gradient of the KL from float32 logits keeps the two rows'
    exponentials as float32 for the classes whose gradient terms are small
    (under 1e-4 times the gradient's factor), an error under 6e-11, no larger
    than the float64 path's; the student's gradient of the reverse KL takes its
    own probabilities from those float32 exponentials (a relative error of
    6e-8, a product with no cancellation). Gradients are linear in the upstream gradient
    :math:`u` (``(loss * u).backward()``), and so is their absolute floor:
    :math:`10^{-7} |u|`.

    Special values are those of the composition: a class with teacher logit
    :math:`-\infty` has :math:`p_j = 0` and adds 0; a class with student logit
    :math:`-\infty` where :math:`p_j > 0` makes the KL :math:`+\infty`; a
    distribution whose logits are all :math:`-\infty` (or contain NaN or
    :math:`+\infty`) gives NaN, as ``log_softmax`` does. In the JSD's mixture
    :math:`m`, probabilities below :math:`e^{-700}` (about :math:`10^{-304}`)
    count as 0: their terms are below :math:`10^{-301}`, and :math:`m` then
    never rounds to 0 for a class that counts (the float64 composition's
    :math:`\beta p + (1 - \beta) q` does, for two subnormal probabilities, and
    gives an infinite term). When ``mask`` drops every distribution,
    ``"sum"`` is 0 and the means are NaN, with no warning.

    The gradient w.r.t. the student logits is written once: when the student
    requires grad, the forward computes it while each distribution's logits
    are in cache and the backward hands it over (so compute a loss whose
    gradient is not wanted under :class:`lucid.no_grad`). The teacher gets a
    gradient only when it requires one, recomputed from its logits and a few
    saved constants per distribution. Under ``create_graph=True`` the
    backward is built from lucid's differentiable operations instead, so
    second derivatives work, with the unfused composition's memory.

    Each distribution is computed by one thread in a fixed order, so results
    do not depend on the thread count.

    Examples
    --------
    >>> import lucid
    >>> from lucid.nn.functional import distillation_loss
    >>> student = lucid.tensor([[2.0, 0.5, 0.1], [0.3, 1.2, -0.4]], requires_grad=True)
    >>> teacher = lucid.tensor([[2.5, 0.2, 0.0], [0.1, 1.9, -1.0]])
    >>> loss = distillation_loss(student, teacher, temperature=2.0)
    >>> loss
    Tensor(0.1028..., grad_fn=<DistillationBackward>)
    >>> loss.backward()
    >>> student.grad
    Tensor([[-0.0858...,  0.0565...,  0.0293...],
            [ 0.0577..., -0.1301...,  0.0723...]])

    The same number (to float32 rounding) from the unfused composition, which
    writes out both softmaxes:

    >>> from lucid.nn.functional import kl_div, log_softmax, softmax
    >>> kl_div(log_softmax(student / 2.0, dim=1), softmax(teacher / 2.0, dim=1),
    ...        reduction="batchmean") * 4.0
    Tensor(0.1028..., grad_fn=<MulBackward>)

    Per distribution, and with a mask that drops the second one:

    >>> distillation_loss(student, teacher, 2.0, reduction="none")
    Tensor([0.0620..., 0.1437...], grad_fn=<DistillationBackward>)
    >>> distillation_loss(student, teacher, 2.0, mask=lucid.tensor([True, False]))
    Tensor(0.0620..., grad_fn=<DistillationBackward>)

    The reverse KL and the Jensen-Shannon divergence:

    >>> distillation_loss(student, teacher, 2.0, divergence="reverse_kl")
    Tensor(0.1060..., grad_fn=<DistillationBackward>)
    >>> distillation_loss(student, teacher, 2.0, divergence="jsd", beta=0.5)
    Tensor(0.0260..., grad_fn=<DistillationBackward>)
    """
    options = check_options(temperature, reduction, divergence, beta, scale_by_t2)
    student = _as_logits(student_logits, "student_logits")
    teacher = _as_logits(teacher_logits, "teacher_logits")
    shape = _loss_shape(student.shape, teacher.shape)
    axis = normalize_dim(dim, len(shape))
    keep = _keep_mask(mask, shape[:axis] + shape[axis + 1:])
    return _Distillation.apply(student, teacher, options._replace(axis=axis), keep)


def check_options(temperature, reduction, divergence, beta, scale_by_t2):
    """The options shared by the function and the module, checked (axis left for later)."""
    _kl_rules.check_reduction(reduction)
    if not isinstance(temperature, numbers.Real) or isinstance(temperature, (bool, np.bool_)):
        raise TypeError(f"temperature must be a real number, got {type(temperature).__name__} "
                        f"{temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
    if not isinstance(divergence, str) or divergence not in DIVERGENCES:
        allowed = ", ".join(repr(d) for d in DIVERGENCES)
        raise ValueError(f"divergence must be one of {allowed}; got {divergence!r}")
    if divergence == "jsd":
        if not isinstance(beta, numbers.Real) or isinstance(beta, (bool, np.bool_)):
            raise TypeError(f"beta must be a real number, got {type(beta).__name__} {beta!r}")
        if not 0 < beta < 1:
            raise ValueError(f"beta must be in the open interval (0, 1) for divergence='jsd', "
                             f"got {beta!r}")
    _kl_rules.check_bool(scale_by_t2, "scale_by_t2")
    return _Options(float(temperature), None, reduction, divergence,
                    float(beta) if divergence == "jsd" else 0.5, bool(scale_by_t2))


def _as_logits(value, name):
    tensor = as_tensor(value, name)
    _kl_rules.check_float_dtype(tensor.dtype, name, "distillation_loss")
    return tensor


def _loss_shape(student_shape, teacher_shape):
    try:
        shape = np.broadcast_shapes(student_shape, teacher_shape)
    except ValueError:
        raise ValueError(f"distillation_loss: student_logits of shape {tuple(student_shape)} and "
                         f"teacher_logits of shape {tuple(teacher_shape)} do not broadcast") from None
    if not shape:
        raise ValueError("distillation_loss: the logits are 0-d; they need a class dimension")
    return shape


def _keep_mask(mask, rows_shape):
    """``mask`` as a C-contiguous bool array of the per-distribution shape, or None."""
    if mask is None:
        return None
    array = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if array.dtype != np.bool_:
        raise TypeError(f"distillation_loss: mask must be a bool tensor or array, got dtype "
                        f"{array.dtype}")
    try:
        return np.ascontiguousarray(np.broadcast_to(array, rows_shape))
    except ValueError:
        raise ValueError(f"distillation_loss: mask of shape {array.shape} does not broadcast to "
                         f"the per-distribution shape {tuple(rows_shape)}") from None


def _divisor(options, n_rows, keep):
    """What the summed loss is divided by: the number of distributions kept (1 for "sum", "none")."""
    if options.reduction in ("none", "sum"):
        return 1
    return n_rows if keep is None else int(np.count_nonzero(keep))


class _Distillation(Function):
    """Records the fused loss on the tape (its node is ``DistillationBackward``)."""

    @staticmethod
    def forward(ctx, student, teacher, options, keep):
        ctx.save_for_backward(student, teacher)
        ctx.options, ctx.keep = options, keep
        s, t = _class_axis_last(student, teacher, options.axis)
        factor = options.temperature ** 2 if options.scale_by_t2 else 1.0
        divisor = _divisor(options, math.prod(s.shape[:-1]), keep)
        ctx.factor, ctx.divisor = factor, divisor
        # A student that needs a gradient gets it now, while each row is in cache.
        ctx.student_grad = None
        if divisor and ctx.needs_input_grad[0]:
            ctx.student_grad = _new_gradient(s.shape, student.dtype, options.axis)
        ctx.stats = kernels.forward(
            s, t, options.temperature, options.divergence, options.beta, keep,
            grad_coef=factor / options.temperature / max(divisor, 1),
            grad_out=None if ctx.student_grad is None
            else np.moveaxis(ctx.student_grad, options.axis, -1))
        per_row = kernels.divergences(ctx.stats) * factor
        dtype = np.result_type(student.dtype, teacher.dtype)
        if options.reduction == "none":
            return per_row.astype(dtype)
        # Both means divide by the distributions kept: elements and rows alike.
        total = _kl_rules.reduce_total(float(np.sum(per_row)), options.reduction, divisor, divisor)
        return np.asarray(total, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        student, teacher = ctx.saved_tensors
        if grad_mode.is_grad_enabled():
            # create_graph=True: gradients that are themselves differentiable.
            return _differentiable_gradients(ctx, student, teacher, grad) + (None, None)
        options = ctx.options
        upstream = np.asarray(grad._data, dtype=np.float64)
        grads = [None, None]
        for which in (0, 1):
            if ctx.needs_input_grad[which]:
                array = _gradient_array(ctx, student, teacher, upstream, which == 1)
                grads[which] = _to_input(array, teacher if which else student)
        return grads[0], grads[1], None, None


def _class_axis_last(student, teacher, axis):
    """Both logits broadcast to the loss shape with the class axis last: views, never copies."""
    shape = np.broadcast_shapes(student.shape, teacher.shape)
    return tuple(np.moveaxis(np.broadcast_to(x._data, shape), axis, -1) for x in (student, teacher))


def _new_gradient(moved_shape, dtype, axis):
    """A fresh gradient array of the loss shape (class axis at ``axis``), C-contiguous.

    Allocated in the inputs' own axis order, so that the array handed to the
    tape is the base array (which a leaf adopts as its ``.grad``), not a view;
    its memory comes from the gradient buffer cache (``lucid.set_cache_limit``).
    """
    return _cache.empty(_unmoved(moved_shape, axis), dtype)


def _unmoved(moved_shape, axis):
    """The loss shape from the shape with the class axis moved last."""
    shape = list(moved_shape[:-1])
    shape.insert(axis, moved_shape[-1])
    return tuple(shape)


def _gradient_array(ctx, student, teacher, upstream, wrt_teacher):
    """The gradient w.r.t. one input, in the loss shape, for the upstream gradient ``upstream``."""
    options = ctx.options
    if not wrt_teacher and ctx.student_grad is not None:
        # Computed by the forward for an upstream gradient of 1; handed over once.
        array, ctx.student_grad = ctx.student_grad, None
        if upstream.ndim == 0 and upstream != 1:
            np.multiply(array, upstream, out=array, casting="unsafe")
        elif upstream.ndim:
            np.multiply(array, np.expand_dims(upstream, options.axis), out=array,
                        casting="unsafe")
        return array
    s, t = _class_axis_last(student, teacher, options.axis)
    out = _new_gradient(s.shape, (teacher if wrt_teacher else student).dtype, options.axis)
    coef = upstream * (ctx.factor / options.temperature / (ctx.divisor or 1))
    kernels.gradient(s, t, ctx.stats, coef, options.temperature, options.divergence,
                     options.beta, np.moveaxis(out, options.axis, -1), ctx.keep,
                     wrt_teacher=wrt_teacher)
    return out


def _to_input(grad, tensor):
    """A gradient (array or Tensor) of the loss shape summed back to ``tensor``'s shape and dtype."""
    grad = grad if isinstance(grad, Tensor) else Tensor(grad)
    if grad.shape != tensor.shape:
        grad = unbroadcast(grad, tensor.shape)
    return grad if grad.dtype == tensor.dtype else grad.to(tensor.dtype)


def _differentiable_gradients(ctx, student, teacher, grad):
    """Both gradients from lucid's differentiable operations (the module docstring's table)."""
    options, axis = ctx.options, ctx.options.axis
    inv_t = 1.0 / options.temperature
    log_q, log_p = log_softmax(student * inv_t, axis), log_softmax(teacher * inv_t, axis)
    q, p = softmax(student * inv_t, axis), softmax(teacher * inv_t, axis)

    def term(probability, value):
        # 0 log 0 = 0, as the kernels: selected, never multiplied by 0.
        return where(probability == 0, 0.0, probability * value)

    def weighted(probability, log_probability, log_ref):
        row = term(probability, log_probability - log_ref).sum(dim=axis, keepdim=True)
        return term(probability, log_probability - log_ref - row)

    if options.divergence == "kl":
        grad_s, grad_t = q - p, weighted(p, log_p, log_q)
    elif options.divergence == "reverse_kl":
        grad_s, grad_t = weighted(q, log_q, log_p), p - q
    else:
        beta = options.beta
        log_m = (p * beta + q * (1 - beta)).log()
        grad_s, grad_t = weighted(q, log_q, log_m) * (1 - beta), weighted(p, log_p, log_m) * beta
    scale = grad * (ctx.factor * inv_t / (ctx.divisor or 1))
    if scale.ndim:
        scale = scale.unsqueeze(axis)
    grads = []
    for wanted, value, tensor in ((0, grad_s, student), (1, grad_t, teacher)):
        if not ctx.needs_input_grad[wanted]:
            grads.append(None)
            continue
        value = value * scale
        if ctx.keep is not None:
            value = where(np.expand_dims(ctx.keep, axis), value, 0.0)
        grads.append(_to_input(value, tensor))
    return tuple(grads)
