"""Time lucid's fused distillation loss against the unfused script and the bandwidth probe.

A training step's loss work: the forward and the backward w.r.t. the student
logits, float32 ``(rows, classes)``, for lucid's ``distillation_loss`` and for
the script every distillation user writes in the reference framework
(``kl_div(log_softmax(s / T), softmax(t / T), reduction="batchmean") * T**2``
then ``backward``), with the timing helpers of ``bench_kl_div.py``: lucid's
step and the bandwidth probe take turns, then the reference framework's
script runs its own rounds (taking turns with it, lucid's step would often
wait for the operating system to assemble huge pages after the script's
multi-gigabyte temporaries are freed, which measures the script, not
lucid). Printed: medians, the ratio of the fastest runs, which a noisy
neighbour disturbs least, and the median of each round's ratio (the step
over the probe run just before it: both see the same memory traffic from
neighbours, which on a shared machine moves the probe alone by 2x between
minutes). The bandwidth probe reads both inputs once and nothing
else; the fused step also writes a fresh input-sized gradient. Each step
frees the last one's gradient first (``s.grad = None``), as a training loop
does, so the gradient buffer cache (``lucid.set_cache_limit``) gives the new
gradient the pages of the old; ``--no-cache`` turns the cache off, so that
every gradient is fresh memory whose pages the operating system must zero and
map on the first write. The peak
memory beyond that gradient is traced with tracemalloc (which sees numpy's
arrays and the kernels' row buffers).

    python benchmarks/bench_distillation.py                 # (4096, 32000), 2 threads
    python benchmarks/bench_distillation.py --quick         # small and fast, for a smoke test
    python benchmarks/bench_distillation.py --json out.json
    python benchmarks/bench_distillation.py --no-cache       # every gradient in fresh memory
    python benchmarks/bench_distillation.py --breakdown      # where the "kl" step's time goes

``--breakdown`` times the parts of the ``"kl"`` step, each with the probe
just before it: the forward alone (``lucid._ext.distill.forward``, the
array layer under ``distillation_loss``, with no gradient), the forward with
its fused gradient written into an array reused from call to call (its pages
faulted in already), the same into a fresh array (the step's case), and the
operating system faulting in a fresh gradient-sized array alone (one write
per page, one thread), and for comparison ``kl_div(..., reduction="none")``
on the same arrays, which reads both and writes a fresh input-sized output.
"""
import argparse
import json
import pathlib
import statistics
import sys
import tracemalloc

import numpy as np

import lucid
from lucid.nn.functional import distillation_loss, kl_div

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_kl_div import machine, probe, set_threads, time_interleaved, torch  # noqa: E402

if torch is not None:
    import torch.nn.functional as torch_functional

TEMPERATURE = 2.0
MiB = 1 << 20


def make_logits(shape, seed=0):
    """Student and teacher logits, float32, a few units apart like a model's."""
    rng = np.random.default_rng(seed)
    return (3 * rng.standard_normal(shape, dtype=np.float32),
            3 * rng.standard_normal(shape, dtype=np.float32))


def step_functions(student, teacher, divergence):
    """One training step's loss work per library: forward, then backward w.r.t. the student."""
    s = lucid.tensor(student, requires_grad=True)
    t = lucid.from_numpy(teacher)

    def lucid_step():
        s.grad = None
        distillation_loss(s, t, TEMPERATURE, divergence=divergence).backward()

    functions = {"lucid": lucid_step}
    if torch is not None and divergence == "kl":
        st = torch.tensor(student, requires_grad=True)
        tt = torch.from_numpy(teacher)

        def torch_step():
            st.grad = None
            loss = torch_functional.kl_div(
                torch_functional.log_softmax(st / TEMPERATURE, dim=-1),
                torch_functional.softmax(tt / TEMPERATURE, dim=-1),
                reduction="batchmean") * TEMPERATURE ** 2
            loss.backward()

        functions["torch"] = torch_step
    return functions, s


def peak_beyond_gradient(student, teacher):
    """Peak traced bytes of a lucid step beyond the gradient it returns."""
    s = lucid.tensor(student, requires_grad=True)
    t = lucid.from_numpy(teacher)
    distillation_loss(s, t, TEMPERATURE).backward()   # warm-up
    s.grad = None
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        distillation_loss(s, t, TEMPERATURE).backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - s.grad.numpy().nbytes


