"""lucid.metrics.KLDivergence: any split into batches equals one kl_div call."""
import math
import pickle

import numpy as np
import pytest

import lucid
from lucid.metrics import KLDivergence
from lucid.nn.functional import kl_div

from conftest import random_distributions, reference_losses

REDUCTIONS = ["batchmean", "mean", "sum"]
UNEVEN_SPLITS = [0, 1, 4, 4, 11, 30, 57, 64]  # cut points, an empty batch included


def reference_value(x, target, log_target, reduction):
    losses = reference_losses(x, target, log_target)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / (losses.shape[0] if reduction == "batchmean" else losses.size)


def batches(rng, log_target, shape=(64, 7)):
    log_q, p = random_distributions(rng, shape)
    return log_q, (np.log(p) if log_target else p)


def feed(metric, x, target, cuts=UNEVEN_SPLITS):
    for start, stop in zip(cuts, cuts[1:]):
        metric.update(x[start:stop], target[start:stop])
    return metric


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_uneven_batches_equal_one_kl_div_call(rng, reduction, log_target):
    x, target = batches(rng, log_target)
    metric = feed(KLDivergence(log_target=log_target, reduction=reduction), x, target)
    one_call = kl_div(x, target, reduction=reduction, log_target=log_target).item()
    assert metric.compute() == pytest.approx(one_call, rel=1e-12)
    assert metric.compute() == pytest.approx(reference_value(x, target, log_target, reduction),
                                             rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_merged_shards_equal_one_kl_div_call(rng, reduction):
    x, target = batches(rng, False)
    shards = [feed(KLDivergence(reduction=reduction), x[a:b], target[a:b], [0, 5, b - a])
              for a, b in [(0, 10), (10, 41), (41, 64)]]
    merged = KLDivergence(reduction=reduction)
    for shard in shards:
        merged.merge(shard)
    assert merged.rows == 64
    assert merged.compute() == pytest.approx(kl_div(x, target, reduction=reduction).item(),
                                             rel=1e-12)


def test_pickled_metric_continues_where_it_stopped(rng):
    x, target = batches(rng, False)
    metric = feed(KLDivergence(), x, target, [0, 20, 33])
    restored = pickle.loads(pickle.dumps(metric))
    restored.update(x[33:], target[33:])
    assert restored.rows == 64
    assert restored.compute() == pytest.approx(kl_div(x, target, reduction="batchmean").item(),
                                               rel=1e-12)


def test_pickled_shards_merge_in_another_process_order(rng):
    x, target = batches(rng, True)
    shards = [pickle.dumps(feed(KLDivergence(log_target=True), x[a:b], target[a:b], [0, b - a]))
              for a, b in [(0, 30), (30, 64)]]
    merged = KLDivergence(log_target=True)
    for blob in reversed(shards):
        merged.merge(pickle.loads(blob))
    expected = kl_div(x, target, reduction="batchmean", log_target=True).item()
    assert merged.compute() == pytest.approx(expected, rel=1e-12)


def test_thousands_of_batches_stay_within_1e_12(rng):
    x, target = batches(rng, False, shape=(3000, 3))
    metric = feed(KLDivergence(reduction="sum"), x, target, list(range(3001)))
    assert metric.compute() == pytest.approx(reference_value(x, target, False, "sum"), rel=1e-12)


def test_float32_batches_accumulate_in_float64(rng):
    x, target = random_distributions(rng, (200, 50), np.float32)
    metric = feed(KLDivergence(), x, target, [0, 13, 200])
    assert isinstance(metric.compute(), float)
    expected = reference_value(x, target, False, "batchmean")
    assert metric.compute() == pytest.approx(expected, rel=1e-6)


def test_batchmean_divides_by_leading_rows_of_3d_batches(rng):
    x, target = batches(rng, False, shape=(10, 4, 6))
    metric = feed(KLDivergence(), x, target, [0, 3, 10])
    assert metric.rows == 10
    assert metric.compute() == pytest.approx(reference_losses(x, target).sum() / 10, rel=1e-12)


def test_broadcast_target_counts_broadcast_rows(rng):
    x, _ = batches(rng, False, shape=(8, 5))
    p = np.full(5, 0.2)
    metric = KLDivergence(reduction="mean")
    metric.update(x, p)
    assert (metric.rows, metric.elements) == (8, 40)
    assert metric.compute() == pytest.approx(reference_losses(x, p).mean(), rel=1e-12)


def test_tensors_are_accepted(rng):
    x, target = batches(rng, False)
    metric = KLDivergence()
    metric.update(lucid.tensor(x), lucid.tensor(target))
    assert metric.compute() == pytest.approx(reference_value(x, target, False, "batchmean"),
                                             rel=1e-12)


def test_reset_forgets_every_batch(rng):
    x, target = batches(rng, False)
    metric = feed(KLDivergence(), x, target)
    metric.reset()
    metric.update(x[:4], target[:4])
    assert metric.rows == 4
    assert metric.compute() == pytest.approx(reference_value(x[:4], target[:4], False,
                                                             "batchmean"), rel=1e-12)


@pytest.mark.parametrize("reduction, expected", [("batchmean", math.nan), ("mean", math.nan),
                                                 ("sum", 0.0)])
def test_empty_metric_gives_nan_for_means_and_zero_for_sum(reduction, expected):
    assert KLDivergence(reduction=reduction).compute() == pytest.approx(expected, nan_ok=True)


def test_infinite_loss_stays_infinite():
    metric = KLDivergence(reduction="sum")
    metric.update([[-math.inf, 0.0]], [[0.5, 0.5]])
    metric.update([[-0.1, -2.0]], [[0.5, 0.5]])
    assert metric.compute() == math.inf


@pytest.mark.parametrize("reduction", ["none", "avg", None])
def test_unknown_reduction_raises_value_error_naming_the_allowed(reduction):
    with pytest.raises(ValueError, match="'batchmean', 'mean', 'sum'"):
        KLDivergence(reduction=reduction)


def test_non_bool_log_target_raises_type_error():
    with pytest.raises(TypeError, match="log_target must be a bool"):
        KLDivergence(log_target="yes")


def test_integer_batch_raises_type_error():
    with pytest.raises(TypeError, match="floating dtype.*int64"):
        KLDivergence().update(np.zeros((2, 3), np.int64), np.zeros((2, 3)))


def test_shapes_that_do_not_broadcast_raise_value_error():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        KLDivergence().update(np.zeros((2, 3)), np.zeros((2, 4)))


def test_batch_with_other_row_shape_raises_value_error():
    metric = KLDivergence()
    metric.update(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        metric.update(np.zeros((2, 4)), np.zeros((2, 4)))


def test_zero_d_batch_raises_value_error():
    with pytest.raises(ValueError, match="0-d"):
        KLDivergence(reduction="sum").update(np.float64(-1.0), np.float64(0.5))


def test_merge_with_other_settings_raises_value_error():
    with pytest.raises(ValueError, match="metrics differ"):
        KLDivergence().merge(KLDivergence(log_target=True))


def test_merge_with_other_row_shape_raises_value_error():
    a, b = KLDivergence(), KLDivergence()
    a.update(np.zeros((1, 3)), np.zeros((1, 3)))
    b.update(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="share their shape"):
        a.merge(b)


def test_merge_with_something_else_raises_type_error():
    with pytest.raises(TypeError, match="expects a KLDivergence, got float"):
        KLDivergence().merge(0.5)
