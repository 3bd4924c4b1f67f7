"""Shared fixtures and independent float64 references for lucid's tests."""
import contextlib
import itertools

import numpy as np
import pytest

import lucid
from lucid._ext import _simd

#: The SIMD levels this CPU can run, lowest first.
SIMD_AVAILABLE = _simd.SIMD_LEVELS[: _simd.SIMD_LEVELS.index(_simd.cpu_simd_level()) + 1]


@contextlib.contextmanager
def simd_at(level):
    """Run the kernels with SIMD ``level`` inside the block."""
    before = _simd.simd_level()
    _simd._set_simd_level(level)
    try:
        yield level
    finally:
        _simd._set_simd_level(before)


@pytest.fixture(params=SIMD_AVAILABLE)
def simd_level(request):
    """Each SIMD level this CPU can run, in turn."""
    with simd_at(request.param) as level:
        yield level


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


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_threads(request):
    """Run a test with lucid held to 1, then 2 threads; restore afterwards."""
    before = lucid.get_num_threads()
    lucid.set_num_threads(request.param)
    yield request.param
    lucid.set_num_threads(before)


_memmap_names = itertools.count()


def make_layout(array, layout, tmp_path):
    """The same values as ``array`` in another memory layout (values unchanged)."""
    if layout == "contiguous":
        return np.ascontiguousarray(array)
    if layout == "transposed":
        return np.ascontiguousarray(array.T).T
    if layout == "negative":
        return np.ascontiguousarray(array[::-1, ::-1])[::-1, ::-1]
    if layout == "strided":
        wide = np.zeros((array.shape[0], 2 * array.shape[1]), dtype=array.dtype)
        wide[:, ::2] = array
        return wide[:, ::2]
    if layout == "readonly_memmap":
        # A fresh name per call: ids of short-lived arrays are reused, and
        # overwriting a file that is still mapped would corrupt a live memmap.
        path = tmp_path / f"layout_{next(_memmap_names)}.npy"
        np.save(path, array)
        mapped = np.load(path, mmap_mode="r")
        assert not mapped.flags.writeable
        return mapped
    raise ValueError(layout)


LAYOUTS = ["contiguous", "transposed", "negative", "strided", "readonly_memmap"]
