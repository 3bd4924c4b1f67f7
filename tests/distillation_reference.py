"""The unfused distillation loss in float64 numpy, written independently of lucid's kernels.

The composition every distillation script writes, ``log_softmax`` of both
logits over T, the divergence summed per distribution, times T**2, and its
gradients by the chain rule through each step (the log-softmax backward
``g - softmax * sum(g)``), not through lucid's simplified closed forms.
"""
import numpy as np


def log_softmax(z):
    """log_softmax over the last axis in float64, as the reference framework computes it."""
    with np.errstate(all="ignore"):
        shifted = z - np.max(z, axis=-1, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _times_prob(prob, value):
    # A term with probability 0 is 0 (0 log 0 = 0), as kl_div's convention.
    with np.errstate(all="ignore"):
        return np.where(prob == 0, 0.0, prob * value)


def per_row(student, teacher, temperature, divergence="kl", beta=0.5, dim=-1):
    """Per-distribution loss and d loss_row / d student, d loss_row / d teacher (upstream 1).

    Inputs are broadcast and converted to float64; the class axis is ``dim``.
    Returns ``(loss, grad_student, grad_teacher)`` with the class axis back at ``dim``
    and the T**2 factor not applied.
    """
    s, t = np.broadcast_arrays(np.asarray(student, np.float64), np.asarray(teacher, np.float64))
    s, t = np.moveaxis(s, dim, -1), np.moveaxis(t, dim, -1)
    log_q, log_p = log_softmax(s / temperature), log_softmax(t / temperature)
    q, p = np.exp(log_q), np.exp(log_p)
    with np.errstate(all="ignore"):
        if divergence == "kl":
            loss = _times_prob(p, log_p - log_q).sum(-1)
            g_log_q, g_log_p = -p, _times_prob(p, log_p - log_q + 1)
        elif divergence == "reverse_kl":
            loss = _times_prob(q, log_q - log_p).sum(-1)
            g_log_q, g_log_p = _times_prob(q, log_q - log_p + 1), -q
        else:
            # log m in log space: beta p + (1 - beta) q would round to 0 (and
            # give an infinite term) where p and q are both subnormal.
            log_m = np.logaddexp(np.log(beta) + log_p, np.log1p(-beta) + log_q)
            loss = (beta * _times_prob(p, log_p - log_m).sum(-1)
                    + (1 - beta) * _times_prob(q, log_q - log_m).sum(-1))
            g_log_p = beta * _times_prob(p, log_p - log_m)
            g_log_q = (1 - beta) * _times_prob(q, log_q - log_m)
        # The log-softmax backward, then the division by T.
        grad_s = (g_log_q - q * g_log_q.sum(-1, keepdims=True)) / temperature
        grad_t = (g_log_p - p * g_log_p.sum(-1, keepdims=True)) / temperature
    return loss, np.moveaxis(grad_s, -1, dim), np.moveaxis(grad_t, -1, dim)


def reduce(losses, reduction, keep=None):
    """SPEC's reductions over the per-distribution losses, ``keep`` False rows dropped."""
    keep = np.ones(losses.shape, bool) if keep is None else np.broadcast_to(keep, losses.shape)
    if reduction == "none":
        return np.where(keep, losses, 0.0)
    total = losses[keep].sum()
    if reduction == "sum":
        return total
    return total / keep.sum() if keep.sum() else np.nan


def upstream(losses, reduction, keep=None):
    """d reduced loss / d per-distribution loss, 0 where ``keep`` is False."""
    keep = np.ones(losses.shape, bool) if keep is None else np.broadcast_to(keep, losses.shape)
    weight = 1.0 if reduction in ("none", "sum") else 1.0 / max(keep.sum(), 1)
    return np.where(keep, weight, 0.0)
