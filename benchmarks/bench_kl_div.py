"""Time lucid's kl_div against the reference framework and a numpy formula.

One process, the same thread count for every library, several repetitions
with the libraries interleaved (so that a noisy neighbour slows all of them
alike), medians and ratios per case. A bandwidth probe that only reads both
inputs gives the machine's limit, so lucid's times also read as a fraction of
what any kernel could do.

    python benchmarks/bench_kl_div.py                  # the table
    python benchmarks/bench_kl_div.py --json out.json  # and the figures for machines
    python benchmarks/bench_kl_div.py --chart out.png  # and a chart (needs matplotlib)

The reference framework (PyTorch) is used when it is importable; matplotlib
comes with the ``bench`` extra (``pip install -e ".[bench]"``).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

import lucid
from lucid._ext import _probes, _simd
from lucid.nn.functional import kl_div

try:
    import torch
    import torch.nn.functional as torch_functional
except ImportError:  # the comparison is optional
    torch = None


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def make_inputs(shape, dtype, seed=0):
    """log q and p of random softmax distributions over the last axis."""
    rng = np.random.default_rng(seed)
    x = log_softmax(rng.standard_normal(shape, dtype=np.float32)).astype(dtype)
    p = np.exp(log_softmax(rng.standard_normal(shape, dtype=np.float32))).astype(dtype)
    return x, p


def set_threads(n):
    lucid.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def at_thread_count(n, function):
    """``function`` run with ``n`` threads for every library."""
    def run_with_n_threads():
        set_threads(n)
        return function()
    return run_with_n_threads


def time_interleaved(functions, repetitions, calls=1):
    """Median seconds per call of each function, the functions taking turns."""
    for function in functions.values():  # warm-up: page faults, caches, lazy imports
        function()
    samples = {name: [] for name in functions}
    for _ in range(repetitions):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                function()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(times) for name, times in samples.items()}, samples


def forward_case(x, t, reduction, log_target):
    """lucid, torch and numpy forward passes over the same arrays."""
    xl, tl = lucid.from_numpy(x), lucid.from_numpy(t)
    functions = {"lucid": lambda: kl_div(xl, tl, reduction=reduction, log_target=log_target)}
    if torch is not None:
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        functions["torch"] = lambda: torch_functional.kl_div(
            xt, tt, reduction=reduction, log_target=log_target)

    def numpy_formula():
        losses = np.exp(t) * (t - x) if log_target else t * (np.log(t) - x)
        if reduction == "none":
            return losses
        total = losses.sum()
        return total / {"sum": 1, "mean": losses.size, "batchmean": len(losses)}[reduction]

    functions["numpy"] = numpy_formula
    return functions


def dim_case(x, t, validate):
    """lucid's per-distribution batchmean against its baseline, in the same turns.

    The "batchmean" column (where torch would be) is the baseline the target
    is measured against: today's batchmean for ``dim=-1``, ``dim=-1`` without
    validation for ``validate=True``. Every row of the inputs is a distribution.
    """
    xl, tl = lucid.from_numpy(x), lucid.from_numpy(t)
    functions = {"lucid": lambda: kl_div(xl, tl, reduction="batchmean", dim=-1, validate=validate)}
    if validate:
        functions["baseline"] = lambda: kl_div(xl, tl, reduction="batchmean", dim=-1)
    else:
        functions["baseline"] = lambda: kl_div(xl, tl, reduction="batchmean")
    return functions


def backward_case(x, t):
    """Forward and backward w.r.t. x through each library's tensor API."""
    xl = lucid.tensor(x, requires_grad=True)
    tl = lucid.from_numpy(t)

    def lucid_step():
        xl.grad = None
        kl_div(xl, tl, reduction="batchmean").backward()

    functions = {"lucid": lucid_step}
    if torch is not None:
        xt = torch.tensor(x, requires_grad=True)
        tt = torch.from_numpy(t)

        def torch_step():
            xt.grad = None
            torch_functional.kl_div(xt, tt, reduction="batchmean").backward()

        functions["torch"] = torch_step

    def numpy_step():  # the loss and its gradient -p / B, as a numpy user writes them
        return (t * (np.log(t) - x)).sum() / len(x), -t / len(x)

    functions["numpy"] = numpy_step
    return functions


def probe(x, t):
    """Seconds to read both inputs once (the bandwidth probe), median of the repetitions."""
    a, b = x.reshape(-1), t.reshape(-1)
    return lambda: _probes.read_both_sum(a, b)


