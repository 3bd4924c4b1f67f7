"""``kl_div``: argument checking, reductions and the autograd record.

The arithmetic happens in the OpenMP kernels of ``lucid._ext``; this module
decides what to compute (which reduction, which dtype), checks that the
arguments make sense, and records the operation on the autograd tape.
"""
import math
import warnings

import numpy as np

from lucid import _kl_rules
from lucid._creation import as_tensor
from lucid._ext import kl_div as kernels
from lucid.autograd.function import Function
from lucid.nn.functional._kl_div_backward import KLDivGrad, _reduce_to
from lucid.nn.functional._kl_div_dim import (KLDivDim, check_elements, class_axis,
                                             distribution_selection)


def kl_div(x, target, size_average=None, reduction="mean", log_target=False, *, dim=None,
           mask=None, validate=False):
    r"""Kullback-Leibler divergence between a target and a predicted distribution.

    Measures the information lost when the predicted distribution :math:`q`
    (given as log-probabilities ``x``) is used to approximate the target
    distribution :math:`p`. Typical uses: knowledge distillation (a student's
    log-probabilities against a teacher's probabilities), the KL term of a
    variational objective, and KL-regularised policy updates.

    The convention is the reference framework's (PyTorch's ``F.kl_div``):
    ``x`` holds :math:`\log q` and ``target`` holds :math:`p`, or :math:`\log p`
    when ``log_target=True``. The arguments are not interchangeable: KL is
    asymmetric, :math:`D_{KL}(p \,\|\, q) \ne D_{KL}(q \,\|\, p)` in general,
    so it is not a metric.

    Parameters
    ----------
    x : Tensor or array_like
        Log-probabilities :math:`\log q` of the predicted distribution, any
        shape. Array-likes are read in place, never copied.
    target : Tensor or array_like
        Probabilities :math:`p` of the target distribution, or :math:`\log p`
        when ``log_target=True``. Broadcasts with ``x`` (numpy rules); usually
        the same shape.
    size_average : None
        Deprecated and ignored; kept so that old call sites still run. Any
        value other than None emits a ``FutureWarning``. Use ``reduction``.
    reduction : {"mean", "batchmean", "sum", "none"}, default "mean"
        ``"none"``: the per-element losses, in the broadcast shape.
        ``"sum"``: their sum. ``"mean"``: the sum divided by the number of
        elements. ``"batchmean"``: the sum divided by the size of the leading
        (batch) dimension, which is the KL divergence per sample.
    log_target : bool, default False
        Whether ``target`` holds :math:`\log p` instead of :math:`p`, which
        saves a ``log``/``exp`` round trip and keeps tiny probabilities exact.
    dim : int, optional
        The class axis (keyword-only; negative values count from the end).
        With ``dim`` every slice along it is one distribution: ``"none"``
        returns the KL of each (the loss shape without axis ``dim``),
        ``"sum"`` their sum, ``"mean"`` and ``"batchmean"`` their mean, the
        sum divided by the number of distributions (``B * S`` for a
        ``(B, S, V)`` loss with ``dim=-1``). None, the default, is the
        element-wise behaviour above, unchanged.
    mask : Tensor or array_like of bool, optional
        Requires ``dim``. Broadcasts to the distributions' shape (the loss
        shape without ``dim``); False drops a distribution from the sum, from
        the denominator and from the gradient, whatever it holds (padding of
        -inf or NaN included): it is selected out, never multiplied by 0.
        ``"none"`` gives 0 there. With everything dropped, ``"sum"`` is 0 and
        the means are NaN (the mean of nothing), without a warning.
    validate : bool, default False
        Check the distributions in the forward pass and raise ``ValueError``
        naming the first bad one (its index, and what is wrong): p (the
        target, or ``exp(target)`` with ``log_target``) has a negative or NaN
        entry, or, with ``dim``, p or ``exp(x)`` does not sum to 1 within
        1e-3 for float32 (1e-2 for float16, 1e-6 for float64) inputs.
        Masked distributions are not checked.

    Returns
    -------
    Tensor
        A 0-d tensor for ``"sum"``, ``"mean"`` and ``"batchmean"``; the
        per-element losses (or, with ``dim``, the per-distribution KL) for
        ``"none"``. Its dtype is the promotion of the input dtypes (numpy
        rules); float16 inputs compute in float32 and return float16.

    Raises
    ------
    ValueError
        If ``reduction`` is not one of the four names, the shapes do not
        broadcast or broadcast to more elements than an array can index, an
        input has more than 32 dimensions, ``mask`` is given without ``dim``
        or does not broadcast to the distributions, or ``validate=True``
        finds a distribution that is not one.
    IndexError
        If ``dim`` is out of range, as the reference framework says it.
    TypeError
        If an input is not a floating tensor or array (integer, bool, complex,
        None, strings, ragged lists), ``log_target`` or ``validate`` is not a
        bool, ``dim`` is not an integer, or ``mask`` does not hold bools.

    See Also
    --------
    lucid.nn.KLDivLoss : The same as a callable module.
    lucid.nn.functional.log_softmax : Turns logits into ``x``.

    Notes
    -----
    The per-element loss is

    .. math:: L_i = p_i \, (\log p_i - \log q_i) = p_i \, (\log p_i - x_i),

    and summed over a distribution it is the KL divergence

    .. math:: D_{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i} \ge 0,

    with equality if and only if :math:`p = q` almost everywhere.

    ``"mean"`` divides by the element count, not the number of
    distributions, so for a batch of ``B`` distributions over ``C`` classes
    it reports the KL divided by ``C`` as well: it under-reports the
    divergence. ``"batchmean"`` gives the mean KL per distribution; prefer it
    whenever the absolute value matters. ``"mean"`` stays the default for
    compatibility with the reference framework.

    Special values: where :math:`p = 0` the loss is 0 (the convention
    :math:`0 \log 0 = 0`), also when ``x`` is :math:`-\infty`, where the
    reference framework returns NaN; where :math:`p > 0` and ``x`` is
    :math:`-\infty` the loss is :math:`+\infty` (and :math:`-\infty` where ``x``
    is :math:`+\infty`), also where ``exp(target)`` rounds to 0 with
    ``log_target=True``; a negative :math:`p` or any NaN gives NaN, never a
    silently clipped value. A reduction over a huge input stops at Ctrl-C
    (``KeyboardInterrupt``) when called from the main thread.

    Reductions are a fixed-order blocked sum: the per-element losses,
    computed in the compute precision (float32 for float16 and float32
    inputs), are added in pairs (elements 16 apart) in that precision, and
    each pair is widened to float64 and added into one of 16 float64 lanes;
    blocks of 4096 elements of the loss shape's C order are summed that way
    and their sums added in block order, in float64. So a result is bitwise
    identical for any number of threads and any memory layout of the same
    values, float32 results are within :math:`2^{-22}` of
    :math:`\sum_i |p_i \log p_i| + |p_i x_i|` of the exact sum, and
    nothing the size of the input is allocated. With ``dim`` each
    distribution is summed the same way and the per-distribution values
    are added in C order.

    Gradients flow to both ``x`` and ``target`` through lucid's autograd
    tape; the gradient is itself differentiable (``create_graph=True``).

    Examples
    --------
    The KL divergence of p = [0.8, 0.15, 0.05] from q = softmax([2.0, 0.5, 0.1]):

    >>> import lucid
    >>> from lucid.nn.functional import kl_div, log_softmax
    >>> log_q = log_softmax(lucid.tensor([[2.0, 0.5, 0.1]]), dim=1)
    >>> p = lucid.tensor([[0.8, 0.15, 0.05]])
    >>> kl_div(log_q, p, reduction="batchmean")
    Tensor(0.0239...)

    ``"mean"`` divides by the 3 elements instead of the 1 row:

    >>> kl_div(log_q, p, reduction="mean")
    Tensor(0.00796...)
    >>> kl_div(log_q, p, reduction="sum")
    Tensor(0.0239...)
    >>> kl_div(log_q, p, reduction="none")
    Tensor([[ 0.0749..., -0.0120..., -0.0389...]])

    With the target as log-probabilities:

    >>> kl_div(log_q, p.log(), reduction="batchmean", log_target=True)
    Tensor(0.0239...)

    Gradients reach the logits through ``log_softmax``:

    >>> logits = lucid.tensor([[2.0, 0.5, 0.1]], requires_grad=True)
    >>> loss = kl_div(log_softmax(logits, dim=1), p, reduction="batchmean")
    >>> loss.backward()
    >>> logits.grad
    Tensor([[-0.0715...,  0.0125...,  0.0589...]])

    A target shared by every row broadcasts without being copied:

    >>> log_q2 = log_softmax(lucid.tensor([[2.0, 0.5, 0.1], [0.1, 0.5, 2.0]]), dim=1)
    >>> kl_div(log_q2, p, reduction="none").shape
    (2, 3)

    With a class axis, ``batchmean`` is the mean KL per distribution. For a
    batch of 2 sequences of 3 tokens over 4 classes, ``batchmean`` without
    ``dim`` divides by the 2 sequences, with ``dim=-1`` by the 6 tokens:

    >>> logits = lucid.tensor([[[2.0, 0.5, 0.1, 0.0]] * 3, [[0.1, 0.5, 2.0, 0.0]] * 3])
    >>> teacher = lucid.tensor([[[0.7, 0.1, 0.1, 0.1]] * 3] * 2)
    >>> log_q3 = log_softmax(logits, dim=-1)
    >>> kl_div(log_q3, teacher, reduction="batchmean")
    Tensor(1.7410...)
    >>> kl_div(log_q3, teacher, reduction="batchmean", dim=-1)
    Tensor(0.5803...)
    >>> kl_div(log_q3, teacher, reduction="none", dim=-1)
    Tensor([[0.0103..., 0.0103..., 0.0103...],
            [1.1503..., 1.1503..., 1.1503...]])

    A mask leaves padding out of the sum and the count, even padding of NaN:

    >>> padded = teacher.numpy().copy()
    >>> padded[1, 2] = float("nan")
    >>> keep = lucid.tensor([[True, True, True], [True, True, False]])
    >>> kl_div(log_q3, padded, reduction="batchmean", dim=-1, mask=keep)
    Tensor(0.4663...)

    ``validate=True`` names a distribution that is not one:

    >>> kl_div(log_q3, teacher * 1.5, dim=-1, validate=True)
    Traceback (most recent call last):
        ...
    ValueError: kl_div(validate=True): target of distribution (0, 0) (the loss's [0, 0, :]) sums to 1.5, not 1 (tolerance 0.001 for float32)

    Errors name what is wrong:

    >>> kl_div(lucid.zeros(2, 3), lucid.zeros(4))
    Traceback (most recent call last):
        ...
    ValueError: kl_div: x of shape (2, 3) and target of shape (4,) do not broadcast
    """
    _warn_if_size_average(size_average)
    _kl_rules.check_reduction(reduction)
    for name, flag in (("log_target", log_target), ("validate", validate)):
        _kl_rules.check_bool(flag, name)
    x = _as_float_tensor(x, "x")
    target = _as_float_tensor(target, "target")
    shape = _loss_shape(x.shape, target.shape)
    if dim is not None:
        axis = class_axis(dim, len(shape))
        select = distribution_selection(mask, shape, axis)
        return KLDivDim.apply(x, target, reduction, bool(log_target), axis, select, bool(validate))
    if mask is not None:
        raise ValueError("kl_div: mask requires dim, the class axis whose distributions it selects")
    result = KLDiv.apply(x, target, reduction, bool(log_target))
    if validate:
        check_elements(x._data, target._data, bool(log_target), result._data)
    return result


