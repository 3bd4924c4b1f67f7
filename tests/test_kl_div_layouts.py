"""kl_div over dtypes and memory layouts: values never depend on how data is stored."""
import numpy as np
import pytest

from lucid.nn.functional import kl_div

from conftest import LAYOUTS, make_layout, random_distributions, reference_losses, reference_reduce

REDUCTIONS = ["none", "sum", "mean", "batchmean"]
TOLERANCE = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_layouts_give_reference_values(rng, tmp_path, n_threads, layout, dtype, reduction,
                                       log_target):
    log_q, p = random_distributions(rng, (80, 1100), dtype)
    target = np.log(p) if log_target else p
    x_view = make_layout(log_q, layout, tmp_path)
    t_view = make_layout(target, layout, tmp_path)
    got = kl_div(x_view, t_view, reduction=reduction, log_target=log_target).numpy()
    expected = reference_reduce(reference_losses(log_q, target, log_target), reduction)
    np.testing.assert_allclose(got, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("x_shape, t_shape", [
    ((6, 1, 5), (4, 5)),
    ((7,), (3, 2, 7)),
    ((3, 1), (1, 4)),
    ((), (2, 3)),
])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_broadcasting_matches_numpy(rng, x_shape, t_shape, reduction):
    x = rng.standard_normal(x_shape)
    target = rng.random(t_shape)
    got = kl_div(x, target, reduction=reduction).numpy()
    expected = reference_reduce(reference_losses(x, target), reduction)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_zero_stride_broadcast_view_is_read_in_place(rng, n_threads):
    row = np.exp(np.log(rng.random(3000)))
    target = np.broadcast_to(row, (200, 3000))
    assert target.strides[0] == 0
    x = np.log(rng.random((200, 3000)))
    got = kl_div(x, target, reduction="sum").item()
    expected = reference_losses(x, target).sum()
    assert got == pytest.approx(expected, rel=1e-12)


def test_three_dimensional_non_mergeable_layout(rng):
    base = rng.standard_normal((6, 5, 8))
    x = base.transpose(1, 0, 2)[:, :, ::-2]
    target = rng.random(x.shape)
    for reduction in REDUCTIONS:
        np.testing.assert_allclose(
            kl_div(x, target, reduction=reduction).numpy(),
            reference_reduce(reference_losses(x, target), reduction), rtol=1e-12)


@pytest.mark.parametrize("x_dtype, t_dtype, result", [
    (np.float32, np.float64, np.float64),
    (np.float64, np.float32, np.float64),
    (np.float16, np.float32, np.float32),
    (np.float16, np.float16, np.float16),
    (np.float16, np.float64, np.float64),
])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mixed_dtypes_promote_like_numpy(rng, x_dtype, t_dtype, result, reduction):
    log_q, p = random_distributions(rng, (30, 50))
    x, target = log_q.astype(x_dtype), p.astype(t_dtype)
    got = kl_div(x, target, reduction=reduction)
    assert got.dtype == result
    expected = reference_reduce(reference_losses(x, target), reduction)
    tolerance = 2e-3 if result == np.float16 else 1e-5
    np.testing.assert_allclose(got.numpy().astype(np.float64), expected, rtol=tolerance,
                               atol=tolerance)


def test_float16_computes_in_float32(rng):
    # The sum of 60000 float16 losses would lose most digits if accumulated in float16.
    log_q, p = random_distributions(rng, (60, 1000))
    x, target = log_q.astype(np.float16), p.astype(np.float16)
    got = kl_div(x, target, reduction="sum")
    assert got.dtype == np.float16
    expected = reference_losses(x, target).sum()
    assert float(got.item()) == pytest.approx(expected, rel=1e-3)


def test_python_lists_default_to_float32():
    got = kl_div([[-1.0, -2.0]], [[0.5, 0.5]], reduction="none")
    assert got.dtype == np.float32
