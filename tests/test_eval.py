"""python -m lucid.eval: answers equal float64 references, in chunks smaller than the files."""
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import numpy as np
import pytest

from lucid.eval import evaluate, main

# scipy (the test extra) gives the reference softmax; without it these tests are skipped.
_special = pytest.importorskip("scipy.special")
log_softmax, softmax = _special.log_softmax, _special.softmax

KINDS = ["logits", "log-probs", "probs"]
REQUIRED_KEYS = {"kl", "reduction", "rows", "classes", "seconds", "threads"}


def logits_pair(rng, shape=(53, 17)):
    teacher = 3 * rng.standard_normal(shape)
    student = teacher + rng.standard_normal(shape)
    return student, teacher


def as_kind(logits, kind):
    if kind == "logits":
        return logits
    return log_softmax(logits, axis=-1) if kind == "log-probs" else softmax(logits, axis=-1)


def reference_per_row(student_logits, teacher_logits, student_kind, teacher_kind, temperature):
    """Float64 KL(teacher || student) per row; the temperature divides logits only."""
    def log_probs(logits, kind):
        return log_softmax(logits / (temperature if kind == "logits" else 1.0), axis=-1)
    log_p = log_probs(teacher_logits, teacher_kind)
    log_q = log_probs(student_logits, student_kind)
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


def save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return str(path)


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    # No progress bar when stderr is not a terminal: at most the note on few rows.
    assert err == "" or (err.count("\n") == 1 and "fewer than 100 rows" in err)
    return json.loads(out)


# A temperature needs logits on one side; without, it is an error (test_eval_errors).
KIND_CASES = [(s, t, temperature) for s in KINDS for t in KINDS for temperature in (1.0, 2.5)
              if temperature == 1.0 or "logits" in (s, t)]


@pytest.mark.parametrize("student_kind, teacher_kind, temperature", KIND_CASES)
def test_every_kind_and_temperature_equal_float64_reference(rng, tmp_path, capsys, student_kind,
                                                            teacher_kind, temperature):
    student, teacher = logits_pair(rng)
    files = [save(tmp_path, "s.npy", as_kind(student, student_kind)),
             save(tmp_path, "t.npy", as_kind(teacher, teacher_kind))]
    result = run_json(capsys, *files, "--student-kind", student_kind, "--teacher-kind",
                      teacher_kind, "--temperature", str(temperature), "--chunk-rows", "7")
    expected = reference_per_row(student, teacher, student_kind, teacher_kind, temperature)
    assert result["kl"] == pytest.approx(expected.mean(), rel=1e-12)


@pytest.mark.parametrize("reduction, divide_by", [("batchmean", 53), ("mean", 53 * 17),
                                                  ("sum", 1)])
def test_reductions_divide_the_summed_rows(rng, tmp_path, capsys, reduction, divide_by):
    student, teacher = logits_pair(rng)
    result = run_json(capsys, save(tmp_path, "s.npy", student), save(tmp_path, "t.npy", teacher),
                      "--reduction", reduction, "--chunk-rows", "10")
    expected = reference_per_row(student, teacher, "logits", "logits", 1.0).sum() / divide_by
    assert result["kl"] == pytest.approx(expected, rel=1e-12)
    assert result["reduction"] == reduction


def test_json_reports_the_run(rng, tmp_path, capsys):
    student, teacher = logits_pair(rng)
    result = run_json(capsys, save(tmp_path, "s.npy", student), save(tmp_path, "t.npy", teacher),
                      "--threads", "1")
    assert REQUIRED_KEYS <= result.keys()
    assert (result["rows"], result["classes"], result["threads"]) == (53, 17, 1)
    per_row = reference_per_row(student, teacher, "logits", "logits", 1.0)
    assert result["per_row_median"] == pytest.approx(np.median(per_row), rel=1e-12)
    assert result["seconds"] >= 0


def test_per_row_file_holds_every_row_of_a_3d_input(rng, tmp_path, capsys):
    student, teacher = logits_pair(rng, (11, 4, 9))
    out = tmp_path / "per_row.npy"
    run_json(capsys, save(tmp_path, "s.npy", student), save(tmp_path, "t.npy", teacher),
             "--per-row", str(out), "--chunk-rows", "3")
    written = np.load(out)
    assert written.shape == (11, 4) and written.dtype == np.float64
    np.testing.assert_allclose(written, reference_per_row(student, teacher, "logits", "logits",
                                                          1.0), rtol=1e-12)
    assert sorted(os.listdir(tmp_path)) == ["per_row.npy", "s.npy", "t.npy"]  # no temp file


