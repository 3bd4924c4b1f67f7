"""Threads with small stacks run every kernel (issue 12, item 2).

The kernels once kept 64-160 KiB of buffers on the calling thread's stack and
crashed with SIGSEGV in a thread of 128 KiB (musl's default). The calls run in
a child process, so that a crash fails the test instead of ending the run.
"""
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import threading
    import numpy as np
    import lucid
    from lucid.nn.functional import kl_div

    lucid.set_num_threads({kernel_threads})
    rng = np.random.default_rng(0)
    x = np.log(rng.uniform(1e-3, 1.0, (64, 1000))).astype(np.float32)
    target = rng.uniform(0.0, 1.0, (64, 1000))      # float64: a dtype mix, gathered
    results = {{}}

    def work():
        for reduction in ("sum", "mean", "batchmean", "none"):
            for log_target in (False, True):
                x_leaf = lucid.tensor(x, requires_grad=True)
                t_leaf = lucid.tensor(target, requires_grad=True)
                loss = kl_div(x_leaf, t_leaf, reduction=reduction, log_target=log_target)
                loss.sum().backward()
                key = (reduction, log_target)
                results[key] = (float(loss.sum().item()), float(x_leaf.grad.sum().item()),
                                float(t_leaf.grad.sum().item()))
        # A strided layout and float16 also go through the gather buffers.
        results["strided"] = float(kl_div(x[:, ::2], target[:, ::2].T.T, reduction="sum").item())
        results["float16"] = float(kl_div(x.astype(np.float16), target.astype(np.float16),
                                          reduction="sum").item())

    threading.stack_size(128 * 1024)
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert len(results) == 10, results
    reference = np.sum(target * (np.log(target) - x))
    assert abs(results[("sum", False)][0] - reference) <= 1e-6 * abs(reference), results
    print("ok")
""")


@pytest.mark.parametrize("kernel_threads", [1, 2])
def test_every_kernel_runs_in_a_thread_with_a_128_kib_stack(kernel_threads):
    env = dict(os.environ, OMP_STACKSIZE="96K")
    done = subprocess.run([sys.executable, "-c", CHILD.format(kernel_threads=kernel_threads)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "ok"
