"""float16 results come straight from the kernels (issue 12, item 14).

"none" and the gradients of float16 inputs were computed into a float32 array
and rounded with ``astype``: three times the output's memory. The kernels now
round each block to float16 as they write it, exactly as ``astype`` rounds
(to nearest even, overflow to inf, gradual underflow).
"""

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div

from memory import traced_peak

MIB = 2**20
SHAPE = (1024, 1024)  # 2 MiB of float16 output, 4 MiB of float32


def float16_inputs(rng, shape=SHAPE):
    x = np.log(rng.uniform(1e-4, 1.0, shape)).astype(np.float16)
    return x, rng.uniform(0.0, 1.0, shape).astype(np.float16)


def test_float16_none_peak_is_its_float16_output(rng, n_threads):
    x, target = float16_inputs(rng)
    peak = traced_peak(lambda: kl_div(x, target, reduction="none"))
    assert x.nbytes <= peak < x.nbytes + MIB


@pytest.mark.parametrize("wrt", ["x", "target"])
def test_float16_gradient_peak_is_its_float16_output(rng, n_threads, wrt):
    x, target = float16_inputs(rng)
    x_leaf = lucid.tensor(x, requires_grad=wrt == "x")
    t_leaf = lucid.tensor(target, requires_grad=wrt == "target")
    leaf = x_leaf if wrt == "x" else t_leaf

    def backward():
        leaf.grad = None
        kl_div(x_leaf, t_leaf, reduction="sum").backward()

    assert traced_peak(backward) < x.nbytes + MIB
    assert leaf.grad.dtype == lucid.float16


def test_float16_none_rounds_like_astype(rng):
    # The float32 losses of the same values, rounded by numpy: the conversion
    # must agree bit for bit, over losses spanning float16's whole range.
    x = rng.uniform(-12.0, 12.0, 200_000).astype(np.float16)
    target = np.exp(rng.uniform(-18.0, 11.0, 200_000)).astype(np.float16)
    target[:6] = [0.0, 1.0, np.inf, -1.0, np.nan, 65504.0]
    x[:6] = [0.0, -np.inf, 1.0, 0.0, 0.0, -65504.0]
    got = kl_div(x, target, reduction="none").numpy()
    float32_losses = kl_div(x.astype(np.float32), target.astype(np.float32),
                            reduction="none").numpy()
    with np.errstate(over="ignore"):
        expected = float32_losses.astype(np.float16)
    assert got.dtype == np.float16
    same = (got.view(np.uint16) == expected.view(np.uint16)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), (got[~same][:5], expected[~same][:5], float32_losses[~same][:5])


def test_float16_gradient_rounds_products_like_astype(rng):
    # d/dx = -p g: two float16 values multiply exactly in float32 (22 significant
    # bits), so every rounding to float16, ties to even included, is the output's.
    exponents = rng.uniform(-26.0, 16.0, (2, 100_000))
    with np.errstate(over="ignore"):
        p, g = (np.exp2(exponents) * rng.choice([1.0, 1.5, 1.25, 1.75], exponents.shape)
                ).astype(np.float16)
    g[:8] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 65504.0, 2.0**-24, -(2.0**-24)]
    x_leaf = lucid.tensor(np.zeros(p.shape, np.float16), requires_grad=True)
    kl_div(x_leaf, p, reduction="none").backward(lucid.tensor(g))
    with np.errstate(over="ignore", invalid="ignore"):
        product = -(p.astype(np.float32) * g.astype(np.float32))
        expected = np.where(p == 0, np.float32(0), product).astype(np.float16)
    got = x_leaf.grad.numpy()
    assert got.dtype == np.float16
    same = (got.view(np.uint16) == expected.view(np.uint16)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), (got[~same][:5], expected[~same][:5], product[~same][:5])
