"""distillation_loss and DistillationLoss: bad arguments get clear errors of the right type."""
import numpy as np
import pytest

import lucid
from lucid.nn import DistillationLoss
from lucid.nn.functional import distillation_loss

S = np.zeros((2, 3), np.float32)
T = np.ones((2, 3), np.float32)


@pytest.mark.parametrize("temperature", [0.0, -1.0, np.inf, np.nan])
def test_temperature_must_be_positive_and_finite(temperature):
    with pytest.raises(ValueError, match="temperature must be positive and finite"):
        distillation_loss(S, T, temperature)


@pytest.mark.parametrize("temperature", ["2", None, True, [2.0]])
def test_temperature_must_be_a_real_number(temperature):
    with pytest.raises(TypeError, match="temperature must be a real number"):
        distillation_loss(S, T, temperature)


def test_divergence_names_the_allowed_values():
    with pytest.raises(ValueError, match="'kl', 'reverse_kl', 'jsd'; got 'js'"):
        distillation_loss(S, T, divergence="js")


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5, 1.5, np.nan])
def test_jsd_beta_must_be_inside_the_open_unit_interval(beta):
    with pytest.raises(ValueError, match=r"beta must be in the open interval \(0, 1\)"):
        distillation_loss(S, T, divergence="jsd", beta=beta)


def test_beta_is_ignored_by_the_kl_directions():
    for divergence in ("kl", "reverse_kl"):
        a = distillation_loss(S, T + np.eye(2, 3, dtype=np.float32), divergence=divergence,
                              beta=7.0)
        b = distillation_loss(S, T + np.eye(2, 3, dtype=np.float32), divergence=divergence)
        assert a.item() == b.item()


def test_reduction_names_the_allowed_values():
    with pytest.raises(ValueError, match="reduction must be one of"):
        distillation_loss(S, T, reduction="average")


def test_scale_by_t2_must_be_a_bool():
    with pytest.raises(TypeError, match="scale_by_t2 must be a bool, got str 'yes'"):
        distillation_loss(S, T, scale_by_t2="yes")


@pytest.mark.parametrize("bad", [np.zeros((2, 3), np.int64), np.zeros((2, 3), bool),
                                 np.zeros((2, 3), np.complex64)])
def test_logits_must_be_floating(bad):
    with pytest.raises(TypeError, match="student_logits must (have a floating dtype|be a Tensor)"):
        distillation_loss(bad, T)


def test_shapes_that_do_not_broadcast_are_named():
    with pytest.raises(ValueError, match=r"shape \(2, 3\) and teacher_logits of shape \(4,\)"):
        distillation_loss(S, np.zeros(4, np.float32))


def test_zero_dimensional_logits_have_no_class_axis():
    with pytest.raises(ValueError, match="0-d"):
        distillation_loss(np.float32(1.0), np.float32(2.0))


def test_dim_out_of_range_is_an_index_error():
    with pytest.raises(IndexError):
        distillation_loss(S, T, dim=2)


def test_mask_must_be_bool():
    with pytest.raises(TypeError, match="mask must be a bool tensor or array, got dtype int64"):
        distillation_loss(S, T, mask=np.array([1, 0]))


def test_mask_must_broadcast_to_the_per_distribution_shape():
    with pytest.raises(ValueError, match=r"mask of shape \(3,\) does not broadcast to the "
                                         r"per-distribution shape \(2,\)"):
        distillation_loss(S, T, mask=np.ones(3, bool))


def test_a_teacher_without_grad_gets_none():
    s = lucid.tensor(S, requires_grad=True)
    t = lucid.tensor(T)
    distillation_loss(s, t).backward()
    assert t.grad is None and s.grad is not None


def test_module_checks_its_options_at_construction():
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(temperature=0)
    with pytest.raises(ValueError, match="beta"):
        DistillationLoss(divergence="jsd", beta=1.0)
    with pytest.raises(ValueError, match="reduction"):
        DistillationLoss(reduction="avg")


def test_module_call_is_the_function_with_its_options():
    rng = np.random.default_rng(1)
    student, teacher = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    keep = rng.random((3, 4)) < 0.5
    loss_fn = DistillationLoss(3.0, dim=1, reduction="sum", divergence="jsd", beta=0.2,
                               scale_by_t2=False)
    want = distillation_loss(student, teacher, 3.0, dim=1, reduction="sum", divergence="jsd",
                             beta=0.2, scale_by_t2=False, mask=keep[:, :1].repeat(5, 1))
    assert loss_fn(student, teacher, mask=keep[:, :1].repeat(5, 1)).item() == want.item()
    assert repr(loss_fn) == ("DistillationLoss(temperature=3.0, dim=1, reduction='sum', "
                             "divergence='jsd', beta=0.2, scale_by_t2=False)")
