"""A process forked after lucid ran OpenMP threads finishes its own kl_div, serially.

GNU OpenMP's worker threads do not survive fork(); a child entering a parallel
region would wait for them forever. lucid's after-fork hook (lucid._fork) keeps
such a child serial and warns once. Every child here runs under a timeout, so a
regression fails the test instead of hanging it.
"""
import multiprocessing
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import lucid
from lucid._ext import _openmp_helpers
from lucid.nn.functional import kl_div

from references import random_distributions, reference_losses

TIMEOUT = 60
# Large enough that two threads are used (the kernels run small inputs serially).
SHAPE = (64, 8192)

pytestmark = pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork here")


def run_in_forked_child(function):
    """Return ``function()`` computed in a 'fork' child, failing if it hangs or dies."""
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    child = context.Process(target=lambda: results.put(function()))
    child.start()
    child.join(TIMEOUT)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"the forked child hung for {TIMEOUT} s")
    assert child.exitcode == 0, f"the forked child exited with {child.exitcode}"
    return results.get()


@pytest.fixture
def parent_ran_parallel(rng):
    """The parent has run a kl_div on two OpenMP threads; returns inputs for the child."""
    if not lucid.config()["openmp"]:
        pytest.skip("a serial build never starts OpenMP threads")
    before = lucid.get_num_threads()
    lucid.set_num_threads(2)
    x, p = random_distributions(rng, SHAPE)
    kl_div(x, p, reduction="sum")
    assert _openmp_helpers.entered_parallel()
    yield x, p
    lucid.set_num_threads(before)


def test_forked_child_finishes_its_own_kl_div(parent_ran_parallel):
    x, p = parent_ran_parallel
    child_x, child_p = x[::-1], p[:, ::-1]  # different work from the parent's
    got = run_in_forked_child(lambda: kl_div(child_x, child_p, reduction="sum").item())
    assert got == pytest.approx(reference_losses(child_x, child_p).sum(), rel=1e-12)


def test_forked_child_gives_the_parents_bits(parent_ran_parallel):
    # Serial in the child, parallel in the parent: the fixed-order sum is bitwise equal.
    x, p = parent_ran_parallel
    in_parent = kl_div(x, p, reduction="sum").item()
    assert run_in_forked_child(lambda: kl_div(x, p, reduction="sum").item()) == in_parent


def test_forked_child_runs_serially(parent_ran_parallel):
    state = run_in_forked_child(
        lambda: (_openmp_helpers.is_forced_serial(), lucid.get_num_threads()))
    assert state == (True, 1)
    assert not _openmp_helpers.is_forced_serial()  # the parent keeps its threads


def test_forked_child_warns_once_naming_the_fix(parent_ran_parallel):
    x, p = parent_ran_parallel
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def child():
            kl_div(x, p, reduction="sum")
            kl_div(x, p, reduction="none")
            return [(w.category.__name__, str(w.message)) for w in caught]

        in_child = run_in_forked_child(child)
    assert caught == []  # nothing in the parent
    assert len(in_child) == 1
    category, message = in_child[0]
    assert category == "RuntimeWarning"
    assert "fork" in message and "'spawn'" in message and "'forkserver'" in message


def test_forked_child_stays_serial_after_set_num_threads(parent_ran_parallel):
    def child():
        lucid.set_num_threads(2)
        return lucid.get_num_threads()

    assert run_in_forked_child(child) == 1


def test_grandchild_of_a_parallel_parent_finishes(parent_ran_parallel):
    x, p = parent_ran_parallel
    expected = kl_div(x, p, reduction="sum").item()
    assert run_in_forked_child(
        lambda: run_in_forked_child(lambda: kl_div(x, p, reduction="sum").item())) == expected


def test_child_of_a_serial_parent_keeps_its_threads():
    # A fresh interpreter that never ran a parallel kernel before forking.
    script = textwrap.dedent("""
        import multiprocessing, warnings
        import numpy as np
        import lucid
        from lucid._ext import _openmp_helpers
        from lucid.nn.functional import kl_div
        lucid.set_num_threads(2)
        kl_div(np.full(8, -2.0), np.full(8, 0.125))  # small: serial, no OpenMP threads
        warnings.simplefilter("error")
        context = multiprocessing.get_context("fork")
        results = context.SimpleQueue()
        child = context.Process(target=lambda: results.put(
            (_openmp_helpers.is_forced_serial(), lucid.get_num_threads())))
        child.start()
        child.join()
        print(child.exitcode, *results.get())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "False", "2"]


def test_spawn_child_keeps_its_threads():
    # The fix the warning names: a spawned child starts a fresh OpenMP runtime.
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        state = pool.apply_async(_spawned_child_state).get(TIMEOUT)
    assert state == (False, True, True)


def _spawned_child_state():
    lucid.set_num_threads(2)
    x, p = random_distributions(np.random.default_rng(3), SHAPE)
    total = kl_div(x, p, reduction="sum").item()
    return (_openmp_helpers.is_forced_serial(), _openmp_helpers.entered_parallel(),
            total == pytest.approx(reference_losses(x, p).sum(), rel=1e-12))
