"""The report's statistics equal llama.cpp's formulas written here in float64 numpy."""
import json
import math

import numpy as np
import pytest

from lucid.eval import evaluate, main
from lucid.eval.stats import STAT_KEYS

# scipy (the test extra) gives the reference log_softmax; without it these tests are skipped.
log_softmax = pytest.importorskip("scipy.special").log_softmax

SPEC_KEYS = ("kld_mean kld_se kld_max kld_p99_9 kld_p99 kld_p95 kld_p90 kld_median kld_p10 "
             "kld_p5 kld_p1 kld_p0_1 kld_min same_top same_top_se rows_used rows_ignored").split()
SPEC_LABEL_KEYS = ("ppl_student ppl_student_se ppl_teacher ppl_teacher_se ppl_cor ln_ppl_ratio "
                   "ln_ppl_ratio_se ppl_ratio ppl_ratio_se ppl_diff ppl_diff_se dp_mean dp_se "
                   "dp_max dp_p99_9 dp_p99 dp_p95 dp_p90 dp_p75 dp_median dp_p25 dp_p10 dp_p5 "
                   "dp_p1 dp_p0_1 dp_min dp_rms dp_rms_se").split()
PERCENTS = {"p99_9": 99.9, "p99": 99, "p95": 95, "p90": 90, "p75": 75, "median": 50, "p25": 25,
            "p10": 10, "p5": 5, "p1": 1, "p0_1": 0.1}


def mean_se(x):
    """llama.cpp's mean_and_uncertainty, in float64 with exact sums."""
    n = len(x)
    mean = math.fsum(x) / n
    variance = math.fsum(x * x) / n - mean * mean
    return mean, (math.sqrt(variance / (n - 1)) if variance > 0 and n > 10 else 0.0)


def covariance(a, b):
    n = len(a)
    return 0.0 if n < 10 else (math.fsum(a * b) / n - math.fsum(a) / n * math.fsum(b) / n) / (n - 1)


def reference_report(student, teacher, labels=None, ignore_index=-100, temperature=1.0):
    """Every statistic of the report from float64 logits, by llama.cpp's definitions."""
    log_q = log_softmax(student / temperature, axis=-1)
    log_p = log_softmax(teacher / temperature, axis=-1)
    used = np.ones(teacher.shape[:-1], bool) if labels is None else labels != ignore_index
    kl = (np.exp(log_p) * (log_p - log_q)).sum(-1)[used]
    same = (student.argmax(-1) == teacher.argmax(-1))[used]
    n = kl.size
    ref = {"rows_used": n, "rows_ignored": int(used.size - n)}
    ref["kld_mean"], ref["kld_se"] = mean_se(kl)
    ref["kld_max"], ref["kld_min"] = kl.max(), kl.min()
    for name in ("p99_9", "p99", "p95", "p90", "median", "p10", "p5", "p1", "p0_1"):
        ref[f"kld_{name}"] = np.percentile(kl, PERCENTS[name])
    ref["same_top"] = same.mean()
    ref["same_top_se"] = math.sqrt(ref["same_top"] * (1 - ref["same_top"]) / (n - 1))
    if labels is None:
        return ref
    pick = np.where(used, labels, 0)[..., None]
    nll_q = -np.take_along_axis(log_q, pick, -1)[..., 0][used]
    nll_p = -np.take_along_axis(log_p, pick, -1)[..., 0][used]
    mq, sq = mean_se(nll_q)
    mp, sp = mean_se(nll_p)
    cov = covariance(nll_q, nll_p)
    ref.update(ppl_student=math.exp(mq), ppl_student_se=math.exp(mq) * sq,
               ppl_teacher=math.exp(mp), ppl_teacher_se=math.exp(mp) * sp,
               ppl_cor=cov / (sq * sp), ln_ppl_ratio=mq - mp,
               ln_ppl_ratio_se=math.sqrt(sq ** 2 + sp ** 2 - 2 * cov))
    ref["ppl_ratio"] = math.exp(mq - mp)
    ref["ppl_ratio_se"] = ref["ppl_ratio"] * ref["ln_ppl_ratio_se"]
    ref["ppl_diff"] = ref["ppl_student"] - ref["ppl_teacher"]
    ref["ppl_diff_se"] = math.sqrt(ref["ppl_student_se"] ** 2 + ref["ppl_teacher_se"] ** 2
                                   - 2 * ref["ppl_student"] * ref["ppl_teacher"] * cov)
    dp = np.exp(-nll_q) - np.exp(-nll_p)
    ref["dp_mean"], ref["dp_se"] = mean_se(dp)
    ref["dp_max"], ref["dp_min"] = dp.max(), dp.min()
    for name, percent in PERCENTS.items():
        ref[f"dp_{name}"] = np.percentile(dp, percent)
    mse, mse_se = mean_se(dp * dp)
    ref["dp_rms"], ref["dp_rms_se"] = math.sqrt(mse), 0.5 / math.sqrt(mse) * mse_se
    return ref


