"""kl_div's values: the per-element table and reductions of docs/api/kl_div.rst, vs float64 references."""
import math

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div, log_softmax

from conftest import random_distributions, reference_losses, reference_reduce

REDUCTIONS = ["none", "sum", "mean", "batchmean"]
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

INF, NAN = math.inf, math.nan
# (x, p, loss) rows of docs/api/kl_div.rst's table, target given as probabilities.
SPECIAL_ROWS = [
    (-1.0, 0.5, 0.5 * (math.log(0.5) + 1.0)),  # p > 0: p (log p - x)
    (-1.0, 0.0, 0.0),     # p == 0, x finite: 0 log 0 = 0
    (-INF, 0.0, 0.0),     # p == 0, x == -inf: 0 (the reference framework says NaN)
    (-0.5, -0.0, 0.0),    # -0.0 is a zero probability
    (-INF, 0.5, INF),     # q == 0 where p > 0
    (-1.0, -0.1, NAN),    # p < 0: outside the domain, not clipped
    (NAN, 0.5, NAN),      # NaN x
    (NAN, 0.0, NAN),      # NaN x with p == 0
    (-1.0, NAN, NAN),     # NaN p
    (-1.0, 1e-45, 1e-45 * (math.log(1e-45) + 1.0)),  # denormal p (float64)
]


def special_arrays(log_target, dtype):
    x = np.array([row[0] for row in SPECIAL_ROWS], dtype=dtype)
    p = np.array([row[1] for row in SPECIAL_ROWS], dtype=np.float64)
    expected = np.array([row[2] for row in SPECIAL_ROWS])
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.log(p) if log_target else p
    if log_target:
        target[p < 0] = NAN  # log of a negative probability: NaN either way
    return x, target.astype(dtype), expected


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_target", [False, True])
def test_special_values_follow_spec_table(dtype, log_target):
    x, target, expected = special_arrays(log_target, dtype)
    got = kl_div(x, target, reduction="none", log_target=log_target).numpy()
    if dtype == np.float32:
        expected = reference_losses(x, target, log_target)  # denormal p flushes in float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-30, equal_nan=True)


def test_special_table_matches_reference_formula():
    # The table above and the test's reference formula agree with each other.
    x, target, expected = special_arrays(False, np.float64)
    np.testing.assert_allclose(reference_losses(x, target), expected, rtol=1e-12,
                               equal_nan=True)


@pytest.mark.parametrize("log_target", [False, True])
def test_zero_target_with_minus_inf_x_is_zero_in_every_reduction(log_target):
    # p = [0, 1]: the first loss is 0 (0 log 0 = 0, whatever x), the second
    # 1 * (log 1 - (-1)) = 1, both exact in floating point; one row of two.
    x = np.array([[-INF, -1.0]])
    target = np.array([[-INF, 0.0]]) if log_target else np.array([[0.0, 1.0]])
    expected = {"none": [[0.0, 1.0]], "sum": 1.0, "mean": 0.5, "batchmean": 1.0}
    for reduction in REDUCTIONS:
        got = kl_div(x, target, reduction=reduction, log_target=log_target).numpy()
        assert got.tolist() == expected[reduction], (reduction, got)


def test_log_target_underflowing_p_with_minus_inf_x_is_inf():
    # exp(-800) underflows to 0 in float64, but p > 0 and q == 0: +inf.
    got = kl_div([-INF], np.array([-800.0]), reduction="sum", log_target=True)
    assert got.item() == INF


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_p", [-200.0, -800.0])
def test_log_target_underflowing_p_with_infinite_x_gives_infinities(dtype, log_p):
    # p = exp(log_p) > 0 even where it underflows (in float32 at -200, in both
    # at -800): p (log p - x) is -inf for x = +inf and +inf for x = -inf, and
    # d/dlog p = p (log p - x + 1) g takes the sign of its infinite factor times g.
    x = lucid.tensor(np.array([INF, -INF, INF, -INF], dtype=dtype))
    target = lucid.tensor(np.full(4, log_p, dtype=dtype), requires_grad=True)
    losses = kl_div(x, target, reduction="none", log_target=True)
    assert losses.detach().numpy().tolist() == [-INF, INF, -INF, INF]
    upstream = np.array([1.0, 1.0, -2.0, -2.0], dtype=dtype)
    losses.backward(lucid.tensor(upstream))
    assert target.grad.numpy().tolist() == [-INF, INF, INF, -INF]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_reductions_match_float64_reference(rng, n_threads, dtype, reduction, log_target):
    # 96 x 1500 elements is large enough for the kernels to go parallel.
    log_q, p = random_distributions(rng, (96, 1500), dtype)
    target = np.log(p) if log_target else p
    got = kl_div(log_q, target, reduction=reduction, log_target=log_target)
    expected = reference_reduce(reference_losses(log_q, target, log_target), reduction)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_special_values_propagate_through_reductions(reduction):
    x, target, _ = special_arrays(False, np.float64)
    got = kl_div(x, target, reduction=reduction).numpy()
    expected = reference_reduce(reference_losses(x, target), reduction)
    np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_target", [False, True])
