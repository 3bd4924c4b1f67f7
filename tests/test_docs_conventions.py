"""The differences table of docs/guides/conventions.rst, checked on both sides.

Each test is one row: what lucid gives, and what the reference framework
gives, so the page cannot drift from either. Skipped where torch is absent.
"""
import math
import warnings

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div, log_softmax

torch = pytest.importorskip("torch")
F = torch.nn.functional
inf = math.inf

EXAMPLE_LOGITS = [[2.0, 0.5, 0.1]]
EXAMPLE_P = [[0.8, 0.15, 0.05]]


def both(x, target, **kwargs):
    """(lucid result, torch result) as float64 numpy arrays, warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = kl_div(lucid.tensor(x), lucid.tensor(target), **kwargs).numpy()
        theirs = F.kl_div(torch.tensor(x), torch.tensor(target), **kwargs).numpy()
    return ours.astype(np.float64), theirs.astype(np.float64)


def gradients_wrt_target(x, target, log_target):
    ours_target = lucid.tensor([target], requires_grad=True)
    kl_div(lucid.tensor([x]), ours_target, reduction="sum", log_target=log_target).backward()
    theirs_target = torch.tensor([target], requires_grad=True)
    F.kl_div(torch.tensor([x]), theirs_target, reduction="sum", log_target=log_target).backward()
    return ours_target.grad.numpy()[0], theirs_target.grad.numpy()[0]


@pytest.mark.parametrize("x, target, log_target", [
    (-inf, 0.0, False),   # p = 0, x = -inf
    (-1.0, -inf, True),   # log_target, target = -inf, x finite
    (-inf, -inf, True),   # log_target, both -inf
])
def test_zero_probability_rows_give_zero_in_lucid_and_nan_in_torch(x, target, log_target):
    ours, theirs = both([x], [target], reduction="none", log_target=log_target)
    assert ours[0] == 0.0
    assert np.isnan(theirs[0])


def test_gradient_wrt_zero_target_is_minus_inf_in_lucid_and_nan_in_torch():
    ours, theirs = gradients_wrt_target(-1.0, 0.0, log_target=False)
    assert ours == -inf
    assert np.isnan(theirs)


def test_gradient_wrt_minus_inf_log_target_is_zero_in_lucid_and_nan_in_torch():
    ours, theirs = gradients_wrt_target(-1.0, -inf, log_target=True)
    assert ours == 0.0
    assert np.isnan(theirs)


@pytest.mark.parametrize("x, sign", [(inf, -1.0), (-inf, 1.0)])
def test_underflowing_log_target_with_infinite_x_is_infinite_in_lucid_and_nan_in_torch(x, sign):
    ours, theirs = both(np.float32([x]), np.float32([-200.0]), reduction="none", log_target=True)
    assert ours[0] == sign * inf
    assert np.isnan(theirs[0])
    ours_grad, theirs_grad = gradients_wrt_target(np.float32(x), np.float32(-200.0), log_target=True)
    assert ours_grad == sign * inf
    assert np.isnan(theirs_grad)


def test_size_average_false_is_ignored_by_lucid_and_means_sum_in_torch():
    log_q = log_softmax(lucid.tensor(EXAMPLE_LOGITS), dim=1)
    with pytest.warns(FutureWarning):
        ours = kl_div(log_q, EXAMPLE_P, size_average=False).item()
    assert ours == pytest.approx(kl_div(log_q, EXAMPLE_P, reduction="mean").item())
    with pytest.warns(UserWarning, match="size_average"):
        theirs = F.kl_div(torch.log_softmax(torch.tensor(EXAMPLE_LOGITS), 1),
                          torch.tensor(EXAMPLE_P), size_average=False).item()
    assert theirs == pytest.approx(ours * 3, rel=1e-6)


def test_reduce_argument_exists_only_in_torch():
    with pytest.raises(TypeError, match="reduce"):
        kl_div(lucid.tensor([-1.0]), lucid.tensor([0.5]), reduce=False)
    with pytest.warns(UserWarning):
        F.kl_div(torch.tensor([-1.0]), torch.tensor([0.5]), reduce=False)


def test_mean_reduction_warns_only_in_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kl_div(lucid.tensor([-1.0]), lucid.tensor([0.5]))
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(torch.tensor([-1.0]), torch.tensor([0.5]))


def test_batchmean_divides_by_the_broadcast_batch_in_lucid_and_by_x_rows_in_torch():
    x = np.log([0.5, 0.3, 0.2])
    target = np.full((6, 3), 1 / 3)
    ours, theirs = both(x.tolist(), target.tolist(), reduction="batchmean")
    total = kl_div(x, target, reduction="sum").item()
    assert ours == pytest.approx(total / 6)
    assert theirs == pytest.approx(total / 3, rel=1e-6)


def test_array_likes_are_accepted_by_lucid_only():
    x, target = np.log([0.5, 0.5]), np.array([0.9, 0.1])
    assert kl_div(x, target, reduction="sum").item() == pytest.approx(0.368064, rel=1e-5)
    assert kl_div(x.tolist(), target.tolist(), reduction="sum").dtype == lucid.float32
    with pytest.raises(TypeError, match="Tensor"):
        F.kl_div(x, target, reduction="sum")


def test_float16_rounds_once_in_lucid_and_computes_in_half_in_torch():
    log_q = torch.log_softmax(torch.tensor(EXAMPLE_LOGITS), 1).half()
    p = torch.tensor(EXAMPLE_P).half()
    exact = F.kl_div(log_q.double(), p.double(), reduction="sum").item()
    ours = kl_div(log_q.numpy(), p.numpy(), reduction="sum")
    theirs = F.kl_div(log_q, p, reduction="sum")
    assert ours.dtype == lucid.float16 and theirs.dtype == torch.float16
    assert ours.item() == float(np.float16(exact)) == pytest.approx(0.02376, abs=5e-6)
    assert theirs.item() == pytest.approx(0.02380, abs=5e-6)


def test_wrong_dtype_and_shapes_raise_typeerror_and_valueerror_in_lucid_runtimeerror_in_torch():
    with pytest.raises(TypeError):
        kl_div(lucid.tensor([[-1.0]]), lucid.tensor([[1]]))
    with pytest.raises(RuntimeError):
        F.kl_div(torch.tensor([[-1.0]]), torch.tensor([[1]]), reduction="sum")
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 3\)"):
        kl_div(lucid.zeros(2, 3), lucid.zeros(4, 3))
    with pytest.raises(RuntimeError):
        F.kl_div(torch.zeros(2, 3), torch.zeros(4, 3), reduction="sum")


def test_repr_shows_numpy_digits_in_lucid_and_four_decimals_in_torch():
    log_q = log_softmax(lucid.tensor(EXAMPLE_LOGITS), dim=1)
    assert repr(kl_div(log_q, EXAMPLE_P, reduction="sum")).startswith("Tensor(0.023909")
    theirs = F.kl_div(torch.log_softmax(torch.tensor(EXAMPLE_LOGITS), 1),
                      torch.tensor(EXAMPLE_P), reduction="sum")
    assert repr(theirs) == "tensor(0.0239)"


@pytest.mark.parametrize("x, target, log_target, expected", [
    (-inf, 0.5, False, inf),
    (-1.0, -0.5, False, math.nan),
    (math.nan, 0.5, False, math.nan),
    (inf, 0.0, False, math.nan),
])
def test_agreed_special_values_match(x, target, log_target, expected):
    ours, theirs = both([x], [target], reduction="none", log_target=log_target)
    np.testing.assert_equal(ours, [expected])
    np.testing.assert_equal(theirs, [expected])


@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean"])
def test_agreed_empty_inputs_match(reduction):
    ours, theirs = both(np.zeros((0, 3)).tolist(), np.zeros((0, 3)).tolist(), reduction=reduction)
    np.testing.assert_equal(ours, theirs)


def test_agreed_dtype_promotion_matches():
    for first, second in [("float16", "float32"), ("float32", "float64")]:
        ours = kl_div(np.zeros(2, first), np.full(2, 0.5, second), reduction="sum").dtype
        theirs = F.kl_div(torch.zeros(2, dtype=getattr(torch, first)),
                          torch.full((2,), 0.5, dtype=getattr(torch, second)), reduction="sum").dtype
        assert str(ours) == str(theirs).removeprefix("torch.")
