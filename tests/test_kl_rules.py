"""Every KL entry point applies the same rules: reduction names, log_target, float dtypes, divisors.

kl_div, KLDivLoss, distillation_loss, KLDivergence, lucid.dask.kl_div and the
evaluation job's options take them from lucid/_kl_rules.py; these tests hold
each entry point to the same messages, and each reduction to its documented
divisor.
"""
import re

import numpy as np
import pytest

import lucid
from lucid.eval import InputError
from lucid.eval.job import Options, reduce_per_row
from lucid.metrics import KLDivergence
from lucid.nn import DistillationLoss, KLDivLoss
from lucid.nn.functional import distillation_loss, kl_div

from references import reference_losses

ALL = "'none', 'mean', 'sum', 'batchmean'"
SCALAR = "'batchmean', 'mean', 'sum'"


def dask_kl_div(x, target, **options):
    pytest.importorskip("dask.array")
    import lucid.dask
    return lucid.dask.kl_div(x, target, **options)


def metric_update(x, target, **options):
    KLDivergence(**options).update(x, target)


REDUCTION_CHECKS = {
    "kl_div": (lambda r: kl_div([-1.0], [1.0], reduction=r), ALL),
    "KLDivLoss": (lambda r: KLDivLoss(reduction=r), ALL),
    "distillation_loss": (lambda r: distillation_loss([[1.0, 2.0]], [[2.0, 1.0]], reduction=r), ALL),
    "DistillationLoss": (lambda r: DistillationLoss(reduction=r), ALL),
    "KLDivergence": (lambda r: KLDivergence(reduction=r), SCALAR),
    "lucid.dask.kl_div": (lambda r: dask_kl_div(np.array([-1.0]), np.array([1.0]), reduction=r), ALL),
    "evaluation job": (lambda r: Options(reduction=r), SCALAR),
}
TWO_INPUT_ENTRY_POINTS = {
    "kl_div": (kl_div, "kl_div"),
    "KLDivergence.update": (metric_update, "KLDivergence.update"),
    "lucid.dask.kl_div": (dask_kl_div, "lucid.dask.kl_div"),
}


@pytest.mark.parametrize("entry", REDUCTION_CHECKS)
@pytest.mark.parametrize("bad", ["batch_mean", None])
def test_an_unknown_reduction_is_named_with_the_allowed_ones_in_one_wording(entry, bad):
    call, allowed = REDUCTION_CHECKS[entry]
    # The job's InputError is a ValueError, told on one line by the command line.
    with pytest.raises(ValueError, match=re.escape(f"reduction must be one of {allowed}; got {bad!r}")):
        call(bad)


def test_the_job_reports_a_bad_reduction_as_its_input_error():
    with pytest.raises(InputError):
        Options(reduction="none")


@pytest.mark.parametrize("entry", [*TWO_INPUT_ENTRY_POINTS, "KLDivLoss"])
@pytest.mark.parametrize("bad, shown", [(1, "int 1"), ("True", "str 'True'"), (None, "NoneType None")])
def test_log_target_must_be_a_bool_and_the_message_names_the_value(entry, bad, shown):
    with pytest.raises(TypeError, match=re.escape(f"log_target must be a bool, got {shown}")):
        if entry == "KLDivLoss":
            KLDivLoss(log_target=bad)
        else:
            TWO_INPUT_ENTRY_POINTS[entry][0](np.array([-1.0]), np.array([1.0]), log_target=bad)


@pytest.mark.parametrize("entry", TWO_INPUT_ENTRY_POINTS)
def test_a_byte_swapped_float_is_refused_with_the_conversion_that_fixes_it(entry):
    call, caller = TWO_INPUT_ENTRY_POINTS[entry]
    swapped = np.log(np.array([0.5, 0.5])).astype(">f8")
    message = f"{caller}: x has dtype >f8, a non-native byte order; convert it first, e.g. x.astype('float64')"
    with pytest.raises(TypeError, match=re.escape(message)):
        call(swapped, np.array([0.5, 0.5]))


def test_distillation_refuses_byte_swapped_logits_as_kl_div_does():
    swapped = np.array([[1.0, 2.0]], dtype=">f8")
    message = ("distillation_loss: teacher_logits has dtype >f8, a non-native byte order; "
               "convert it first, e.g. teacher_logits.astype('float64')")
    with pytest.raises(TypeError, match=re.escape(message)):
        distillation_loss(np.array([[1.0, 2.0]]), swapped)


@pytest.mark.parametrize("entry", TWO_INPUT_ENTRY_POINTS)
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_a_non_float_target_is_refused_naming_its_dtype(entry, dtype):
    call, caller = TWO_INPUT_ENTRY_POINTS[entry]
    message = (f"{caller}: target must have a floating dtype (float16, float32 or float64), "
               f"got {np.dtype(dtype)}")
    with pytest.raises(TypeError, match=re.escape(message)):
        call(np.array([-1.0, -1.0]), np.zeros(2, dtype=dtype))


@pytest.fixture
def batch(rng):
    """(log q, p) of shape (3, 4, 5) and the float64 sum of its losses."""
    log_q = np.log(rng.dirichlet(np.ones(5), size=(3, 4)))
    p = rng.dirichlet(np.ones(5), size=(3, 4))
    return log_q, p, float(np.sum(reference_losses(log_q, p)))


@pytest.mark.parametrize("reduction, divisor", [("sum", 1), ("mean", 60), ("batchmean", 3)])
def test_kl_div_and_the_dask_engine_divide_by_the_elements_or_the_leading_dimension(batch, reduction, divisor):
    log_q, p, total = batch
    assert kl_div(log_q, p, reduction=reduction).item() == pytest.approx(total / divisor, rel=1e-12)
    lazy = dask_kl_div(log_q, p, reduction=reduction)
    assert float(lazy.compute(scheduler="synchronous")) == pytest.approx(total / divisor, rel=1e-12)


@pytest.mark.parametrize("reduction, divisor", [("sum", 1), ("mean", 60), ("batchmean", 12)])
def test_the_job_divides_by_the_elements_or_the_rows_of_every_leading_position(batch, reduction, divisor):
    log_q, p, total = batch
    per_row = reference_losses(log_q, p).sum(axis=-1)  # 12 rows of 5 classes
    assert reduce_per_row(per_row, 5, reduction) == pytest.approx(total / divisor, rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "batchmean"])
def test_every_entry_point_gives_nan_for_the_mean_of_nothing(reduction):
    empty = np.zeros((0, 5))
    assert np.isnan(kl_div(empty, empty, reduction=reduction).item())
    assert np.isnan(KLDivergence(reduction=reduction).compute())
    assert np.isnan(reduce_per_row(np.zeros(0), 5, reduction))


def test_a_zero_d_loss_keeps_its_value_under_batchmean():
    assert kl_div(lucid.tensor(-1.0), lucid.tensor(0.5), reduction="batchmean").item() == pytest.approx(
        0.5 * (np.log(0.5) + 1.0), rel=1e-6)
