"""The row kernel's pair entry (the distillation loss's forward), on any storage and stride.

The loss hands the pair entry contiguous float32 or float64 rows only; the
entry itself takes what the evaluation job's rows take (every storage type,
any column stride), with both maxima seeded before the pass. Checked here
through ``_distill._pair_row`` against float64 numpy formulas written below,
at every SIMD level this CPU runs.
"""
import numpy as np
import pytest

from lucid._ext import _distill, _simd
from lucid._ext.rowwise import _STORAGE, narrow


def _spec(row):
    return (row.__array_interface__["data"][0], _STORAGE[(row.dtype.kind, row.dtype.itemsize)],
            row.strides[0])


def _pair(teacher, student, scale):
    level = _simd.SIMD_LEVELS.index(_simd.simd_level())
    return _distill._pair_row(_spec(teacher), _spec(student), teacher.shape[0], scale,
                              narrow(teacher, student), level)


def _expected(teacher, student, scale):
    """KL(p || q), and per side the raw maximum and log sum exp((v - max) scale), in float64."""
    t, s = teacher.astype(np.float64), student.astype(np.float64)
    shifts = (t.max(), s.max())
    log_sums = tuple(np.log(np.exp((v - v.max()) * scale).sum()) for v in (t, s))
    log_p = (t - shifts[0]) * scale - log_sums[0]
    log_q = (s - shifts[1]) * scale - log_sums[1]
    p = np.exp(log_p)
    with np.errstate(invalid="ignore"):  # -inf - -inf where p = 0, dropped
        kl = np.sum(np.where(p > 0, p * (log_p - log_q), 0.0))
    return kl, shifts, log_sums


def _strided(values, step):
    """``values`` as a view with a column stride of ``step`` elements (negative: reversed)."""
    base = np.zeros(values.shape[0] * abs(step), dtype=values.dtype)
    view = base[::step] if step > 0 else base[::step][: values.shape[0]]
    view[...] = values
    return view


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int16])
@pytest.mark.parametrize("step", [1, 3, -2])
@pytest.mark.parametrize("cols", [1, 7, 512, 1500])
def test_pair_entry_matches_float64_formulas(simd_level, dtype, step, cols):
    rng = np.random.default_rng(cols * 7 + abs(step))
    scale = 0.5
    spread = 40 if dtype == np.int16 else 3
    teacher = _strided((spread * rng.standard_normal(cols)).astype(dtype), step)
    student = _strided((spread * rng.standard_normal(cols)).astype(dtype), step)
    kl, shifts, log_sums = _pair(teacher, student, scale)
    want_kl, want_shifts, want_log_sums = _expected(teacher, student, scale)
    assert shifts == pytest.approx(want_shifts, rel=0, abs=0)
    assert log_sums == pytest.approx(want_log_sums, rel=1e-10, abs=1e-10)
    assert kl == pytest.approx(want_kl, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("step", [1, 2])
def test_pair_entry_special_values(simd_level, step):
    rng = np.random.default_rng(3)
    teacher = rng.standard_normal(600)
    student = rng.standard_normal(600)
    # A class the teacher rules out adds nothing, wherever the student puts it.
    teacher[[0, 599]] = -np.inf
    student[599] = -np.inf
    t, s = _strided(teacher, step), _strided(student, step)
    kl, _, log_sums = _pair(t, s, 1.0)
    want_kl, _, want_log_sums = _expected(t, s, 1.0)
    assert np.isfinite(kl) and kl == pytest.approx(want_kl, rel=1e-9)
    assert log_sums == pytest.approx(want_log_sums, rel=1e-12)
    # A class the teacher keeps and the student rules out: infinite KL.
    student[10] = -np.inf
    assert _pair(_strided(teacher, step), _strided(student, step), 1.0)[0] == np.inf
    # A NaN anywhere: NaN, as log_softmax gives it.
    student[10] = np.nan
    assert np.isnan(_pair(_strided(teacher, step), _strided(student, step), 1.0)[0])
