"""The kernels' fast paths allocate nothing input-sized (docs/performance.rst, docs/reliability.rst).

Contiguous operands skip the layout analysis and a reduction's 0-d upstream
gradient is read as one value: neither may cost memory the size of the input.
numpy reports its array allocations to tracemalloc, so the traced peak during a
call bounds every temporary; the kernels' gather buffers live on the stacks.
(tests/test_memory_broadcast.py covers broadcast views and other layouts.)
"""

import numpy as np
import pytest

import lucid
from lucid._ext import kl_div as kernels
from lucid.nn.functional import kl_div

from memory import traced_peak

MiB = 1 << 20
SHAPE = (512, 2048)  # 1M elements: 4 MiB per float32 input, 8 MiB per float64 one
DTYPE_MIXES = {
    "float32": (np.float32, np.float32),
    "float64": (np.float64, np.float64),
    "float16": (np.float16, np.float16),
    "float32-float64": (np.float32, np.float64),
}


def contiguous_inputs(x_dtype=np.float32, target_dtype=np.float32):
    rng = np.random.default_rng(11)
    x = np.log(rng.uniform(1e-6, 1.0, SHAPE)).astype(x_dtype)
    return x, rng.uniform(0.0, 1.0, SHAPE).astype(target_dtype)


@pytest.mark.parametrize("reduction", ["sum", "batchmean"])
@pytest.mark.parametrize("dtypes", DTYPE_MIXES)
@pytest.mark.parametrize("log_target", [False, True])
def test_forward_reduction_of_contiguous_arrays_allocates_under_a_mebibyte(reduction, dtypes,
                                                                            log_target):
    x, p = contiguous_inputs(*DTYPE_MIXES[dtypes])
    peak = traced_peak(lambda: kl_div(x, p, reduction=reduction, log_target=log_target))
    assert peak < MiB, f"{peak / MiB:.2f} MiB traced for inputs of {x.nbytes / MiB:.0f} MiB"


@pytest.mark.parametrize("threads", [1, 2])
def test_forward_reduction_of_tensors_allocates_under_a_mebibyte(threads):
    x, p = contiguous_inputs()
    xt, pt = lucid.tensor(x), lucid.tensor(p)
    before = lucid.get_num_threads()
    lucid.set_num_threads(threads)
    try:
        assert traced_peak(lambda: kl_div(xt, pt, reduction="batchmean")) < MiB
    finally:
        lucid.set_num_threads(before)


@pytest.mark.parametrize("wrt_target", [False, True])
@pytest.mark.parametrize("grad", [np.float32(1 / 512), np.full((1, 1), 0.5, np.float32)],
                         ids=["0-d", "1x1"])
def test_gradient_for_one_upstream_value_allocates_only_its_output(wrt_target, grad):
    # A reduction's upstream gradient is read as one value, never broadcast
    # into (or gathered as) an input-sized array.
    x, p = contiguous_inputs()
    peak = traced_peak(lambda: kernels.kl_div_grad(x, p, grad, False, wrt_target))
    assert peak < x.nbytes + MiB


def test_tracemalloc_sees_an_input_sized_numpy_temporary():
    # The control: if numpy stopped reporting to tracemalloc, the tests above
    # would pass vacuously.
    x, p = contiguous_inputs()
    assert traced_peak(lambda: (p * x).sum()) >= x.nbytes