def assert_stats_equal(stats, ref):
    assert set(ref) <= set(stats)
    for key, value in ref.items():
        assert stats[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def data(rng, shape=(300, 40), labels=True, ignored=0.1):
    teacher = 2 * rng.standard_normal(shape)
    student = 0.9 * teacher + 0.6 * rng.standard_normal(shape)
    if not labels:
        return student, teacher, None
    truth = rng.integers(shape[-1], size=shape[:-1])
    truth[rng.random(shape[:-1]) < ignored] = -100
    return student, teacher, truth


def test_statistics_without_labels_equal_the_reference(rng):
    student, teacher, _ = data(rng, labels=False)
    result = evaluate(student, teacher, chunk_rows=37)
    assert_stats_equal(result.stats, reference_report(student, teacher))
    assert set(result.stats) == set(SPEC_KEYS)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_statistics_with_labels_and_ignored_rows_equal_the_reference(rng, temperature):
    student, teacher, labels = data(rng)
    result = evaluate(student, teacher, labels=labels, temperature=temperature, chunk_rows=50)
    ref = reference_report(student, teacher, labels, temperature=temperature)
    assert ref["rows_ignored"] > 0
    assert_stats_equal(result.stats, ref)
    assert list(result.stats) == SPEC_KEYS + SPEC_LABEL_KEYS == list(STAT_KEYS)


def test_three_dimensional_rows_and_another_ignore_index(rng):
    student, teacher, labels = data(rng, (20, 9, 12))
    labels[labels == -100] = 7  # rows labelled 7 are now the ignored ones
    result = evaluate(student, teacher, labels=labels, ignore_index=7)
    assert_stats_equal(result.stats, reference_report(student, teacher, labels, ignore_index=7))


def test_reduction_counts_only_rows_in_use(rng):
    student, teacher, labels = data(rng, (120, 10), ignored=0.3)
    used = labels != -100
    kl = reference_report(student, teacher)  # all rows
    per_row = (lambda lp, lq: (np.exp(lp) * (lp - lq)).sum(-1))(log_softmax(teacher, -1),
                                                                 log_softmax(student, -1))
    for reduction, expected in [("batchmean", per_row[used].mean()),
                                ("sum", per_row[used].sum()),
                                ("mean", per_row[used].sum() / (used.sum() * 10))]:
        result = evaluate(student, teacher, labels=labels, reduction=reduction)
        assert result.kl == pytest.approx(expected, rel=1e-12)
        assert result.rows == 120
    assert kl["rows_used"] == 120


def test_known_answers(rng):
    # Identical student and teacher: KL 0, same top everywhere, ratio 1, Δp 0.
    teacher = rng.standard_normal((150, 6))
    labels = rng.integers(6, size=150)
    stats = evaluate(teacher.copy(), teacher, labels=labels).stats
    assert stats["kld_mean"] == stats["kld_max"] == stats["kld_se"] == 0
    assert (stats["same_top"], stats["same_top_se"]) == (1.0, 0.0)
    assert stats["ln_ppl_ratio"] == 0 and stats["ppl_ratio"] == 1 and stats["ppl_diff"] == 0
    assert stats["ppl_cor"] == pytest.approx(1.0, rel=1e-12)
    assert stats["dp_rms"] == 0 and stats["dp_max"] == 0
    # Uniform student over 4 classes, label of probability 1/4: PPL exactly 4.
    uniform = evaluate(np.zeros((200, 4)), rng.standard_normal((200, 4)),
                       labels=np.zeros(200, int)).stats
    assert uniform["ppl_student"] == pytest.approx(4.0, rel=1e-15)
    # Every NLL is ln 4: llama.cpp's mean(x^2) - mean(x)^2 cancels to rounding noise.
    assert uniform["ppl_student_se"] < 1e-7


def test_uncertainties_are_zero_from_ten_rows_or_fewer_as_in_llama_cpp(rng):
    student, teacher, _ = data(rng, (10, 5), labels=False)
    assert evaluate(student, teacher).stats["kld_se"] == 0.0
    student, teacher, _ = data(rng, (11, 5), labels=False)
    assert evaluate(student, teacher).stats["kld_se"] > 0.0


def test_json_is_strict_and_has_the_contract_keys(rng, tmp_path, capsys):
    student, teacher, labels = data(rng, (40, 5))
    student[3, 0] = np.inf  # an infinite logit: row 3's KL is NaN, and so are the means
    for name, array in [("s", student), ("t", teacher), ("l", labels)]:
        np.save(tmp_path / f"{name}.npy", array)
    assert main([str(tmp_path / "s.npy"), str(tmp_path / "t.npy"), "--labels",
                 str(tmp_path / "l.npy"), "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    (entry,) = report["students"]
    assert list(entry) == ["path", "kl", "rows", "stats"]
    assert list(entry["stats"]) == SPEC_KEYS + SPEC_LABEL_KEYS
    assert entry["kl"] is None and entry["stats"]["kld_mean"] is None and report["kl"] is None
    assert entry["path"] == str(tmp_path / "s.npy") and entry["rows"] == 40
    assert err.count("\n") == 1 and "fewer than 100 rows" in err


def test_few_rows_print_statistics_and_one_note(rng, tmp_path, capsys):
    student, teacher, _ = data(rng, (30, 5), labels=False)
    np.save(tmp_path / "s.npy", student)
    np.save(tmp_path / "t.npy", teacher)
    assert main([str(tmp_path / "s.npy"), str(tmp_path / "t.npy")]) == 0
    out, err = capsys.readouterr()
    assert "Mean    KLD" in out and "Same top p" in out
    assert err == ("lucid.eval: note: only 30 rows in use: percentiles and uncertainties from "
                   "fewer than 100 rows are rough (llama.cpp prints none)\n")


def test_label_outside_the_classes_names_its_row(rng, tmp_path, capsys):
    student, teacher, labels = data(rng, (50, 5), ignored=0)
    labels[37] = 5
    for name, array in [("s", student), ("t", teacher), ("l", labels)]:
        np.save(tmp_path / f"{name}.npy", array)
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "s.npy"), str(tmp_path / "t.npy"), "--labels",
              str(tmp_path / "l.npy"), "--chunk-rows", "16"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1
    assert "label 5 of row 37 is outside [0, 5)" in err


@pytest.mark.parametrize("bad, fragment", [(np.zeros(50), "labels are integer"),
                                           (np.zeros((49,), int), "shape (49,)")])
def test_labels_of_the_wrong_kind_or_shape(rng, tmp_path, capsys, bad, fragment):
    student, teacher, _ = data(rng, (50, 5), labels=False)
    for name, array in [("s", student), ("t", teacher), ("l", bad)]:
        np.save(tmp_path / f"{name}.npy", array)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "s.npy"), str(tmp_path / "t.npy"), "--labels",
              str(tmp_path / "l.npy")])
    assert fragment in capsys.readouterr().err


