"""python -m lucid.eval against hostile outputs, headers, options and schedulers.

Each test reproduces one defect of the reliability pass (issue 12): the output
file's node and links survive, concurrent jobs do not share a temporary file,
and every bad value ends in one stderr line with exit status 2.
"""
import os
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import lucid
from lucid.eval import InputError, evaluate, main

from cli_checks import fails, write_good_pair

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def good(tmp_path):
    """A valid student/teacher pair of .npy files."""
    return write_good_pair(tmp_path)


def expected_per_row(paths, temperature=1.0):
    """The per-row KL(teacher || student) of two logits files, from a float64 formula."""
    student, teacher = (np.load(path).astype(np.float64) / temperature for path in paths)

    def log_softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    log_p, log_q = log_softmax(teacher), log_softmax(student)
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


def read_fifo_in_background(path):
    """Start a reader of the FIFO at ``path``; return the list its bytes land in."""
    received = []
    reader = threading.Thread(target=lambda: received.append(open(path, "rb").read()),
                              daemon=True)
    reader.start()
    return received, reader


# --per-row onto a FIFO, a device node or a symbolic link (item 1)

def test_per_row_into_a_fifo_streams_into_it_and_keeps_the_fifo(capsys, good, tmp_path):
    fifo = tmp_path / "kl.fifo"
    os.mkfifo(fifo)
    received, reader = read_fifo_in_background(fifo)
    assert main([*good, "--per-row", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    (tmp_path / "got.npy").write_bytes(received[0])
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), expected_per_row(good),
                               rtol=1e-12, atol=1e-15)


def test_per_row_through_a_symlink_keeps_the_link_and_writes_its_target(capsys, good, tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "kl.npy"
    target.write_bytes(b"old")
    link = tmp_path / "kl.npy"
    os.symlink(target, link)
    assert main([*good, "--per-row", str(link)]) == 0
    assert os.path.islink(link) and os.readlink(link) == str(target)
    np.testing.assert_allclose(np.load(target), expected_per_row(good), rtol=1e-12, atol=1e-15)
    assert sorted(os.listdir(tmp_path / "real")) == ["kl.npy"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="creating a device node needs root")
def test_per_row_onto_a_device_node_writes_into_it_and_keeps_it(capsys, good, tmp_path):
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the kernel's null device
    assert main([*good, "--per-row", str(null)]) == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["null", "student.npy", "teacher.npy"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0
                    or not stat.S_ISCHR(os.stat("/dev/null").st_mode),
                    reason="only root could replace /dev/null")
def test_per_row_onto_dev_null_keeps_the_system_node(capsys, good, monkeypatch):
    real_replace, real_unlink = os.replace, os.unlink

    def guarded(real):
        # Even if the fix regressed, this test must never replace the system's node.
        def call(*args, **kwargs):
            if any(os.path.realpath(a) == "/dev/null" for a in args if isinstance(a, str)):
                raise AssertionError("/dev/null would have been replaced")
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(os, "replace", guarded(real_replace))
    monkeypatch.setattr(os, "unlink", guarded(real_unlink))
    assert main([*good, "--per-row", "/dev/null"]) == 0
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert not [name for name in os.listdir("/dev") if name.startswith(".null.")]


def test_per_row_onto_an_unwritable_fifo_fails_before_work(capsys, good, tmp_path, monkeypatch):
    fifo = tmp_path / "kl.fifo"
    os.mkfifo(fifo, 0o444)
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(fifo))
    fails(capsys, [*good, "--per-row", str(fifo)], "kl.fifo", "is not writable")


# Two jobs writing one --per-row file at once (item 4)

def test_concurrent_jobs_writing_one_per_row_file_both_succeed(good, tmp_path, monkeypatch):
    out = tmp_path / "kl.npy"
    inputs = [np.random.default_rng(seed).standard_normal((2, 50, 5)) for seed in (1, 2, 3)]
    jobs = [(inputs[0], inputs[1]), (inputs[1], inputs[2])]
    real_write = np.lib.format.write_array
    both_writing = threading.Barrier(2, timeout=20)

    def write_then_wait(*args, **kwargs):
        # Both jobs are inside their write at once: the race the jobs must survive.
        real_write(*args, **kwargs)
        both_writing.wait()

    monkeypatch.setattr(np.lib.format, "write_array", write_then_wait)
    results, errors = [None, None], []

    def run(index):
        try:
            results[index] = evaluate(*jobs[index], per_row_path=out).per_row
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    written = np.load(out)
    assert any(np.array_equal(written, result) for result in results)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_per_row_file_gets_the_permissions_of_a_plain_open(good, tmp_path):
    out = tmp_path / "kl.npy"
    evaluate(*good, per_row_path=out)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask


# Options and headers that used to pass the checks (items 8, 9, 12, 15)

@pytest.mark.parametrize("temperature", ["1e-310", "5e-324"])
def test_temperature_whose_reciprocal_overflows_is_refused(capsys, good, temperature):
    fails(capsys, [*good, "--temperature", temperature], "temperature", temperature,
          "1/temperature overflows")


def test_small_temperatures_that_are_fine_still_work(good):
    result = evaluate(*good, temperature=0.01)
    np.testing.assert_allclose(result.per_row, expected_per_row(good, 0.01), rtol=1e-10)
    with pytest.raises(InputError, match="1/temperature overflows"):
        evaluate(*good, temperature=np.float64(1e-310))


def npy_with_header(path, header):
    """A version 1.0 .npy file whose header dict is ``header`` verbatim, with 80 data bytes."""
    text = header.encode("latin1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + bytes(80))
    return str(path)


@pytest.mark.parametrize("shape", ["(-5, 10)", "(-3, -4)", "(True, 10)", "(10, False)"])
@pytest.mark.parametrize("fortran_order", [False, True])
def test_malformed_header_dimensions_are_one_line(capsys, good, tmp_path, shape, fortran_order):
    student = npy_with_header(tmp_path / "bad.npy", f"{{'descr': '<f8', 'fortran_order': "
                                                    f"{fortran_order}, 'shape': {shape}, }}")
    fails(capsys, [student, good[1]], "student", "bad.npy", "no valid .npy header", shape)


def test_huge_thread_count_on_the_command_line_is_capped(capsys, good):
    before = lucid.get_num_threads()
    assert main([*good, "--threads", "99999999999", "--json"]) == 0
    out, err = capsys.readouterr()
    # No warning nor traceback: only the report's note that 6 rows are few.
    assert err.startswith("lucid.eval: note: only 6 rows") and err.count("\n") == 1
    assert '"threads": ' in out and lucid.get_num_threads() == before


def test_empty_per_row_path_is_refused_before_reading_inputs(capsys, tmp_path):
    fails(capsys, [str(tmp_path / "missing.npy"), str(tmp_path / "missing.npy"),
                   "--per-row", ""], "per-row output path is empty")
    assert os.listdir(tmp_path) == []


# A bad --scheduler address (item 10)

@pytest.mark.parametrize("address", ["garbage://x", ""])
def test_bad_scheduler_address_exits_promptly_with_one_line(tmp_path, address):
    pytest.importorskip("distributed")
    for name in ("s.npy", "t.npy"):
        np.save(tmp_path / name, np.zeros((4, 3)))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "lucid.eval", str(tmp_path / "s.npy"),
                           str(tmp_path / "t.npy"), "--scheduler", address],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=ROOT), cwd=tmp_path)
    # A half-made client used to keep the process 20 s at exit.
    assert time.monotonic() - started < 15
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "cannot connect to the Dask scheduler" in done.stderr
