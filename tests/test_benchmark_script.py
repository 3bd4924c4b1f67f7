"""benchmarks/bench_kl_div.py runs and reports every case docs/performance.rst tabulates.

The figures themselves are machine-dependent and are not asserted here; this
runs the script on tiny inputs so that a change to lucid or to the script
that breaks it is caught by the test suite, not at the next measurement.
"""
import importlib.util
import json
import pathlib

import pytest

import lucid
from lucid._ext import _simd

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kl_div.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_kl_div", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_threads():
    threads, level = lucid.get_num_threads(), _simd.simd_level()
    yield
    lucid.set_num_threads(threads)
    _simd._set_simd_level(level)


def test_every_case_is_measured(bench, tmp_path, restore_threads, capsys):
    out = tmp_path / "figures.json"
    bench.main(["--rows", "16", "--cols", "256", "--threads", "2", "--repetitions", "2",
                "--json", str(out)])
    figures = json.loads(out.read_text())
    cases = {case["case"]: case for case in figures["cases"]}
    expected = ["forward sum", "forward mean", "forward batchmean", "forward none",
                "forward batchmean, log_target=True", "forward batchmean, dim=-1 (vs batchmean)",
                "forward batchmean, dim=-1, validate (vs dim)", "forward+backward (x) batchmean",
                "forward batchmean, 1 thread", "forward batchmean, 2 threads",
                "forward batchmean, float64", "small (64, 1000) forward batchmean",
                "small (64, 1000) forward+backward"]
    levels = _simd.SIMD_LEVELS[: _simd.SIMD_LEVELS.index(_simd.cpu_simd_level()) + 1]
    expected += [f"in cache (16, 16384), 1 thread, SIMD {level}" for level in levels]
    assert list(cases) == expected
    for name, case in cases.items():
        assert case["seconds"]["lucid"] > 0, name
        assert len(case["samples"]["lucid"]) == 2, name
        if name.startswith("forward") and "backward" not in name:
            assert case["seconds"]["read both inputs"] > 0, name
    for name in ("forward batchmean, dim=-1 (vs batchmean)",
                 "forward batchmean, dim=-1, validate (vs dim)"):
        assert cases[name]["seconds"]["baseline"] > 0
    assert cases["forward batchmean, 1 thread"]["threads"] == 1
    assert cases["forward batchmean, 2 threads"]["threads"] == 2
    printed = capsys.readouterr().out
    assert "torch/lucid" in printed and "lucid/probe" in printed


def test_only_selects_cases(bench, tmp_path, restore_threads):
    out = tmp_path / "figures.json"
    bench.main(["--rows", "8", "--cols", "64", "--repetitions", "1", "--only", "thread",
                "--json", str(out)])
    names = [case["case"] for case in json.loads(out.read_text())["cases"]]
    assert names[:2] == ["forward batchmean, 1 thread", "forward batchmean, 2 threads"]
    assert all("thread" in name for name in names)