def _warn_if_size_average(size_average):
    if size_average is not None:
        # stacklevel 3: past this helper and kl_div, at the caller's line.
        warnings.warn(
            f"kl_div: size_average={size_average!r} is deprecated and ignored; "
            "reduction decides how the loss is reduced (use reduction='sum' for what "
            "size_average=False did, reduction='mean' or 'batchmean' for averages).",
            FutureWarning,
            stacklevel=3,
        )


def _as_float_tensor(value, name):
    tensor = as_tensor(value, name)
    _kl_rules.check_float_dtype(tensor.dtype, name, "kl_div")
    return tensor


# numpy's broadcasting machinery, which the kernels' layout analysis uses,
# handles up to 32 dimensions.
_MAX_DIMS = 32


def _loss_shape(x_shape, target_shape):
    """numpy's broadcast of the two shapes, with errors that say what is wrong."""
    for name, shape in (("x", x_shape), ("target", target_shape)):
        if len(shape) > _MAX_DIMS:
            raise ValueError(f"kl_div: {name} has {len(shape)} dimensions; "
                             f"at most {_MAX_DIMS} are supported")
    ndim = max(len(x_shape), len(target_shape))
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in (x_shape, target_shape)]
    if any(a != b and 1 not in (a, b) for a, b in zip(*padded)):
        raise ValueError(
            f"kl_div: x of shape {tuple(x_shape)} and target of shape {tuple(target_shape)} "
            "do not broadcast"
        )
    shape = tuple(max(a, b) if 0 not in (a, b) else 0 for a, b in zip(*padded))
    if math.prod(shape) > np.iinfo(np.intp).max:
        raise ValueError(
            f"kl_div: x of shape {tuple(x_shape)} and target of shape {tuple(target_shape)} "
            f"broadcast to {shape}, more elements than an array can index"
        )
    return shape


