"""Time the per-distribution (row) kernel against the memory limit, the reference
framework and JAX, for every target of the performance issue.

One process, the libraries taking turns within each case, medians and ratios:

- float32 logits with a temperature, both sides: lucid, the read-both-inputs
  probe, the reference framework's chunked script (``log_softmax`` twice,
  ``kl_div(log_target=True)``, ``sum(-1)``) and JAX ``jit`` of the same formula
  when JAX is importable (XLA fuses it);
- log-probabilities; labels and top-1 on top of the KL; three students
  against one teacher; 1 and 2 threads; a vocabulary sweep at a fixed number
  of bytes per input.

    python benchmarks/bench_per_row.py                 # the full sizes (~1 GB per input)
    python benchmarks/bench_per_row.py --quick         # small sizes, a minute
    python benchmarks/bench_per_row.py --json out.json --chart out.png
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kl_div import at_thread_count, machine, set_threads, time_interleaved  # noqa: E402

import lucid  # noqa: E402
from lucid._ext import _probes  # noqa: E402
from lucid.metrics import compare_rows, kl_div_per_row  # noqa: E402

try:
    import torch
except ImportError:  # the comparison is optional
    torch = None

TEMPERATURE = 2.0
# What the issue asks of each ratio: (numerator, denominator, at most / at least, bound).
TARGETS = {
    "logits": [("lucid", "probe", "<=", 2.0), ("jax", "lucid", ">=", 2.0)],
    "log-probs": [("lucid", "probe", "<=", 1.5)],
    "labels and top-1": [("lucid + labels + top-1", "lucid", "<=", 1.1)],
    "3 students": [("lucid, 3 students", "lucid, 1 student", "<=", 2.5)],
    "threads": [("1 thread", "2 threads", ">=", 1.8)],
    "vocabulary": [("lucid", "probe", "<=", 2.5)],
}


def logits_pair(shape, seed=0):
    """Teacher logits and a student's close to them, float32, scale 3 (LLM-like spread)."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal(shape, dtype=np.float32)
    teacher *= 3
    student = rng.standard_normal(shape, dtype=np.float32)
    student += teacher
    return student, teacher


def log_softmax_in_place(a, chunk=256):
    for start in range(0, a.shape[0], chunk):
        rows = a[start:start + chunk]
        rows -= rows.max(axis=1, keepdims=True)
        rows -= np.log(np.exp(rows).sum(axis=1, keepdims=True))
    return a


def probe(student, teacher):
    a, b = student.reshape(-1), teacher.reshape(-1)
    return lambda: _probes.read_both_sum(a, b)


def torch_chunked(student, teacher, chunk=256):
    """The reference framework's script: chunks of rows, so temporaries stay small."""
    s, t = torch.from_numpy(student), torch.from_numpy(teacher)
    out = torch.empty(s.shape[0], dtype=torch.float32)

    def run():
        for start in range(0, s.shape[0], chunk):
            log_q = torch.log_softmax(s[start:start + chunk] / TEMPERATURE, dim=-1)
            log_p = torch.log_softmax(t[start:start + chunk] / TEMPERATURE, dim=-1)
            out[start:start + chunk] = torch.nn.functional.kl_div(
                log_q, log_p, reduction="none", log_target=True).sum(-1)
        return out
    return run


def import_jax():
    """JAX, or None when it is not installed. Imported only when asked for:
    once imported, JAX's threads make every later os.fork() in the process warn."""
    try:
        import jax
    except ImportError:  # the comparison is optional
        return None
    return jax


def jax_jit(jax, student, teacher):
    jnp = jax.numpy

    @jax.jit
    def per_row(s, t):
        log_q = jax.nn.log_softmax(s / TEMPERATURE, axis=-1)
        log_p = jax.nn.log_softmax(t / TEMPERATURE, axis=-1)
        return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)
    s, t = jnp.asarray(student), jnp.asarray(teacher)
    return lambda: per_row(s, t).block_until_ready()


class Recorder:
    def __init__(self, args):
        self.args = args
        self.cases = []

    def __call__(self, name, group, functions, **extra):
        medians, samples = time_interleaved(functions, self.args.repetitions)
        case = {"case": name, "group": group, "seconds": medians, "samples": samples, **extra}
        self.cases.append(case)
        print_case(case)
        return case


