"""kl_div's ``mask`` and ``validate`` (issue 14).

A masked distribution is selected out of the sum, the denominator and the
gradient whatever it holds (padding rows of -inf or NaN): never multiplied by 0.
``validate=True`` names the first distribution that is not one.
"""
import re
import warnings

import numpy as np
import pytest

import lucid
from lucid._ext import kl_div as kernels
from lucid.nn.functional import kl_div

from conftest import log_softmax_np, reference_losses

SHAPE = (4, 3, 6)  # (batch, sequence, classes)


def distributions(rng, shape=SHAPE, dtype=np.float64):
    logits = rng.standard_normal((2,) + shape)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return log_softmax[0].astype(dtype), np.exp(log_softmax[1]).astype(dtype)


def padding(rng):
    """A (4, 3) mask with the padded rows of x set to -inf and of p to NaN."""
    x, p = distributions(rng)
    mask = rng.uniform(size=SHAPE[:2]) < 0.6
    mask[0, 0] = True
    x[~mask] = -np.inf
    p[~mask] = np.nan
    return x, p, mask


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_masked_distributions_leave_sum_and_denominator(rng, n_threads, reduction):
    x, p, mask = padding(rng)
    got = kl_div(x, p, reduction=reduction, dim=-1, mask=mask).numpy()
    clean_x, clean_p = np.where(mask[..., None], x, 0.0), np.where(mask[..., None], p, 1.0 / 6)
    per_row = np.where(mask, reference_losses(clean_x, clean_p).sum(axis=-1), 0.0)
    expected = {"none": per_row, "sum": per_row.sum(),
                "mean": per_row.sum() / mask.sum(), "batchmean": per_row.sum() / mask.sum()}
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, expected[reduction], rtol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_gradients_are_zero_where_masked(rng, reduction, log_target):
    x, p, mask = padding(rng)
    target = np.log(p) if log_target else p
    x_leaf = lucid.tensor(x, requires_grad=True)
    t_leaf = lucid.tensor(target, requires_grad=True)
    loss = kl_div(x_leaf, t_leaf, reduction=reduction, dim=-1, mask=mask, log_target=log_target)
    (loss.sum() if reduction == "none" else loss).backward()
    g = 1.0 / mask.sum() if reduction == "mean" else 1.0
    p_kept = np.where(mask[..., None], p, 0.0)
    expected_x = np.where(mask[..., None], -p_kept * g, 0.0)
    with np.errstate(all="ignore"):
        d_target = (np.log(p) - x + 1) * g * (p if log_target else 1.0)
    expected_t = np.where(mask[..., None], d_target, 0.0)
    for got, expected in ((x_leaf.grad.numpy(), expected_x), (t_leaf.grad.numpy(), expected_t)):
        assert np.all(got[~mask] == 0)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_second_derivatives_are_zero_where_masked(rng):
    x, p, mask = padding(rng)
    x_leaf = lucid.tensor(x, requires_grad=True)
    t_leaf = lucid.tensor(p, requires_grad=True)
    loss = kl_div(x_leaf, t_leaf, reduction="sum", dim=-1, mask=mask)
    (grad_t,) = lucid.autograd.grad(loss, [t_leaf], create_graph=True)
    (hvp,) = lucid.autograd.grad(grad_t.sum(), [x_leaf])
    # d/dx of sum(log p + 1 - x) over kept rows: -1 there, 0 where masked.
    expected = np.broadcast_to(np.where(mask[..., None], -1.0, 0.0), SHAPE)
    np.testing.assert_array_equal(hvp.numpy(), expected)


def test_mask_broadcasts_to_the_distributions(rng):
    x, p = distributions(rng)
    keep_positions = np.array([True, False, True])  # per sequence position, every batch
    got = kl_div(x, p, reduction="sum", dim=-1, mask=keep_positions).item()
    expected = reference_losses(x, p).sum(axis=-1)[:, keep_positions].sum()
    assert got == pytest.approx(expected, rel=1e-12)


def test_mask_as_a_bool_tensor(rng):
    x, p, mask = padding(rng)
    assert kl_div(x, p, reduction="sum", dim=-1, mask=lucid.tensor(mask)).item() == \
        kl_div(x, p, reduction="sum", dim=-1, mask=mask).item()