def breakdown(args):
    """The parts of the ``"kl"`` step, each timed with the probe just before it (paired ratios)."""
    from lucid._ext import distill
    shape = (args.rows, args.cols)
    set_threads(args.threads)
    student, teacher = make_logits(shape)
    coef = TEMPERATURE ** 2 / shape[0]  # batchmean times T**2
    reused = np.ones_like(student)

    def forward():
        distill.forward(student, teacher, TEMPERATURE, "kl", 0.5)

    def into(out):
        distill.forward(student, teacher, TEMPERATURE, "kl", 0.5, grad_coef=coef, grad_out=out)

    def fault_in():
        # One write per 4 KiB page: what a fresh array costs before anything is computed.
        np.empty_like(student).reshape(-1)[::1024] = 0

    x, target = lucid.from_numpy(student), lucid.from_numpy(teacher)

    def elementwise():
        # Reads both inputs and writes a fresh input-sized output, nothing more:
        # the yardstick for what the fresh gradient alone costs.
        kl_div(x, target, reduction="none", log_target=True)

    parts = {"forward alone": forward,
             "forward + gradient, reused array": lambda: into(reused),
             "forward + gradient, fresh array": lambda: into(np.empty_like(student)),
             "fault in a fresh array (1 thread)": fault_in,
             "kl_div, reduction=\"none\" (fresh output)": elementwise}
    print(f"{machine(args.threads)['cpu']}, {args.threads} threads, float32 {shape}, "
          f"T = {TEMPERATURE}, medians of {args.repetitions} runs")
    print(f"{'part':40} {'ms':>8} {'probe ms':>9} {'paired /probe':>14}")
    results = {"machine": machine(args.threads), "shape": list(shape), "parts": []}
    for name, function in parts.items():
        medians, samples = time_interleaved({"probe": probe(student, teacher), name: function},
                                            args.repetitions)
        paired = statistics.median(a / b for a, b in zip(samples[name], samples["probe"]))
        results["parts"].append({"part": name, "seconds": medians[name],
                                 "probe_seconds": medians["probe"], "paired_ratio": paired})
        print(f"{name:40} {medians[name] * 1e3:8.1f} {medians['probe'] * 1e3:9.1f} "
              f"{paired:14.2f}", flush=True)
    return results


def run(args):
    shape = (args.rows, args.cols)
    set_threads(args.threads)
    student, teacher = make_logits(shape)
    results = {"machine": machine(args.threads), "shape": list(shape),
               "repetitions": args.repetitions, "gradient_cache": not args.no_cache,
               "cases": []}
    print(f"{results['machine']['cpu']}, {args.threads} threads, float32 {shape}, "
          f"T = {TEMPERATURE}, medians of {args.repetitions} runs, gradient cache "
          f"{'off' if args.no_cache else 'on'}")
    print(f"{'case':40} {'lucid ms':>10} {'torch ms':>10} {'probe ms':>10} "
          f"{'lucid/probe':>12} {'torch/lucid':>12} {'best lucid/probe':>17} "
          f"{'paired lucid/probe':>19}")
    for divergence in ("kl", "reverse_kl", "jsd"):
        steps, _ = step_functions(student, teacher, divergence)
        # The probe runs just before lucid's step in every round (paired ratios).
        medians, samples = time_interleaved(
            {"read both inputs": probe(student, teacher), "lucid": steps.pop("lucid")},
            args.repetitions)
        if steps:
            # The reference framework's script in rounds of its own (see the docstring).
            more_medians, more_samples = time_interleaved(steps, args.repetitions)
            medians.update(more_medians)
            samples.update(more_samples)
        # On a shared machine the fastest runs are the least disturbed ones.
        best = {name: min(times) for name, times in samples.items()}
        paired = statistics.median(step / probe_time for step, probe_time in
                                   zip(samples["lucid"], samples["read both inputs"]))
        case = {"case": f"forward+backward (student), {divergence}", "threads": args.threads,
                "seconds": medians, "best_seconds": best, "paired_ratio": paired,
                "samples": samples}
        results["cases"].append(case)
        print_case(case)
    results["peak_bytes_beyond_gradient"] = peak_beyond_gradient(student, teacher)
    print(f"peak memory beyond the gradient: {results['peak_bytes_beyond_gradient'] / MiB:.3f} MiB")
    return results


def print_case(case):
    s = case["seconds"]

    def ms(name):
        return f"{s[name] * 1e3:10.1f}" if name in s else f"{'-':>10}"

    def ratio(a, b):
        return f"{s[a] / s[b]:12.2f}" if a in s and b in s else f"{'-':>12}"

    best = case["best_seconds"]
    print(f"{case['case']:40} {ms('lucid')} {ms('torch')} {ms('read both inputs')} "
          f"{ratio('lucid', 'read both inputs')} {ratio('torch', 'lucid')} "
          f"{best['lucid'] / best['read both inputs']:17.2f} {case['paired_ratio']:19.2f}",
          flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=32000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="a (64, 1000) input and 2 repetitions: checks the script, not the speed")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--no-cache", action="store_true",
                        help="turn the gradient buffer cache off: every gradient in fresh memory")
    parser.add_argument("--breakdown", action="store_true",
                        help="time the parts of the \"kl\" step instead (see the docstring)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.cols, args.repetitions = 64, 1000, 2
    old_limit = lucid.set_cache_limit(0) if args.no_cache else None
    try:
        results = breakdown(args) if args.breakdown else run(args)
    finally:
        if old_limit is not None:
            lucid.set_cache_limit(old_limit)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