def test_labels_from_an_npz_archive_by_key(rng, tmp_path, capsys):
    student, teacher, labels = data(rng, (120, 8))
    np.savez(tmp_path / "data.npz", s=student, t=teacher, y=labels.astype(np.int32))
    path = str(tmp_path / "data.npz")
    assert main([path, path, "--student-key", "s", "--teacher-key", "t", "--labels", path,
                 "--labels-key", "y", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["students"][0]["stats"]
    assert_stats_equal(stats, reference_report(student, teacher, labels))


def test_per_row_stats_file(rng, tmp_path):
    student, teacher, labels = data(rng, (60, 7))
    out = tmp_path / "rows.npz"
    evaluate([student, teacher], teacher, labels=labels, per_row_stats_path=out)
    saved = np.load(out)
    used = labels != -100
    log_q, log_p = log_softmax(student, -1), log_softmax(teacher, -1)
    assert saved["kl"].shape == saved["same_top"].shape == (2, 60)
    np.testing.assert_allclose(saved["kl"][0], (np.exp(log_p) * (log_p - log_q)).sum(-1),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(saved["same_top"][0], student.argmax(-1) == teacher.argmax(-1))
    nll_q = -np.take_along_axis(log_q, np.where(used, labels, 0)[:, None], -1)[:, 0]
    np.testing.assert_allclose(saved["nll_student"][0][used], nll_q[used], rtol=1e-12)
    assert np.isnan(saved["nll_student"][0][~used]).all()
    np.testing.assert_allclose(saved["delta_p"][1][used], 0, atol=0)


def test_the_streaming_metric_and_the_report_agree(rng):
    from lucid.metrics import KLDivergence
    student, teacher, labels = data(rng, (240, 16))
    used = labels != -100
    metric = KLDivergence()
    log_q, p = log_softmax(student, -1), np.exp(log_softmax(teacher, -1))
    for start in range(0, 240, 50):  # the rows in use, in batches
        rows = slice(start, start + 50)
        metric.update(log_q[rows][used[rows]], p[rows][used[rows]])
    result = evaluate(student, teacher, labels=labels)
    assert result.kl == pytest.approx(metric.compute(), rel=1e-12)
    assert result.stats["kld_mean"] == pytest.approx(metric.compute(), rel=1e-12)


def test_per_row_stats_into_a_fifo_and_a_device(rng, tmp_path, capsys):
    import os
    import threading
    student, teacher, labels = data(rng, (120, 6))
    fifo = tmp_path / "stats.fifo"
    os.mkfifo(fifo)
    received = {}
    reader = threading.Thread(target=lambda: received.update(data=fifo.read_bytes()))
    reader.start()
    for name, array in [("s", student), ("t", teacher), ("l", labels)]:
        np.save(tmp_path / f"{name}.npy", array)
    files = [str(tmp_path / "s.npy"), str(tmp_path / "t.npy"), "--labels", str(tmp_path / "l.npy")]
    assert main([*files, "--per-row-stats", str(fifo)]) == 0
    reader.join(timeout=30)
    (tmp_path / "got.npz").write_bytes(received["data"])
    expected = evaluate(student, teacher, labels=labels)
    np.testing.assert_array_equal(np.load(tmp_path / "got.npz")["kl"][0], expected.per_row)
    assert main([*files, "--per-row-stats", os.devnull]) == 0
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)
