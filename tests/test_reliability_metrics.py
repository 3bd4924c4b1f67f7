"""The metrics read model outputs that require grad, detached, as kl_div does (issue 12, item 11)."""
import numpy as np
import pytest

import lucid
from lucid.metrics import KLDivergence, kl_div_per_row


@pytest.fixture
def outputs():
    """Student logits that require grad (a model's output) and teacher probabilities."""
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((5, 7))
    teacher = rng.dirichlet(np.ones(7), size=5)
    return logits, teacher


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def reference_rows(log_q, p):
    """KL(p || q) of every row, from float64 numpy."""
    return (p * (np.log(p) - log_q)).sum(axis=-1)


@pytest.mark.parametrize("reduction", ["batchmean", "sum"])
def test_kl_divergence_update_reads_a_tensor_that_requires_grad(outputs, reduction):
    logits, teacher = outputs
    log_q = lucid.tensor(log_softmax(logits), requires_grad=True)
    metric = KLDivergence(reduction=reduction)
    metric.update(log_q, lucid.tensor(teacher, requires_grad=True))
    rows = reference_rows(log_softmax(logits), teacher)
    expected = rows.sum() / (len(rows) if reduction == "batchmean" else 1)
    assert metric.compute() == pytest.approx(expected, rel=1e-12)
    assert log_q.grad is None and log_q.requires_grad


def test_kl_div_per_row_reads_tensors_that_require_grad(outputs):
    logits, teacher = outputs
    student = lucid.tensor(logits, requires_grad=True)
    got = kl_div_per_row(student, lucid.tensor(teacher, requires_grad=True),
                         teacher_kind="probs")
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, reference_rows(log_softmax(logits), teacher), rtol=1e-12)


def test_reading_detached_leaves_the_tensor_to_its_own_backward(outputs):
    logits, teacher = outputs
    student = lucid.tensor(logits, requires_grad=True)
    out = np.empty(5)
    kl_div_per_row(student, teacher, teacher_kind="probs", out=out)
    # The tensor is untouched and still usable for its own backward pass.
    (student * 2).sum().backward()
    np.testing.assert_array_equal(student.grad.numpy(), np.full((5, 7), 2.0))


@pytest.mark.parametrize("dtype, bound", [(np.float32, 2.0**-22), (np.float64, 1e-12)])
def test_any_split_into_batches_stays_within_the_accuracy_contract(dtype, bound):
    rng = np.random.default_rng(5)
    teacher = 3 * rng.standard_normal((1000, 100))
    log_q = log_softmax(teacher + rng.standard_normal((1000, 100))).astype(dtype)
    p = np.exp(log_softmax(teacher)).astype(dtype)
    # The exact value of these (rounded) inputs, and S, the size of what cancels.
    wide_log_q, wide_p = log_q.astype(np.float64), p.astype(np.float64)
    exact = reference_rows(wide_log_q, wide_p).mean()
    cancels = (np.abs(wide_p * np.log(wide_p)) + np.abs(wide_p * wide_log_q)).sum() / 1000
    for rows in (1, 7, 64, 300, 1000):
        metric = KLDivergence()
        for start in range(0, 1000, rows):
            metric.update(log_q[start:start + rows], p[start:start + rows])
        assert abs(metric.compute() - exact) <= bound * cancels