def test_everything_masked_gives_zero_sum_and_nan_means_quietly(rng):
    x, p = distributions(rng)
    nothing = np.zeros(SHAPE[:2], dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kl_div(x, p, reduction="sum", dim=-1, mask=nothing).item() == 0
        assert np.isnan(kl_div(x, p, reduction="mean", dim=-1, mask=nothing).item())
        assert np.isnan(kl_div(x, p, reduction="batchmean", dim=-1, mask=nothing).item())
        x_leaf = lucid.tensor(x, requires_grad=True)
        kl_div(x_leaf, p, reduction="mean", dim=-1, mask=nothing).backward()
    assert np.all(x_leaf.grad.numpy() == 0)


def test_mask_requires_dim(rng):
    x, p = distributions(rng)
    with pytest.raises(ValueError, match="mask requires dim"):
        kl_div(x, p, mask=np.ones(SHAPE[:2], bool))


def test_mask_must_hold_bools(rng):
    x, p = distributions(rng)
    with pytest.raises(TypeError, match="mask must hold bools.*got dtype int64"):
        kl_div(x, p, dim=-1, mask=np.ones(SHAPE[:2], dtype=np.int64))


def test_mask_of_the_wrong_shape_names_both_shapes(rng):
    x, p = distributions(rng)
    with pytest.raises(ValueError, match=r"mask of shape \(5,\) does not broadcast to the "
                                         r"distributions' shape \(4, 3\)"):
        kl_div(x, p, dim=-1, mask=np.ones(5, bool))


# ---------------------------------------------------------------- validate --

def assert_names(match, x, target, **kwargs):
    with pytest.raises(ValueError, match=match):
        kl_div(x, target, validate=True, **kwargs)


@pytest.mark.parametrize("dim", [-1, None])
def test_validate_names_a_negative_entry(rng, dim):
    x, p = distributions(rng)
    p[2, 1, 4] = -0.25
    if dim is None:
        assert_names(r"target is negative \(-0.25\) at index \(2, 1, 4\)", x, p)
    else:
        assert_names(r"target of distribution \(2, 1\) \(the loss's \[2, 1, :\]\) has a negative "
                     r"entry -0.25 at class 4", x, p, dim=dim)


@pytest.mark.parametrize("dim", [-1, None])
@pytest.mark.parametrize("log_target", [False, True])
def test_validate_names_a_nan_entry(rng, dim, log_target):
    x, p = distributions(rng)
    target = np.log(p) if log_target else p
    target[1, 2, 0] = np.nan
    name = r"exp\(target\)" if log_target else "target"
    if dim is None:
        assert_names(rf"{name} is NaN at index \(1, 2, 0\)", x, target, log_target=log_target)
    else:
        assert_names(rf"{name} of distribution \(1, 2\) .* has a NaN at class 0", x, target,
                     dim=dim, log_target=log_target)


def test_validate_names_a_target_that_does_not_sum_to_one(rng):
    x, p = distributions(rng)
    p[3, 0] *= 1.01
    assert_names(r"target of distribution \(3, 0\) .* sums to 1.01, not 1 \(tolerance 1e-06 "
                 r"for float64\)", x, p, dim=-1)


def test_validate_names_exp_x_that_does_not_sum_to_one(rng):
    x, p = distributions(rng)
    x[0, 2] += 0.01
    assert_names(r"exp\(x\) of distribution \(0, 2\) .* sums to 1.01005, not 1", x, p, dim=-1)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_validate_names_a_nan_in_x_whatever_its_sign(rng, simd_level, sign):
    x, p = distributions(rng, (3, 40), np.float32)
    x[1, 7] = np.copysign(np.nan, sign)
    assert np.signbit(x[1, 7]) == (sign < 0)
    assert_names(r"exp\(x\) of distribution \(1,\) .* sums to nan, not 1", x, p, dim=-1)


def test_validate_reports_the_sum_of_float32_exp_x_to_six_digits(rng):
    x, p = distributions(rng, (3, 40), np.float32)
    x[2] += np.float32(0.004)
    exact = np.exp(x[2].astype(np.float64)).sum()
    assert_names(rf"exp\(x\) of distribution \(2,\) .* sums to {re.escape(f'{exact:.6g}')}, not 1",
                 x, p, dim=-1)


def test_validate_checks_the_first_distribution_in_order(rng):
    x, p = distributions(rng)
    x[3, 2] += 0.5
    p[1, 1, 0] = -1.0
    assert_names(r"distribution \(1, 1\)", x, p, dim=-1)


def test_validate_along_another_axis(rng):
    x, p = distributions(rng, (6, 4))  # classes last: along dim=0 these are not distributions
    assert_names(r"distribution \(0,\) \(the loss's \[:, 0\]\)", x.T.copy(), p.T.copy() * 1.1,
                 dim=0)


def test_validate_skips_masked_distributions(rng):
    x, p, mask = padding(rng)
    got = kl_div(x, p, reduction="sum", dim=-1, mask=mask, validate=True).item()
    assert got == kl_div(x, p, reduction="sum", dim=-1, mask=mask).item()


@pytest.mark.parametrize("reduction", ["none", "sum", "batchmean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_validate_does_not_change_the_result(rng, reduction, dtype, n_threads):
    x, p = distributions(rng, (16, 3000), dtype)
    plain = kl_div(x, p, reduction=reduction, dim=-1).numpy()
    np.testing.assert_array_equal(kl_div(x, p, reduction=reduction, dim=-1, validate=True).numpy(),
                                  plain)


@pytest.mark.parametrize("log_target", [False, True])
def test_float32_softmax_over_100000_classes_passes(rng, log_target):
    logits = rng.standard_normal((2, 4, 100_000)).astype(np.float32) * 3
    log_q = lucid.nn.functional.log_softmax(lucid.tensor(logits[0]), dim=-1)
    p = lucid.nn.functional.softmax(lucid.tensor(logits[1]), dim=-1)
    target = lucid.nn.functional.log_softmax(lucid.tensor(logits[1]), dim=-1) if log_target else p
    kl_div(log_q, target, reduction="batchmean", dim=-1, validate=True, log_target=log_target)


def test_float32_softmax_from_the_reference_framework_passes(rng):
    torch = pytest.importorskip("torch")
    logits = torch.from_numpy(rng.standard_normal((2, 4, 100_000)).astype(np.float32) * 3)
    log_q = torch.log_softmax(logits[0], dim=-1).numpy()
    p = torch.softmax(logits[1], dim=-1).numpy()
    kl_div(log_q, p, reduction="batchmean", dim=-1, validate=True)


def test_validate_must_be_a_bool(rng):
    x, p = distributions(rng)
    with pytest.raises(TypeError, match="validate must be a bool, got str 'yes'"):
        kl_div(x, p, validate="yes")


def test_float64_softmax_over_100000_classes_passes_the_tight_tolerance(rng):
    # float64 sums are checked to 1e-6, so exp(x) is summed with the accurate exp.
    logits = rng.standard_normal((2, 3, 100_000)) * 3
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    kl_div(log_softmax[0], np.exp(log_softmax[1]), reduction="sum", dim=-1, validate=True)
    kl_div(log_softmax[0], log_softmax[1], reduction="sum", dim=-1, validate=True,
           log_target=True)


# float16 and float32 inputs are checked with float32 sums and a faster
# exponential (kl_simd.h's lucid_exp_check_f32), at every SIMD level.


def test_float32_sums_of_exponentials_are_within_8e_5(simd_level):
    def every_4096th_float_up_to(end):
        bits = np.arange(0, np.float32(end).view(np.uint32), 4096, dtype=np.uint32)
        return bits.view(np.float32)

    values = np.concatenate([every_4096th_float_up_to(88), -every_4096th_float_up_to(87),
                             np.linspace(-20, 0, 20001, dtype=np.float32)])
    rows = np.repeat(values[:, None], 16, axis=1)  # one value in all 16 lanes: 16 exps of it
    exact = 16 * np.exp(values.astype(np.float64))
    _, _, q_sums = kernels.kl_div_rows(rows, np.full_like(rows, 1 / 16), 1, False, sums=True)
    _, p_sums, _ = kernels.kl_div_rows(rows, rows, 1, True, sums=True)
    for sums in (q_sums, p_sums):
        assert np.max(np.abs(sums / exact - 1)) < 8e-5


def logs_summing_to(rng, total):
    """float32 logs of 4 distributions of 1000 classes scaled to sum to ``total``,
    and the float64 sums of their exps."""
    weights = rng.exponential(size=(4, 1000)) * rng.choice([1e-6, 1.0, 50.0], size=(4, 1000))
    logs = (np.log(weights / weights.sum(axis=-1, keepdims=True)) + np.log(total))
    logs = logs.astype(np.float32)
    return logs, np.exp(logs.astype(np.float64)).sum(axis=-1)


@pytest.mark.parametrize("side", [1, -1])
def test_float32_sums_decide_as_float64_ones_1e_4_from_the_edge(rng, simd_level, side):
    x, p = distributions(rng, (4, 1000), np.float32)
    inside, inside_sums = logs_summing_to(rng, 1 + side * (1e-3 - 1.2e-4))
    outside, outside_sums = logs_summing_to(rng, 1 + side * (1e-3 + 1.2e-4))
    assert np.all(np.abs(inside_sums - 1) < 1e-3 - 1e-4)
    assert np.all(np.abs(outside_sums - 1) > 1e-3 + 1e-4)
    kl_div(inside, p, dim=-1, validate=True)
    kl_div(x, inside, dim=-1, validate=True, log_target=True)
    assert_names(r"exp\(x\) of distribution \(0,\)", outside, p, dim=-1)
    assert_names(r"exp\(target\) of distribution \(0,\)", x, outside, dim=-1, log_target=True)


@pytest.mark.parametrize("value", [-np.inf, -3.4e38, -1e30, -100.0])
def test_float32_exp_x_far_below_the_float_range_counts_as_zero(rng, simd_level, value):
    logits = rng.standard_normal((3, 40))
    logits[1, 7] = value
    p = np.exp(log_softmax_np(rng.standard_normal((3, 40)))).astype(np.float32)
    kl_div(log_softmax_np(logits).astype(np.float32), p, dim=-1, validate=True)


@pytest.mark.parametrize("value", [88.5, 89.4, 100.0, 3e6, 1e10, 1e20, 3.4e38, np.inf])
def test_float32_exp_x_beyond_the_float_range_fails(rng, simd_level, value):
    # 89.4 would wrap the exponent of 2**n around to -0 without its cap.
    x, p = distributions(rng, (3, 40), np.float32)
    x[1, 7] = value
    assert_names(r"exp\(x\) of distribution \(1,\) .* sums to (inf|[0-9.]+e\+[0-9]+), not 1",
                 x, p, dim=-1)
