"""kl_div from several Python threads at once: right answers, the GIL released.

Complements tests/test_threads.py (many threads computing sums): here threads
mix reductions, dtypes and backward passes, change the thread count while
others compute, and a kernel must let other Python threads run meanwhile.
"""
import concurrent.futures
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div

from conftest import random_distributions, reference_losses

WORKERS = 4


def one_job(seed):
    """A forward and backward pass of its own; returns what to check against references."""
    rng = np.random.default_rng(seed)
    dtype = [np.float32, np.float64][seed % 2]
    x, p = random_distributions(rng, (32, 4099), dtype)
    reduction = ["sum", "mean", "batchmean", "none"][seed % 4]
    x_leaf = lucid.tensor(x, requires_grad=True)
    loss = kl_div(x_leaf, p, reduction=reduction)
    loss.sum().backward()
    return x, p, reduction, loss.detach().numpy(), x_leaf.grad.numpy()


def test_threads_mixing_reductions_dtypes_and_backward_get_their_own_results():
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one_job, range(16)))
    for x, p, reduction, loss, grad in results:
        losses = reference_losses(x, p)
        scale = {"sum": 1.0, "none": 1.0, "mean": 1 / x.size, "batchmean": 1 / x.shape[0]}[reduction]
        expected = losses if reduction == "none" else losses.sum() * scale
        rtol = 1e-5 if x.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(loss, expected, rtol=rtol, atol=1e-6 if rtol > 1e-6 else 0)
        np.testing.assert_allclose(grad, -p * scale, rtol=rtol)


def test_results_are_bitwise_stable_while_another_thread_changes_the_thread_count(rng):
    x, p = random_distributions(rng, (64, 8192))
    before = lucid.get_num_threads()
    expected = kl_div(x, p, reduction="sum").item()
    stop = threading.Event()

    def flip_thread_count():
        while not stop.is_set():
            for n in (1, 2, 3):
                lucid.set_num_threads(n)

    flipper = threading.Thread(target=flip_thread_count)
    flipper.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
            got = list(pool.map(lambda _: kl_div(x, p, reduction="sum").item(), range(24)))
    finally:
        stop.set()
        flipper.join()
        lucid.set_num_threads(before)
    assert got == [expected] * 24


def longest_stall_beside(reduction, x, p):
    """The main thread's longest wait while a worker runs 3 kernels; and one kernel's time."""
    started, kernel_time = threading.Event(), []

    def worker():
        started.set()
        begin = time.perf_counter()
        for _ in range(3):
            kl_div(x, p, reduction=reduction)
        kernel_time.append(time.perf_counter() - begin)

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait()
    last, longest_stall = time.perf_counter(), 0.0
    while thread.is_alive():
        now = time.perf_counter()
        longest_stall, last = max(longest_stall, now - last), now
    thread.join()
    return longest_stall, kernel_time[0] / 3


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_kernels_release_the_gil(reduction):
    # While a long kernel runs in a worker, the main thread keeps running Python.
    # Were the GIL held, the main thread would stall for the whole kernel.
    x = np.broadcast_to(np.log(np.full(4096, 1 / 4096)), (4096, 4096))
    p = np.broadcast_to(np.linspace(0.0, 1.0, 4096)[:, None], (4096, 4096))
    # One kernel thread, so that the main thread has a core of its own: with
    # every core busy in the kernel, the operating system's scheduling, not
    # the GIL, would decide how long the main thread waits. On a shared
    # machine a neighbour can still take that core for a while, so the best
    # of three tries counts: a held GIL would stall every one of them.
    before = lucid.get_num_threads()
    lucid.set_num_threads(1)
    try:
        tries = [longest_stall_beside(reduction, x, p) for _ in range(3)]
    finally:
        lucid.set_num_threads(before)
    assert min(stall / one_call for stall, one_call in tries) < 1 / 3


INTERRUPTED_SUM = """
import _thread, threading, time
import numpy as np
from lucid.nn.functional import kl_div
# 2**36 elements through zero-stride views: minutes of work, no memory.
x = np.broadcast_to(np.float32(-1.0), (1 << 18, 1 << 18))
t = np.broadcast_to(np.float32(0.5), (1 << 18, 1 << 18))
threading.Timer(0.5, _thread.interrupt_main).start()
start = time.perf_counter()
try:
    kl_div(x, t, reduction="sum")
except KeyboardInterrupt:
    print(f"interrupted after {time.perf_counter() - start:.2f} s")
"""


def test_a_huge_reduction_stops_at_ctrl_c():
    # In a child process, so that a KeyboardInterrupt that went astray could
    # not end this test session. The reduction checks for signals between
    # groups of blocks (about 33 million elements each).
    child = subprocess.run([sys.executable, "-c", INTERRUPTED_SUM], capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("interrupted after "), child.stdout
    assert float(child.stdout.split()[2]) < 10.0