def run(args):
    shape = (args.rows, args.cols)
    results = {"machine": machine(args.threads), "shape": list(shape),
               "repetitions": args.repetitions, "cases": []}

    def record(name, functions, repetitions=args.repetitions, calls=1, probe_function=None,
               threads=args.threads):
        if args.only and args.only not in name:
            return None
        set_threads(threads)
        if probe_function is not None:
            functions = {**functions, "read both inputs": probe_function}
        medians, samples = time_interleaved(functions, repetitions, calls)
        case = {"case": name, "threads": threads, "seconds": medians, "samples": samples}
        results["cases"].append(case)
        print_case(case)
        return case

    def record_thread_counts(functions, probe_function, counts=(1, 2)):
        """One case per thread count, timed in turns with each other (a noisy
        spell then slows both counts alike, not just one of them)."""
        names = [f"forward batchmean, {n} thread{'s' * (n > 1)}" for n in counts]
        if args.only and not any(args.only in name for name in names):
            return
        functions = {**functions, "read both inputs": probe_function}
        turns = {(n, library): at_thread_count(n, function)
                 for n in counts for library, function in functions.items()}
        medians, samples = time_interleaved(turns, args.repetitions)
        for n, name in zip(counts, names):
            case = {"case": name, "threads": n,
                    "seconds": {library: medians[(n, library)] for library in functions},
                    "samples": {library: samples[(n, library)] for library in functions}}
            results["cases"].append(case)
            print_case(case)
        set_threads(args.threads)

    print(describe(results))
    print(f"{'case':44} {'lucid':>10} {'torch':>10} {'numpy':>10} {'probe':>10} "
          f"{'torch/lucid':>12} {'numpy/lucid':>12} {'lucid/probe':>12}")
    x, p = make_inputs(shape, np.float32)
    read32 = probe(x, p)
    for reduction in ("sum", "mean", "batchmean"):
        record(f"forward {reduction}", forward_case(x, p, reduction, False), probe_function=read32)
    record("forward none", forward_case(x, p, "none", False), probe_function=read32)
    log_p = np.log(p)
    record("forward batchmean, log_target=True", forward_case(x, log_p, "batchmean", True),
           probe_function=read32)
    del log_p
    # Per distribution (issue 14): the same speed as batchmean, and validate
    # (sums of p and exp(x) in the same pass) within 20% of that.
    record("forward batchmean, dim=-1 (vs batchmean)", dim_case(x, p, False),
           probe_function=read32)
    record("forward batchmean, dim=-1, validate (vs dim)", dim_case(x, p, True),
           probe_function=read32)
    record("forward+backward (x) batchmean", backward_case(x, p))
    record_thread_counts(forward_case(x, p, "batchmean", False), read32)
    del x, p
    x64, p64 = make_inputs(shape, np.float64)
    record("forward batchmean, float64", forward_case(x64, p64, "batchmean", False),
           probe_function=probe(x64, p64))
    del x64, p64
    small_x, small_p = make_inputs((64, 1000), np.float32)
    record("small (64, 1000) forward batchmean", forward_case(small_x, small_p, "batchmean", False),
           calls=200)
    record("small (64, 1000) forward+backward", backward_case(small_x, small_p), calls=100)
    # In cache and on one thread the kernels are limited by arithmetic, not by
    # memory: this is where the SIMD levels differ.
    cached_x, cached_p = make_inputs((16, 16384), np.float32)
    best = _simd.simd_level()
    for level in _simd.SIMD_LEVELS[: _simd.SIMD_LEVELS.index(_simd.cpu_simd_level()) + 1]:
        _simd._set_simd_level(level)
        record(f"in cache (16, 16384), 1 thread, SIMD {level}",
               forward_case(cached_x, cached_p, "sum", False), calls=20, threads=1,
               probe_function=probe(cached_x, cached_p))
    _simd._set_simd_level(best)
    return results


def machine(threads):
    """What the figures were measured on."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = lucid.config()
    return {"cpu": model, "cpus": os.cpu_count(), "threads": threads, "simd": info["simd"],
            "lucid": info["version"], "numpy": np.__version__, "python": info["python"],
            "torch": torch.__version__ if torch is not None else None}


def describe(results):
    m = results["machine"]
    return (f"{m['cpu']}, {m['cpus']} CPUs, {m['threads']} threads, lucid {m['lucid']} "
            f"(SIMD {m['simd']}), numpy {m['numpy']}, torch {m['torch']}; float32 "
            f"{tuple(results['shape'])} unless said; medians of {results['repetitions']} runs")


def print_case(case):
    s = case["seconds"]

    def ms(name):
        return f"{s[name] * 1e3:10.3f}" if name in s else f"{'-':>10}"

    def ratio(a, b):
        return f"{s[a] / s[b]:12.2f}" if a in s and b in s else f"{'-':>12}"

    print(f"{case['case']:44} {ms('lucid')} {ms('torch')} {ms('numpy')} "
          f"{ms('read both inputs')} {ratio('torch', 'lucid')} {ratio('numpy', 'lucid')} "
          f"{ratio('lucid', 'read both inputs')}", flush=True)
    if "baseline" in s:
        print(f"{'':4}baseline {ms('baseline')} ms, lucid/baseline {ratio('lucid', 'baseline')}",
              flush=True)


def chart(results, path):
    """Bars of milliseconds per case and library, on a log scale."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("--chart needs matplotlib: pip install -e '.[bench]'")
    names = ["lucid", "torch", "numpy", "read both inputs"]
    colours = {"lucid": "#2a7ab0", "torch": "#e07b39", "numpy": "#8c8c8c",
               "read both inputs": "#4daf4a"}
    cases = results["cases"]
    fig, ax = plt.subplots(figsize=(11, 6.5))
    width = 0.2
    for k, name in enumerate(names):
        heights = [case["seconds"].get(name, np.nan) * 1e3 for case in cases]
        ax.barh([i + (k - 1.5) * width for i in range(len(cases))], heights, width,
                label=name, color=colours[name])
    ax.set_yticks(range(len(cases)))
    ax.set_yticklabels([case["case"] for case in cases])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per call (median, log scale; lower is faster)")
    ax.set_title(describe(results), fontsize=8, wrap=True)
    ax.legend(loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--cols", type=int, default=32000)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for every library (default: all CPUs)")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--only", metavar="TEXT", help="run only the cases whose name has TEXT")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--chart", metavar="PATH", help="also draw a PNG chart (matplotlib)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # The reference framework warns on every reduction="mean" call that
        # its meaning will change; that is its own affair, not a figure here.
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides", category=UserWarning)
        results = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.chart:
        chart(results, args.chart)


if __name__ == "__main__":
    main()
