"""Several students against one teacher: one run gives what separate runs give, reading the
teacher once."""
import json

import numpy as np
import pytest

import lucid.eval.job
from lucid.eval import evaluate, main


@pytest.fixture
def trio(rng, tmp_path):
    """Three students of different quality, one teacher and labels, as .npy files."""
    teacher = 2 * rng.standard_normal((130, 12))
    paths = {}
    for i, noise in enumerate([0.2, 0.7, 1.5]):
        np.save(tmp_path / f"s{i}.npy", teacher + noise * rng.standard_normal(teacher.shape))
        paths[f"s{i}"] = str(tmp_path / f"s{i}.npy")
    labels = rng.integers(12, size=130)
    labels[::9] = -100
    np.save(tmp_path / "t.npy", teacher)
    np.save(tmp_path / "y.npy", labels)
    paths.update(t=str(tmp_path / "t.npy"), y=str(tmp_path / "y.npy"))
    return paths


def run_json(capsys, argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_three_students_equal_three_separate_runs(trio, capsys):
    common = ["--labels", trio["y"], "--chunk-rows", "17", "--temperature", "1.5"]
    together = run_json(capsys, [trio["s0"], trio["s1"], trio["s2"], trio["t"], *common])
    assert [s["path"] for s in together["students"]] == [trio["s0"], trio["s1"], trio["s2"]]
    for i, entry in enumerate(together["students"]):
        alone = run_json(capsys, [trio[f"s{i}"], trio["t"], *common])["students"][0]
        assert entry == alone
    # The top-level keys of today describe the first student.
    assert together["kl"] == together["students"][0]["kl"]
    means = [s["stats"]["kld_mean"] for s in together["students"]]
    assert means == sorted(means)  # more noise, larger KL: the columns are not mixed up


def test_the_teacher_is_read_once_per_chunk(trio, monkeypatch):
    reads = {}
    real_open = lucid.eval.job.open_array

    def counting_open(source, key=None, role="input"):
        opened = real_open(source, key, role)
        real_read = opened.read

        def read(start, stop):
            reads.setdefault(role, []).append((start, stop))
            return real_read(start, stop)
        opened.read = read
        return opened

    monkeypatch.setattr(lucid.eval.job, "open_array", counting_open)
    evaluate([trio["s0"], trio["s1"], trio["s2"]], trio["t"], labels=trio["y"], chunk_rows=40)
    chunks = [(0, 40), (40, 80), (80, 120), (120, 130)]
    assert reads["teacher"] == chunks
    assert reads["student 1"] == reads["student 2"] == reads["student 3"] == chunks
    assert reads["labels"] == chunks


def test_table_has_a_column_per_student_in_order(trio, capsys):
    assert main([trio["s2"], trio["s0"], trio["t"]]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "s2.npy" in line)
    assert header.index("s2.npy") < header.index("s0.npy")
    results = evaluate([trio["s2"], trio["s0"]], trio["t"])
    kld_line = next(line for line in out.splitlines() if line.startswith("Mean    KLD"))
    assert kld_line.split()[2] == f"{results[0].stats['kld_mean']:.6f}"
    assert kld_line.split()[5] == f"{results[1].stats['kld_mean']:.6f}"


def test_per_row_of_several_students_is_an_npz_keyed_by_position(trio, tmp_path, capsys):
    out = tmp_path / "rows.npz"
    run_json(capsys, [trio["s0"], trio["s1"], trio["t"], "--per-row", str(out)])
    saved = np.load(out)
    assert sorted(saved.files) == ["student0", "student1"]
    for i in range(2):
        np.testing.assert_array_equal(saved[f"student{i}"],
                                      evaluate(trio[f"s{i}"], trio["t"]).per_row)


def test_python_list_of_students_returns_a_list_in_order(trio):
    results = evaluate([trio["s1"], trio["s0"]], trio["t"])
    assert [r.path for r in results] == [trio["s1"], trio["s0"]]
    assert results[1].kl == evaluate(trio["s0"], trio["t"]).kl


def test_a_student_of_another_shape_is_named(trio, tmp_path, capsys):
    np.save(tmp_path / "odd.npy", np.zeros((130, 11)))
    with pytest.raises(SystemExit) as exited:
        main([trio["s0"], str(tmp_path / "odd.npy"), trio["t"]])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "student 2" in err and "odd.npy" in err