def test_empty_input_reductions(dtype, log_target):
    x = np.empty((0, 4), dtype=dtype)
    assert kl_div(x, x, reduction="none", log_target=log_target).shape == (0, 4)
    assert kl_div(x, x, reduction="sum", log_target=log_target).item() == 0.0
    assert math.isnan(kl_div(x, x, reduction="mean", log_target=log_target).item())
    assert math.isnan(kl_div(x, x, reduction="batchmean", log_target=log_target).item())


def test_batchmean_with_empty_trailing_dimension_is_zero():
    x = np.empty((3, 0))
    assert kl_div(x, x, reduction="batchmean").item() == 0.0


def test_batchmean_of_0d_loss_is_the_loss():
    got = kl_div(np.float64(-1.0), np.float64(0.5), reduction="batchmean")
    assert got.shape == ()
    assert got.item() == pytest.approx(0.5 * (math.log(0.5) + 1.0), rel=1e-15)


def test_batchmean_divides_by_leading_dimension_of_broadcast_shape():
    x = np.full((4, 3), -1.0)
    target = np.full((3,), 0.25)
    got = kl_div(x, target, reduction="batchmean").item()
    assert got == pytest.approx(12 * 0.25 * (math.log(0.25) + 1.0) / 4, rel=1e-14)


def test_seed_example_prints_0_0239():
    log_q = log_softmax(lucid.tensor([[2.0, 0.5, 0.1]]), dim=1)
    p = lucid.tensor([[0.8, 0.15, 0.05]])
    loss = kl_div(log_q, p, reduction="batchmean")
    assert repr(loss).startswith("Tensor(0.0239")
    q = np.exp(log_softmax_reference([2.0, 0.5, 0.1]))
    exact = math.fsum(pi * math.log(pi / qi) for pi, qi in zip([0.8, 0.15, 0.05], q))
    assert loss.item() == pytest.approx(exact, abs=1e-7)
    assert exact == pytest.approx(0.0239093, abs=1e-7)


def log_softmax_reference(logits):
    logits = np.asarray(logits, dtype=np.float64)
    return logits - math.log(math.fsum(np.exp(logits)))


def test_seed_example_equals_reference_framework():
    torch = pytest.importorskip("torch")
    log_q = log_softmax(lucid.tensor([[2.0, 0.5, 0.1]]), dim=1)
    p = lucid.tensor([[0.8, 0.15, 0.05]])
    ours = kl_div(log_q, p, reduction="batchmean").item()
    theirs = torch.nn.functional.kl_div(
        torch.log_softmax(torch.tensor([[2.0, 0.5, 0.1]]), dim=1),
        torch.tensor([[0.8, 0.15, 0.05]]), reduction="batchmean").item()
    assert abs(ours - theirs) <= 1e-6


def test_kl_is_zero_when_distributions_are_equal(rng):
    log_q, _ = random_distributions(rng, (5, 7))
    assert abs(kl_div(log_q, np.exp(log_q), reduction="batchmean").item()) < 1e-15


def test_kl_is_asymmetric(rng):
    log_q, p = random_distributions(rng, (1, 7))
    forward = kl_div(log_q, p, reduction="sum").item()
    backward = kl_div(np.log(p), np.exp(log_q), reduction="sum").item()
    assert forward > 0 and backward > 0 and forward != pytest.approx(backward)


def test_kl_div_module_equals_function(rng):
    log_q, p = random_distributions(rng, (4, 6))
    module = lucid.nn.KLDivLoss(reduction="batchmean", log_target=True)
    assert module(log_q, np.log(p)).item() == kl_div(
        log_q, np.log(p), reduction="batchmean", log_target=True).item()


@pytest.mark.filterwarnings("ignore:reduction. .mean.:UserWarning")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_values_equal_reference_framework(rng, reduction, log_target):
    torch = pytest.importorskip("torch")
    log_q, p = random_distributions(rng, (8, 33), np.float32)
    target = np.log(p) if log_target else p
    ours = kl_div(log_q, target, reduction=reduction, log_target=log_target).numpy()
    theirs = torch.nn.functional.kl_div(torch.from_numpy(log_q), torch.from_numpy(target),
                                        reduction=reduction, log_target=log_target).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=1e-7)
