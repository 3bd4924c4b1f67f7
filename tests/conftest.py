"""Shared fixtures for lucid's tests; the float64 references live in references.py."""
import contextlib
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import lucid
from lucid._ext import _simd
from references import (  # noqa: F401  (re-exported for the test files)
    log_softmax_np, random_distributions, reference_losses, reference_reduce)

#: The SIMD levels this CPU can run, lowest first.
SIMD_AVAILABLE = _simd.SIMD_LEVELS[: _simd.SIMD_LEVELS.index(_simd.cpu_simd_level()) + 1]


def run_python(code, **env):
    """Run ``python -c code`` in a child with ``env`` added to this environment."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


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