def run_logits(record, shape, threads, jax):
    student, teacher = logits_pair(shape)
    functions = {"lucid": lambda: kl_div_per_row(student, teacher, temperature=TEMPERATURE),
                 "probe": probe(student, teacher)}
    if torch is not None:
        functions["torch chunked"] = torch_chunked(student, teacher)
    if jax is not None:
        functions["jax"] = jax_jit(jax, student, teacher)
    record(f"logits T={TEMPERATURE:g} {shape}", "logits", functions)
    labels = np.random.default_rng(1).integers(0, shape[1], shape[0])
    record(f"labels and top-1 {shape}", "labels and top-1", {
        "lucid": functions["lucid"],
        "lucid + labels + top-1": lambda: compare_rows(student, teacher, temperature=TEMPERATURE,
                                                       labels=labels)})
    turns = {}
    for n, name in ((1, "1 thread"), (2, "2 threads")):
        turns[name] = at_thread_count(n, functions["lucid"])
        turns[f"probe, {name}"] = at_thread_count(n, functions["probe"])
    record(f"threads {shape}", "threads", turns)
    set_threads(threads)
    del functions, turns
    log_softmax_in_place(student)
    log_softmax_in_place(teacher)
    record(f"log-probs {shape}", "log-probs", {
        "lucid": lambda: kl_div_per_row(student, teacher, student_kind="log-probs",
                                        teacher_kind="log-probs"),
        "probe": probe(student, teacher)})


def run_students(record, shape):
    student, teacher = logits_pair(shape)
    others = [logits_pair(shape, seed)[0] for seed in (2, 3)]
    record(f"3 students {shape}", "3 students", {
        "lucid, 1 student": lambda: compare_rows(student, teacher, temperature=TEMPERATURE),
        "lucid, 3 students": lambda: compare_rows([student, *others], teacher,
                                                  temperature=TEMPERATURE)})


def run_vocabulary(record, bytes_per_input, vocabularies):
    for classes in vocabularies:
        rows = max(1, bytes_per_input // (4 * classes))
        student, teacher = logits_pair((rows, classes))
        record(f"vocabulary {classes} ({rows} rows)", "vocabulary", {
            "lucid": lambda: kl_div_per_row(student, teacher, temperature=TEMPERATURE),
            "probe": probe(student, teacher)})
        del student, teacher


def ratio_lines(cases):
    """Every target ratio with its bound, one line each."""
    lines = []
    for case in cases:
        for numerator, denominator, relation, bound in TARGETS[case["group"]]:
            s = case["seconds"]
            if numerator in s and denominator in s:
                value = s[numerator] / s[denominator]
                met = value <= bound if relation == "<=" else value >= bound
                lines.append(f"{case['case']}: {numerator} / {denominator} = {value:.2f} "
                             f"(target {relation} {bound:g}: {'met' if met else 'NOT met'})")
    return lines


def print_case(case):
    cells = "  ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in case["seconds"].items())
    print(f"{case['case']:40} {cells}", flush=True)


def chart(results, path):
    """Ratios to each case's reference time (probe or one pair), as bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels, values = [], []
    for line in ratio_lines(results["cases"]):
        name, rest = line.split(": ", 1)
        labels.append(f"{name}: {rest.split(' = ')[0]}")
        values.append(float(rest.split(" = ")[1].split()[0]))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(values) + 1.5))
    ax.barh(range(len(values)), values, color="#2a7ab0")
    ax.set_yticks(range(len(values)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio (medians)")
    m = results["machine"]
    ax.set_title(f"{m['cpu']}, {m['threads']} threads, SIMD {m['simd']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=32000)
    parser.add_argument("--sweep-bytes", type=int, default=2**30,
                        help="bytes per input in the vocabulary sweep (default 1 GiB)")
    parser.add_argument("--vocabularies", type=int, nargs="+",
                        default=[1000, 32000, 128000, 256000])
    parser.add_argument("--quick", action="store_true",
                        help="512 rows and 64 MiB per input in the sweep")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--no-jax", action="store_true", help="skip JAX even if installed")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--chart", metavar="PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.sweep_bytes = min(args.rows, 512), min(args.sweep_bytes, 2**26)
    set_threads(args.threads)
    jax = None if args.no_jax else import_jax()
    results = {"machine": machine(args.threads), "jax": jax.__version__ if jax else None,
               "repetitions": args.repetitions}
    m = results["machine"]
    print(f"{m['cpu']}, {m['cpus']} CPUs, {args.threads} threads, lucid {m['lucid']} "
          f"(SIMD {m['simd']}), torch {m['torch']}, jax {results['jax']}; float32; "
          f"medians of {args.repetitions} runs")
    record = Recorder(args)
    shape = (args.rows, args.cols)
    run_logits(record, shape, args.threads, jax)
    run_students(record, shape)
    run_vocabulary(record, args.sweep_bytes, args.vocabularies)
    results["cases"] = record.cases
    results["targets"] = ratio_lines(record.cases)
    print("\n".join(results["targets"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.chart:
        chart(results, args.chart)
    return results


if __name__ == "__main__":
    main()
