"""Array-level KL divergence: numpy arrays in, numpy arrays or floats out.

The wrappers broadcast the two inputs as views, reinterpret float16 storage as
uint16 for the kernels (which widen it exactly), and hand 2-D pieces to the
OpenMP kernels of ``_kl_div``. The compute precision is float64 when either
input is float64 and float32 otherwise; outputs are returned in it.

Operands that already are C-contiguous arrays of the loss shape, the common
case, skip the general layout analysis: they become one ``(1, n)`` piece
directly, the piece ``two_d_pieces`` would give them, so results are the same
bit for bit, only small inputs get there sooner.
"""
import math

import numpy as np

from lucid._ext import _kl_div
from lucid._ext.strided import two_d_pieces


def compute_dtype(*dtypes):
    """Precision the kernels compute in: float64 if any input is, else float32."""
    return np.dtype(np.float64) if np.float64 in dtypes else np.dtype(np.float32)


def _kernel_view(a):
    # The kernels read float16 as its raw bits (a view, never a copy).
    return a.view(np.uint16) if a.dtype == np.float16 else a


def _loss_shape(x, target):
    return x.shape if x.shape == target.shape else np.broadcast_shapes(x.shape, target.shape)


def _pieces(shape, *arrays):
    """Aligned 2-D views of the operands broadcast to ``shape`` (see ``two_d_pieces``)."""
    if all(a.shape == shape and a.flags.c_contiguous for a in arrays):
        return [tuple(_kernel_view(a).reshape(1, math.prod(shape)) for a in arrays)]
    # broadcast_to views are read-only, so operands of the loss shape (the
    # output among them) are passed as they are.
    return two_d_pieces(shape, *[_kernel_view(a if a.shape == shape else np.broadcast_to(a, shape))
                                 for a in arrays])


def kl_div_sum(x, target, log_target):
    """Sum of the per-element losses over the broadcast shape, as a Python float.

    Allocates nothing input-sized: broadcasting and float16 are read in place.
    """
    shape = _loss_shape(x, target)
    if 0 in shape:
        return 0.0
    total = 0.0
    for xv, tv in _pieces(shape, x, target):
        total += _kl_div.kl_div_sum_2d(xv, tv, log_target)
    return total


def kl_div_elementwise(x, target, log_target):
    """Per-element losses, shape ``broadcast(x, target)``, in the compute precision."""
    shape = _loss_shape(x, target)
    out = np.empty(shape, dtype=compute_dtype(x.dtype, target.dtype))
    if out.size:
        for xv, tv, ov in _pieces(shape, x, target, out):
            _kl_div.kl_div_none_2d(xv, tv, ov, log_target)
    return out


def kl_div_grad(x, target, grad, log_target, wrt_target):
    """Gradient of the per-element losses times ``grad``, broadcast shape, compute precision.

    ``wrt_target`` selects d/d target instead of d/d x. ``grad`` broadcasts to the
    loss shape; a single value (a reduction's 0-d gradient) is passed to the
    kernels as one number, never broadcast into an array.
    """
    shape = _loss_shape(x, target)
    dtype = compute_dtype(x.dtype, target.dtype)
    out = np.empty(shape, dtype=dtype)
    if out.size:
        grad = np.asarray(grad, dtype=dtype)
        if grad.size == 1:
            scalar = grad.reshape(1, 1)
            for xv, tv, ov in _pieces(shape, x, target, out):
                _kl_div.kl_div_grad_2d(xv, tv, scalar, ov, log_target, wrt_target)
        else:
            for xv, tv, gv, ov in _pieces(shape, x, target, grad, out):
                _kl_div.kl_div_grad_2d(xv, tv, gv, ov, log_target, wrt_target)
    return out