@pytest.mark.parametrize("chunk_rows", [1, 7, None])
def test_chunking_does_not_change_the_answer(rng, tmp_path, chunk_rows):
    student, teacher = logits_pair(rng, (200, 30))
    whole = evaluate(student, teacher, chunk_rows=200)
    chunked = evaluate(save(tmp_path, "s.npy", student), save(tmp_path, "t.npy", teacher),
                       chunk_rows=chunk_rows)
    assert chunked.kl == whole.kl
    np.testing.assert_array_equal(chunked.per_row, whole.per_row)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_members_chosen_by_key(rng, tmp_path, capsys, compressed):
    student, teacher = logits_pair(rng)
    path = str(tmp_path / "both.npz")
    (np.savez_compressed if compressed else np.savez)(path, s=student, t=teacher)
    result = run_json(capsys, path, path, "--student-key", "s", "--teacher-key", "t",
                      "--chunk-rows", "5")
    expected = reference_per_row(student, teacher, "logits", "logits", 1.0).mean()
    assert result["kl"] == pytest.approx(expected, rel=1e-12)


def test_key_applies_to_both_npz_inputs(rng, tmp_path, capsys):
    student, teacher = logits_pair(rng)
    np.savez(tmp_path / "s.npz", logits=student, labels=np.arange(3))
    np.savez(tmp_path / "t.npz", logits=teacher, labels=np.arange(3))
    result = run_json(capsys, str(tmp_path / "s.npz"), str(tmp_path / "t.npz"), "--key", "logits")
    expected = reference_per_row(student, teacher, "logits", "logits", 1.0).mean()
    assert result["kl"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("container", ["npy", "npz"])
def test_fortran_order_arrays_are_read(rng, tmp_path, container):
    student, teacher = (np.asfortranarray(a) for a in logits_pair(rng))
    if container == "npy":
        paths = save(tmp_path, "s.npy", student), save(tmp_path, "t.npy", teacher)
    else:
        np.savez(tmp_path / "s.npz", student)
        np.savez(tmp_path / "t.npz", teacher)
        paths = str(tmp_path / "s.npz"), str(tmp_path / "t.npz")
    result = evaluate(*paths, chunk_rows=4)
    expected = reference_per_row(student, teacher, "logits", "logits", 1.0)
    np.testing.assert_allclose(result.per_row, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int16])
def test_other_numeric_dtypes_are_read(rng, tmp_path, dtype):
    student, teacher = ((4 * a).astype(dtype) for a in logits_pair(rng))
    result = evaluate(save(tmp_path, "s.npy", student), save(tmp_path, "t.npy", teacher),
                      chunk_rows=6)
    expected = reference_per_row(student.astype(np.float64), teacher.astype(np.float64),
                                 "logits", "logits", 1.0)
    np.testing.assert_allclose(result.per_row, expected, rtol=1e-6, atol=1e-7)


def test_thread_counts_give_bitwise_equal_answers(rng, tmp_path):
    student, teacher = logits_pair(rng, (300, 500))
    paths = save(tmp_path, "s.npy", student), save(tmp_path, "t.npy", teacher)
    one, two = (evaluate(*paths, threads=n) for n in (1, 2))
    assert (one.threads, two.threads) == (1, 2)
    assert one.kl == two.kl


def test_summary_shows_the_per_row_spread(rng, capsys):
    student, teacher = logits_pair(rng)
    print(evaluate(student, teacher).summary())
    out = capsys.readouterr().out.splitlines()
    per_row = reference_per_row(student, teacher, "logits", "logits", 1.0)
    assert out[0].startswith(f"KL(teacher || student) = {per_row.mean():.6g}")
    assert out[2] == (f"per-row KL: min {per_row.min():.6g}, median {np.median(per_row):.6g}, "
                      f"max {per_row.max():.6g}")


def test_nan_rows_are_counted_and_left_out_of_the_spread(rng):
    student, teacher = logits_pair(rng, (5, 3))
    student[2, 1] = np.nan
    result = evaluate(student, teacher)
    assert result.per_row_stats()[3] == 1
    assert "1 rows are NaN" in result.summary()


def test_demo_runs_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "lucid.eval", "--demo"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # 1,000 labelled rows of 1,024: the last 24 are padding, labelled -100.
    assert done.stdout.startswith("KL(teacher || student) = 0.29374 ")
    assert "rows: 1,024 x 100 classes" in done.stdout
    assert "labels: 1,000 rows in use, 24 ignored" in done.stdout
    assert done.stderr == ""


def test_progress_bar_appears_only_on_a_terminal():
    controller, terminal = pty.openpty()
    # An 80-column terminal: tqdm draws nothing on one of zero width.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        done = subprocess.run([sys.executable, "-m", "lucid.eval", "--demo", "--chunk-rows", "64",
                               "--json"], stdout=subprocess.PIPE, stderr=terminal, timeout=60)
        os.close(terminal)
        shown = b""
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not data:
                break
            shown += data
    finally:
        os.close(controller)
    assert done.returncode == 0
    assert b"lucid.eval" in shown and b"row" in shown  # tqdm's bar, on the terminal
    assert json.loads(done.stdout)["rows"] == 1024  # stdout stays clean JSON
