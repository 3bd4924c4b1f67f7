"""python -m lucid.eval on bad input: one line on stderr, exit status 2, no traceback, no file."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from lucid.eval import main, sources

from cli_checks import fails, write_good_pair


class RunsCodeWhenUnpickled:
    """An object whose unpickling would create a directory: proof that nothing ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture
def good(tmp_path):
    """A valid student/teacher pair of .npy files."""
    return write_good_pair(tmp_path)


def save_raw(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_missing_file(capsys, good, tmp_path):
    fails(capsys, [str(tmp_path / "nope.npy"), good[1]], "student", "nope.npy", "no such file")


def test_directory_instead_of_file(capsys, good, tmp_path):
    fails(capsys, [good[0], str(tmp_path)], "teacher", "is a directory")


def test_unreadable_file(capsys, good, monkeypatch):
    # Simulated: the tests may run as root, who reads files whatever their mode.
    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(sources, "open", denied, raising=False)
    fails(capsys, good, "student", "cannot read it (Permission denied)")


def test_file_that_is_neither_npy_nor_npz(capsys, good, tmp_path):
    fails(capsys, [save_raw(tmp_path, "x.npy", b"a,b\n1,2\n"), good[1]],
          "neither a .npy file, a .npz archive nor a .safetensors file")


def test_corrupt_npy_header(capsys, good, tmp_path):
    fails(capsys, [save_raw(tmp_path, "x.npy", b"\x93NUMPY\x01\x00garbage"), good[1]],
          "student", "no valid .npy header")


def test_truncated_npy_file(capsys, good, tmp_path):
    data = open(good[0], "rb").read()
    fails(capsys, [save_raw(tmp_path, "x.npy", data[:-20]), good[1]], "is truncated")


def test_corrupt_npz_archive(capsys, good, tmp_path):
    fails(capsys, [save_raw(tmp_path, "x.npz", b"PK\x03\x04" + b"\0" * 40), good[1]],
          "not a readable .npz archive")


def test_truncated_npz_archive(capsys, good, tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, np.zeros((6, 4)))
    cut = save_raw(tmp_path, "cut.npz", path.read_bytes()[:200])
    fails(capsys, [cut, good[1]], "student", "not a readable .npz archive")


@pytest.mark.parametrize("container", ["npy", "npz"])
def test_object_array_is_refused_and_nothing_in_it_runs(capsys, good, tmp_path, container):
    marker = tmp_path / "ran"
    payload = np.empty((6, 4), dtype=object)
    payload[0, 0] = RunsCodeWhenUnpickled(str(marker))
    path = tmp_path / f"evil.{container}"
    if container == "npy":
        np.save(path, payload, allow_pickle=True)
    else:
        np.savez(path, logits=payload)
    fails(capsys, [str(path), good[1]], "student", "Python objects", "refused")
    assert not marker.exists()


@pytest.mark.parametrize("array, dtype", [
    (np.array([["a", "b"], ["c", "d"]]), "<U1"),
    (np.ones((2, 2), dtype=complex), "complex128"),
    (np.ones((2, 2), dtype=bool), "bool"),
    (np.zeros((2, 2), dtype=[("a", "f4")]), "[('a', '<f4')]"),
])
def test_non_numeric_dtype(capsys, tmp_path, array, dtype):
    np.save(tmp_path / "t.npy", np.zeros((2, 2)))
    np.save(tmp_path / "s.npy", array)
    fails(capsys, [str(tmp_path / "s.npy"), str(tmp_path / "t.npy")], f"dtype {dtype}",
          "expected real numbers")


@pytest.mark.parametrize("shape", [(4,), ()])
def test_fewer_than_two_dimensions(capsys, good, tmp_path, shape):
    np.save(tmp_path / "t.npy", np.zeros(shape))
    fails(capsys, [good[0], str(tmp_path / "t.npy")], "teacher", f"shape {shape}",
          "at least 2 dimensions")


def test_empty_array(capsys, good, tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((0, 4)))
    fails(capsys, [str(tmp_path / "s.npy"), good[1]], "(0, 4)", "nothing to evaluate")


def test_mismatched_shapes(capsys, good, tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((6, 5)))
    fails(capsys, [good[0], str(tmp_path / "t.npy")], "shapes differ", "(6, 4)", "(6, 5)")


def test_npz_with_several_arrays_and_no_key(capsys, good, tmp_path):
    np.savez(tmp_path / "s.npz", a=np.zeros((6, 4)), b=np.zeros((6, 4)))
    fails(capsys, [str(tmp_path / "s.npz"), good[1]], "'a', 'b'", "--key")


def test_npz_without_the_key(capsys, good, tmp_path):
    np.savez(tmp_path / "s.npz", a=np.zeros((6, 4)))
    fails(capsys, [str(tmp_path / "s.npz"), good[1], "--student-key", "logits"],
          "no array 'logits'", "holds 'a'")


def test_key_given_for_npy_files(capsys, good):
    fails(capsys, [*good, "--key", "logits"], ".npy file", "'logits'")


@pytest.mark.parametrize("option, fragment", [
    (["--temperature", "0"], "temperature must be > 0"),
    (["--temperature", "-1"], "temperature must be > 0"),
    (["--temperature", "nan"], "temperature must be > 0"),
    (["--temperature", "inf"], "temperature must be > 0"),
    (["--temperature", "warm"], "temperature must be a number"),
    (["--chunk-rows", "0"], "chunk-rows must be > 0"),
    (["--chunk-rows", "1.5"], "chunk-rows must be a number"),
    (["--threads", "0"], "threads must be > 0"),
    (["--reduction", "none"], "invalid choice: 'none'"),
    (["--student-kind", "softmax"], "invalid choice: 'softmax'"),
    (["--unknown"], "unrecognized arguments: --unknown"),
    (["--threads", "2", "--scheduler", "tcp://127.0.0.1:1"], "threads apply to this machine"),
])
def test_bad_option_values(capsys, good, option, fragment):
    fails(capsys, [*good, *option], fragment)


def test_temperature_without_logits(capsys, good):
    fails(capsys, [*good, "--student-kind", "log-probs", "--teacher-kind", "probs",
                   "--temperature", "2"], "temperature 2.0 divides logits")


def test_missing_teacher(capsys, good):
    fails(capsys, [good[0]], "STUDENT and TEACHER are required")


def test_demo_with_files(capsys, good):
    fails(capsys, ["--demo", *good], "--demo", "takes no STUDENT or TEACHER")


def test_per_row_into_a_missing_directory(capsys, good, tmp_path):
    fails(capsys, [*good, "--per-row", str(tmp_path / "no" / "out.npy")], "does not exist")


def test_per_row_onto_an_input_file(capsys, good):
    before = open(good[1], "rb").read()
    fails(capsys, [*good, "--per-row", good[1]], "is an input file")
    assert open(good[1], "rb").read() == before


def test_failed_run_leaves_no_per_row_file(capsys, good, tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((6, 5)))
    out = tmp_path / "out.npy"
    fails(capsys, [good[0], str(tmp_path / "t.npy"), "--per-row", str(out)], "shapes differ")
    assert not out.exists()
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_corrupt_compressed_data_midway_leaves_no_per_row_file(capsys, good, tmp_path):
    path = tmp_path / "s.npz"
    np.savez_compressed(path, logits=np.random.default_rng(1).standard_normal((6000, 4)))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte inside the deflated data
    path.write_bytes(bytes(data))
    teacher = tmp_path / "t.npy"
    np.save(teacher, np.zeros((6000, 4)))
    out = tmp_path / "out.npy"
    fails(capsys, [str(path), str(teacher), "--chunk-rows", "100", "--per-row", str(out)],
          "student", "cannot read rows", "CRC")
    assert not out.exists()


def test_real_process_prints_one_line_and_exits_2(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((3, 2), dtype=object), allow_pickle=True)
    done = subprocess.run([sys.executable, "-m", "lucid.eval", str(tmp_path / "s.npy"),
                           str(tmp_path / "missing.npy")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Python objects" in done.stderr


def test_real_process_usage_error_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lucid.eval", "a.npy", "b.npy",
                           "--reduction", "avg"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "invalid choice: 'avg'" in done.stderr


def test_zip_member_that_is_not_npy_is_not_offered(capsys, good, tmp_path):
    path = tmp_path / "s.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    fails(capsys, [str(path), good[1]], "holds no arrays")
