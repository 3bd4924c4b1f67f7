"""Array-level KL divergence: numpy arrays in, numpy arrays or floats out.

The wrappers reinterpret float16 storage as uint16 for the kernels (which
widen it exactly) and hand the operands, as they are, to the OpenMP kernels
of ``_kl_div``, which broadcast and walk any layout themselves. The compute
precision is float64 when either input is float64 and float32 otherwise;
outputs are returned in it, or in float16 when both inputs are float16 (the
kernels write float16 directly, without a float32 copy).
"""
import math

import numpy as np

from lucid._ext import _cache, _kl_div
from lucid._ext._openmp_helpers import effective_n_threads


def compute_dtype(*dtypes):
    """Precision the kernels compute in: float64 if any input is, else float32."""
    return np.dtype(np.float64) if np.float64 in dtypes else np.dtype(np.float32)


def output_dtype(*dtypes):
    """dtype of ``"none"`` and of the gradients: float16 when every input is, else compute_dtype."""
    if all(np.dtype(d) == np.float16 for d in dtypes):
        return np.dtype(np.float16)
    return compute_dtype(*dtypes)


def _kernel_view(a):
    # The kernels read float16 as its raw bits (a view, never a copy).
    return a.view(np.uint16) if a.dtype == np.float16 else a


def _loss_shape(x, target):
    return x.shape if x.shape == target.shape else np.broadcast_shapes(x.shape, target.shape)


def _n_threads(shape):
    # Decided once here, for the whole call: small inputs get 1 (no OpenMP region).
    return effective_n_threads(math.prod(shape), _kl_div.MIN_WORK_PER_THREAD)


def _uses_double(*arrays):
    return any(a.dtype == np.float64 for a in arrays)


def kl_div_sum(x, target, log_target):
    """Sum of the per-element losses over the broadcast shape, as a Python float.

    Allocates nothing input-sized: broadcasting, any layout and float16 are read in place.
    """
    shape = _loss_shape(x, target)
    if 0 in shape:
        return 0.0
    return _kl_div.kl_div_sum(tuple(shape), _kernel_view(x), _kernel_view(target), log_target,
                              _uses_double(x, target), _n_threads(shape))


def kl_div_elementwise(x, target, log_target):
    """Per-element losses, shape ``broadcast(x, target)``, in ``output_dtype``."""
    shape = _loss_shape(x, target)
    out = np.empty(shape, dtype=output_dtype(x.dtype, target.dtype))
    if out.size:
        _kl_div.kl_div_elementwise(tuple(shape), _kernel_view(x), _kernel_view(target),
                                   _kernel_view(out), log_target, _uses_double(x, target),
                                   _n_threads(shape))
    return out


def kl_div_grad(x, target, grad, log_target, wrt_target, half_output=True):
    """Gradient of the per-element losses times ``grad``, broadcast shape, ``output_dtype``.

    ``wrt_target`` selects d/d target instead of d/d x. ``grad`` broadcasts to the
    loss shape; a single value (a reduction's 0-d gradient) is passed to the
    kernels as one number, never broadcast into an array. ``half_output=False``
    keeps float16 inputs' gradient in float32, for a caller that still sums it
    (a broadcast input's gradient), which float16 would round at every step.
    """
    shape = _loss_shape(x, target)
    dtype = output_dtype(x.dtype, target.dtype)
    # From the gradient buffer cache (lucid.set_cache_limit): a training step's
    # gradient reuses the pages of the last one. The kernel writes every element.
    out = _cache.empty(shape, dtype if half_output else compute_dtype(dtype))
    if out.size:
        grad = np.asarray(grad, dtype=compute_dtype(x.dtype, target.dtype))
        scalar = grad.size == 1
        _kl_div.kl_div_grad(tuple(shape), _kernel_view(x), _kernel_view(target),
                            None if scalar else grad, float(grad.reshape(-1)[0]) if scalar else 0.0,
                            _kernel_view(out), log_target, wrt_target, _uses_double(x, target),
                            _n_threads(shape))
    return out


def kl_div_rows(x, target, axis, log_target, select=None, sums=False):
    """KL of every distribution along ``axis`` of the broadcast shape, in float64.

    Returns ``(kl, p_sums, q_sums)``: 1-D arrays with one value per
    distribution, in C order of the other axes. ``select`` (bool or uint8, one
    per distribution) skips the distributions it marks False: their inputs are
    never read and their KL is 0. With ``sums`` the kernels also add up p (or
    exp(target) with ``log_target``) and exp(x) per distribution in the same
    pass; otherwise ``p_sums`` and ``q_sums`` are None. The sums are for
    validation: in float32 (float16 and float32 inputs) they are good to
    1e-4 relative, exp being a cheaper one for them, and a NaN in x may
    leave exp(x)'s sum finite (that distribution's KL is NaN).
    """
    shape = tuple(_loss_shape(x, target))
    classes = shape[axis]
    n_rows = int(np.prod(shape[:axis] + shape[axis + 1:]))
    kl = np.zeros(n_rows)
    p_sums = np.zeros(n_rows) if sums else None
    q_sums = np.zeros(n_rows) if sums else None
    if n_rows and classes:
        if select is not None:
            select = np.ascontiguousarray(select, dtype=np.uint8).reshape(n_rows)
        _kl_div.kl_div_rows(shape, axis, _kernel_view(x), _kernel_view(target), kl, p_sums, q_sums,
                            select, log_target, _uses_double(x, target), _n_threads(shape))
    return kl, p_sums, q_sums
