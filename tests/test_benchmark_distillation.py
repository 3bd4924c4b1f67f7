"""benchmarks/bench_distillation.py runs and reports every case issue 14 asks for.

The figures are machine-dependent and not asserted; the script runs in its
``--quick`` mode so that a change that breaks it is caught by the test suite.
"""
import importlib.util
import json
import pathlib

import pytest

import lucid

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_distillation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_distillation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_measures_every_case(bench, tmp_path, capsys):
    threads = lucid.get_num_threads()
    out = tmp_path / "figures.json"
    try:
        bench.main(["--quick", "--json", str(out)])
    finally:
        lucid.set_num_threads(threads)
    figures = json.loads(out.read_text())
    assert figures["shape"] == [64, 1000]
    assert figures["gradient_cache"] is True
    names = [case["case"] for case in figures["cases"]]
    assert names == [f"forward+backward (student), {d}" for d in ("kl", "reverse_kl", "jsd")]
    for case in figures["cases"]:
        assert case["seconds"]["lucid"] > 0 and case["seconds"]["read both inputs"] > 0
        assert case["best_seconds"]["lucid"] <= case["seconds"]["lucid"]
        ratios = [a / b for a, b in zip(case["samples"]["lucid"],
                                        case["samples"]["read both inputs"])]
        assert min(ratios) <= case["paired_ratio"] <= max(ratios)
        assert len(case["samples"]["lucid"]) == 2
    # Row buffers and per-row constants only: far below a mebibyte here.
    assert 0 <= figures["peak_bytes_beyond_gradient"] < 1 << 20
    printed = capsys.readouterr().out
    assert "lucid/probe" in printed and "peak memory beyond the gradient" in printed


def test_no_cache_turns_the_cache_off_for_the_run_only(bench, tmp_path, monkeypatch):
    threads = lucid.get_num_threads()
    limits = []
    real_run = bench.run

    def run(args):
        limits.append(lucid.cache_info().limit)
        return real_run(args)

    monkeypatch.setattr(bench, "run", run)
    before = lucid.cache_info().limit
    out = tmp_path / "figures.json"
    try:
        bench.main(["--quick", "--no-cache", "--json", str(out)])
    finally:
        lucid.set_num_threads(threads)
    assert limits == [0]
    assert lucid.cache_info().limit == before
    assert json.loads(out.read_text())["gradient_cache"] is False


def test_breakdown_times_every_part(bench, tmp_path, capsys):
    threads = lucid.get_num_threads()
    out = tmp_path / "parts.json"
    try:
        bench.main(["--quick", "--breakdown", "--json", str(out)])
    finally:
        lucid.set_num_threads(threads)
    figures = json.loads(out.read_text())
    names = [part["part"] for part in figures["parts"]]
    assert names == ["forward alone", "forward + gradient, reused array",
                     "forward + gradient, fresh array", "fault in a fresh array (1 thread)",
                     'kl_div, reduction="none" (fresh output)']
    for part in figures["parts"]:
        assert part["seconds"] > 0 and part["probe_seconds"] > 0 and part["paired_ratio"] > 0
    assert "paired /probe" in capsys.readouterr().out
