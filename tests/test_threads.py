"""Thread control: set/get_num_threads, OMP_NUM_THREADS, threadpoolctl, Python threads."""
import concurrent.futures
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div

from conftest import random_distributions, reference_losses


def test_set_num_threads_round_trips():
    before = lucid.get_num_threads()
    try:
        lucid.set_num_threads(1)
        assert lucid.get_num_threads() == 1
        lucid.set_num_threads(3)
        assert lucid.get_num_threads() == 3
    finally:
        lucid.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1])
def test_set_num_threads_rejects_values_below_one(bad):
    with pytest.raises(ValueError, match=str(bad)):
        lucid.set_num_threads(bad)


@pytest.mark.parametrize("bad", [True, 2.0, "2", None])
def test_set_num_threads_rejects_non_integers(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        lucid.set_num_threads(bad)


@pytest.mark.parametrize("huge", [10**6, 2**31 - 1, 2**31, 10**20])
def test_set_num_threads_caps_huge_counts(huge):
    before = lucid.get_num_threads()
    try:
        lucid.set_num_threads(huge)
        capped = lucid.get_num_threads()
        lucid.set_num_threads(10**6)
        assert capped == lucid.get_num_threads()
        assert 1 <= capped <= 4 * os.cpu_count()
    finally:
        lucid.set_num_threads(before)


def test_omp_num_threads_sets_the_default():
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", "import lucid; print(lucid.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"


def test_threadpoolctl_limits_lucid():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = lucid.get_num_threads()
    lucid.set_num_threads(2)
    try:
        with threadpoolctl.threadpool_limits(1):
            assert lucid.get_num_threads() == 1
        assert lucid.get_num_threads() == 2
    finally:
        lucid.set_num_threads(before)


def test_concurrent_calls_from_python_threads_are_correct(rng):
    pairs = [random_distributions(rng, (64, 2000)) for _ in range(8)]
    expected = [reference_losses(x, p).sum() for x, p in pairs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda pair: kl_div(*pair, reduction="sum").item(), pairs * 3))
    np.testing.assert_allclose(got, expected * 3, rtol=1e-12)


def test_show_config_reports_openmp_and_threads(capsys):
    lucid.show_config()
    out = capsys.readouterr().out
    assert out.startswith(f"lucid {lucid.__version__}")
    assert "OpenMP:" in out and f"threads:       {lucid.get_num_threads()}" in out
    assert "-march=native" not in out and "-ffast-math" not in out


def test_openmp_is_compiled_in():
    # Opt-out, as scikit-learn's: a build that silently fell back to one thread fails here
    # unless whoever runs the tests says a serial build is what they meant.
    if os.environ.get("LUCID_SKIP_OPENMP_TEST") == "1":
        pytest.skip("LUCID_SKIP_OPENMP_TEST=1: a serial build is accepted")
    assert lucid.config()["openmp"] is True, (
        "lucid was built without OpenMP (see the build's warning); "
        "set LUCID_SKIP_OPENMP_TEST=1 to accept a serial build"
    )


def test_set_num_threads_applies_to_kernels_called_from_other_python_threads():
    # OpenMP's own count is per thread; lucid's must reach a thread pool's workers.
    before = lucid.get_num_threads()
    lucid.set_num_threads(1)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(lucid.get_num_threads).result() == 1
    finally:
        lucid.set_num_threads(before)


def test_kernel_in_another_python_thread_stays_serial_after_set_num_threads_1():
    script = textwrap.dedent("""
        import threading
        import numpy as np
        import lucid
        from lucid._ext import _openmp_helpers
        from lucid.nn.functional import kl_div
        lucid.set_num_threads(1)
        x, p = np.full((64, 8192), -2.0), np.full((64, 8192), 0.125)
        worker = threading.Thread(target=kl_div, args=(x, p))
        worker.start()
        worker.join()
        print(_openmp_helpers.entered_parallel())
    """)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_thread_count_is_capped_at_four_per_cpu():
    before = lucid.get_num_threads()
    lucid.set_num_threads(10**6)
    try:
        assert 1 <= lucid.get_num_threads() <= 4 * os.cpu_count()
    finally:
        lucid.set_num_threads(before)


def test_absurd_omp_num_threads_does_not_end_the_process():
    # Uncapped, a reduction over 2**30 elements would ask the OpenMP runtime for
    # 65536 threads: it fails to create them and exits (or crashes).
    script = textwrap.dedent("""
        import numpy as np
        from lucid.nn.functional import kl_div
        n = 2**30
        x, p = np.broadcast_to(np.float32(-2.0), (n,)), np.broadcast_to(np.float32(0.0), (n,))
        print(kl_div(x, p, reduction="sum").item())
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1000000")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.0"


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5"])
def test_invalid_omp_num_threads_falls_back_to_the_default(value):
    def threads_with(env):
        out = subprocess.run([sys.executable, "-c", "import lucid; print(lucid.get_num_threads())"],
                             env=env, capture_output=True, text=True, check=True)
        return int(out.stdout)

    without = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    assert threads_with(dict(without, OMP_NUM_THREADS=value)) == threads_with(without)
