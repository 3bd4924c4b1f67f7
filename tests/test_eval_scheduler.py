"""``--scheduler`` against a real scheduler and worker, started as separate processes.

The job's client is never the default one (the command makes no other), which is
how it runs for a user; the report must equal the one this machine gives.
"""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from lucid.eval import main  # noqa: E402


def free_port():
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def started(argv, env):
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def scheduler_address():
    """A ``dask scheduler`` and a one-thread ``dask worker`` on 127.0.0.1, killed at the end."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    address = f"tcp://127.0.0.1:{free_port()}"
    dask = [sys.executable, "-m", "dask"]
    with started([*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":")[-1],
                  "--no-dashboard"], env):
        with started([*dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                      "--no-dashboard", "--host", "127.0.0.1"], env):
            deadline = time.monotonic() + 60
            while True:  # wait for the worker, from a client that is closed again
                try:
                    with distributed.Client(address, timeout="5s",
                                            set_as_default=False) as client:
                        client.wait_for_workers(1, timeout=30)
                        break
                except (OSError, TimeoutError):
                    if time.monotonic() > deadline:
                        pytest.skip("the dask scheduler and worker did not start")
                    time.sleep(0.5)
            yield address


def run_in_a_process(argv):
    """The command as a user runs it: a fresh process, where no other Dask client exists."""
    done = subprocess.run([sys.executable, "-m", "lucid.eval", *argv, "--json"], text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_report_on_a_real_cluster_equals_this_machine(rng, tmp_path, capsys, scheduler_address):
    teacher = 2 * rng.standard_normal((260, 30)).astype(np.float32)
    files = []
    for i, noise in enumerate([0.3, 0.9]):
        np.save(tmp_path / f"s{i}.npy", teacher + noise * rng.standard_normal(teacher.shape))
        files.append(str(tmp_path / f"s{i}.npy"))
    labels = rng.integers(30, size=260)
    labels[:13] = -100
    np.save(tmp_path / "t.npy", teacher)
    np.save(tmp_path / "y.npy", labels)
    argv = [*files, str(tmp_path / "t.npy"), "--labels", str(tmp_path / "y.npy"),
            "--chunk-rows", "50"]
    assert main([*argv, "--per-row", str(tmp_path / "here.npz"), "--json"]) == 0
    here = json.loads(capsys.readouterr().out)
    there = run_in_a_process([*argv, "--per-row", str(tmp_path / "there.npz"),
                              "--scheduler", scheduler_address])
    assert there["scheduler"] == scheduler_address and there["threads"] == 1
    assert there["students"] == here["students"]  # every statistic, bit for bit
    for key in ("student0", "student1"):
        np.testing.assert_array_equal(np.load(tmp_path / "there.npz")[key],
                                      np.load(tmp_path / "here.npz")[key])