def _reduction_count(shape, reduction):
    """What the summed loss is divided by (0 gives NaN, as the mean of nothing)."""
    return _kl_rules.divisor(reduction, math.prod(shape), _kl_rules.leading_dimension(shape))


class KLDiv(Function):
    """Records kl_div on the tape; its vjp is :class:`KLDivGrad`."""

    @staticmethod
    def forward(ctx, x, target, reduction, log_target):
        ctx.save_for_backward(x, target)
        ctx.reduction = reduction
        ctx.log_target = log_target
        dtype = np.result_type(x.dtype, target.dtype)
        if reduction == "none":
            return kernels.kl_div_elementwise(x._data, target._data, log_target).astype(
                dtype, copy=False)
        shape = _loss_shape(x.shape, target.shape)
        total = kernels.kl_div_sum(x._data, target._data, log_target)
        count = _reduction_count(shape, reduction)
        return np.asarray(_kl_rules.mean_over(total, count), dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        x, target = ctx.saved_tensors
        shape = _loss_shape(x.shape, target.shape)
        if ctx.reduction != "none":
            count = _reduction_count(shape, ctx.reduction)
            grad = grad / count if count else grad * math.nan
        grad_x = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_x = _reduce_to(KLDivGrad.apply(x, target, grad, ctx.log_target, False, None), x)
        if ctx.needs_input_grad[1]:
            grad_target = _reduce_to(KLDivGrad.apply(x, target, grad, ctx.log_target, True, None),
                                     target)
        return grad_x, grad_target, None, None
