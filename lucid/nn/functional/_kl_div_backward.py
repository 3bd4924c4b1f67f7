"""The recorded gradient of kl_div, itself differentiable.

``KLDivGrad`` computes d loss / d x or d loss / d target (times the upstream
gradient) with the OpenMP kernels. Its own vjp is written with lucid's
differentiable ops, so ``create_graph=True`` gives second derivatives
(Hessian-vector products through ``kl_div``).
"""
import numpy as np

from lucid._ext import kl_div as kernels
from lucid.autograd.function import Function
from lucid.ops.broadcasting import unbroadcast
from lucid.ops.elementwise import where


def _loss_shape(x, target):
    return x.shape if x.shape == target.shape else np.broadcast_shapes(x.shape, target.shape)


def _reduce_to(grad, tensor):
    # The vjp of a broadcast input is summed back to its shape, in its dtype.
    return unbroadcast(grad, tensor.shape).to(tensor.dtype)


class KLDivGrad(Function):
    """d loss / d x (``wrt_target=False``) or d loss / d target, times ``grad``.

    With p = target (or exp(target) when ``log_target``):

    =============  ==================  ==========================
    log_target     d / d x             d / d target
    =============  ==================  ==========================
    False          -p g                (log p + 1 - x) g
    True           -p g                p (log p - x + 1) g
    =============  ==================  ==========================

    ``select`` (None, or bool broadcastable to the loss shape) keeps the
    gradient where True and sets it to 0 elsewhere, whatever the inputs hold
    there (NaN, inf): the masked distributions of ``kl_div(..., mask=...)``
    are selected out, never multiplied by 0; second derivatives too.
    """

    @staticmethod
    def forward(ctx, x, target, grad, log_target, wrt_target, select):
        ctx.save_for_backward(x, target, grad)
        ctx.log_target = log_target
        ctx.wrt_target = wrt_target
        ctx.select = select
        # float16 straight from the kernel, unless the gradient is still to be
        # summed back to a broadcast input's shape: that sum runs in float32.
        wrt = target if wrt_target else x
        out = kernels.kl_div_grad(x._data, target._data, grad._data, log_target, wrt_target,
                                  half_output=wrt.shape == _loss_shape(x, target))
        if select is not None:
            np.copyto(out, 0, where=~select)
        return out

    @staticmethod
    def backward(ctx, h):
        x, target, g = ctx.saved_tensors
        if ctx.wrt_target:
            dx, dt, dg = _second_derivatives_wrt_target(x, target, g, h, ctx.log_target)
        else:
            dx, dt, dg = _second_derivatives_wrt_x(target, g, h, ctx.log_target)
        if ctx.select is not None:
            dx, dt, dg = (None if d is None else where(ctx.select, d, 0) for d in (dx, dt, dg))
        return (
            None if dx is None else _reduce_to(dx, x),
            _reduce_to(dt, target),
            _reduce_to(dg, g),
            None,
            None,
            None,
        )


def _second_derivatives_wrt_x(target, g, h, log_target):
    # out = -p g: no x dependence; d/dp = -g, d/dg = -p.
    p = target.exp() if log_target else target
    dt = -(h * g * p) if log_target else -(h * g)
    return None, dt, -(h * p)


def _second_derivatives_wrt_target(x, target, g, h, log_target):
    if log_target:
        # out = e^t (t - x + 1) g
        p = target.exp()
        return -(h * g * p), h * g * p * (target - x + 2), h * p * (target - x + 1)
    # out = (log t + 1 - x) g
    return -(h * g), h * g / target, h * (target.log() + 1 - x)
