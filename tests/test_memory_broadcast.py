"""Memory: reductions allocate nothing input-sized, broadcast views are never materialised.

numpy reports its data buffers to ``tracemalloc``, so the traced peak during a
call bounds everything lucid and numpy allocated for it. docs/reliability.rst promises
the reductions stay under 1 MiB whatever the input size, layout or dtype mix; "none"
allocates its output and nothing more than that budget besides.
"""
import functools

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div

import memory
from conftest import make_layout

# Measured on the first call: nothing input-sized may be allocated even once.
traced_peak = functools.partial(memory.traced_peak, warm_up=False)

MIB = 2**20
# 2**24 elements: materialising one float64 input would take 128 MiB.
BIG = (2**12, 2**12)


def broadcast_pair(x_dtype, target_dtype):
    """A log-q row and a p column, each broadcast to BIG without copying."""
    rng = np.random.default_rng(7)
    log_q_row = np.log(rng.dirichlet(np.ones(BIG[1]))).astype(x_dtype)
    p_column = rng.random((BIG[0], 1)).astype(target_dtype)
    return np.broadcast_to(log_q_row, BIG), np.broadcast_to(p_column, BIG)


@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean"])
@pytest.mark.parametrize("dtypes", [(np.float64, np.float64), (np.float32, np.float32),
                                    (np.float16, np.float16), (np.float16, np.float64),
                                    (np.float32, np.float16)],
                         ids=lambda pair: "-".join(np.dtype(d).name for d in pair))
def test_reduction_of_a_huge_broadcast_view_allocates_under_a_mebibyte(reduction, dtypes):
    x, target = broadcast_pair(*dtypes)
    assert traced_peak(lambda: kl_div(x, target, reduction=reduction)) < MIB


def test_log_target_reduction_allocates_under_a_mebibyte():
    x, log_p = broadcast_pair(np.float32, np.float16)
    assert traced_peak(lambda: kl_div(x, log_p, reduction="sum", log_target=True)) < MIB


def test_parallel_reduction_allocates_under_a_mebibyte(n_threads):
    x, target = broadcast_pair(np.float64, np.float32)
    assert traced_peak(lambda: kl_div(x, target, reduction="mean")) < MIB


@pytest.mark.parametrize("layout", ["transposed", "negative", "strided", "readonly_memmap"])
def test_reduction_of_any_layout_allocates_under_a_mebibyte(layout, tmp_path):
    rng = np.random.default_rng(8)
    # Both sources stay alive: make_layout names its memmap files after id(array).
    log_q, p = np.log(rng.random((1024, 1024))), rng.random((1024, 1024)).astype(np.float32)
    x, target = make_layout(log_q, layout, tmp_path), make_layout(p, layout, tmp_path)
    assert traced_peak(lambda: kl_div(x, target, reduction="sum")) < MIB


def test_tensor_around_a_broadcast_view_reads_it_in_place():
    x, target = broadcast_pair(np.float64, np.float64)
    x_tensor = lucid.as_tensor(x)
    assert np.shares_memory(x_tensor.numpy(), x) and x_tensor.numpy().strides == x.strides
    assert traced_peak(lambda: kl_div(x_tensor, lucid.as_tensor(target), reduction="sum")) < MIB


def test_none_allocates_only_its_output():
    # A row against a column: the output is the only input-sized thing allowed.
    x, target = broadcast_pair(np.float32, np.float32)
    x, target = x[:2048], target[:2048]
    output_bytes = x.size * np.dtype(np.float32).itemsize
    peak = traced_peak(lambda: kl_div(x, target, reduction="none"))
    assert output_bytes <= peak < output_bytes + MIB


def test_float16_none_allocates_only_its_float16_output():
    # The kernels write float16 directly: no float32 result rounded afterwards.
    x, target = broadcast_pair(np.float16, np.float16)
    x, target = x[:2048], target[:2048]
    output_bytes = x.size * 2
    peak = traced_peak(lambda: kl_div(x, target, reduction="none"))
    assert output_bytes <= peak < output_bytes + MIB
