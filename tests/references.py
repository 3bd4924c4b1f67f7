"""Independent float64 references and test data shared by the test files.

A plain module rather than part of conftest.py, so that processes the tests
spawn (which import a test module afresh) find it by name: ``conftest`` is
also the name of the repository root's pytest plugin.
"""
import numpy as np


def reference_losses(x, target, log_target=False):
    """The per-element table of docs/api/kl_div.rst, in float64 numpy, written independently."""
    x, t = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(target, np.float64))
    with np.errstate(all="ignore"):
        if log_target:
            positive_p, zero_p = t > -np.inf, t == -np.inf
            loss = np.exp(t) * (t - x)
        else:
            positive_p, zero_p = t > 0, t == 0
            loss = t * (np.log(np.where(positive_p, t, 1.0)) - x)
        # q = 0 where p > 0: +inf, and x = +inf (q infinite): -inf, even when
        # p underflows to 0 in float64.
        loss = np.where(x == -np.inf, np.inf, loss)
        loss = np.where((x == np.inf) & np.isfinite(t), -np.inf, loss)
        zero = np.where(np.isnan(x) | (x == np.inf), np.nan, 0.0)
        return np.where(positive_p, loss, np.where(zero_p, zero, np.nan))


def reference_reduce(losses, reduction):
    """Reduce float64 reference losses the way docs/api/kl_div.rst says."""
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / losses.size if losses.size else np.nan
    if losses.ndim == 0:
        return total
    return total / losses.shape[0] if losses.shape[0] else np.nan


def log_softmax_np(logits, axis=-1):
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def random_distributions(rng, shape, dtype=np.float64):
    """(log q, p): log-probabilities and probabilities over the last axis."""
    log_q = log_softmax_np(rng.standard_normal(shape))
    p = np.exp(log_softmax_np(rng.standard_normal(shape)))
    return log_q.astype(dtype), p.astype(dtype)
