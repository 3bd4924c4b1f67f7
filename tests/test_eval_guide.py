"""The evaluation guide's shell sessions run as shown, and the demo set is what its script makes."""
import doctest
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guides" / "evaluation.rst"
DEMO = ROOT / "lucid" / "eval" / "data" / "demo.npz"


def console_sessions(text):
    """Each ``.. code-block:: console`` block as a list of (command, expected output)."""
    sessions = []
    for block in re.finditer(r"^\.\. code-block:: console\n\n((?:   .*\n|\n)+)", text, re.M):
        lines = [line[3:] for line in block.group(1).rstrip("\n").split("\n")]
        steps = []
        for line in lines:
            if line.startswith("$ "):
                steps.append([line[2:], []])
            else:
                steps[-1][1].append(line)
        sessions.append([(command, "\n".join(out).strip("\n") + "\n") for command, out in steps])
    return sessions


SESSIONS = console_sessions(GUIDE.read_text())


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    """A folder holding a copy of the demo set, and ``lucid-eval`` and ``python`` that run
    this tree's lucid."""
    folder = tmp_path_factory.mktemp("guide")
    shutil.copy(DEMO, folder / "demo.npz")
    # What the guide's first session on files writes, so each session also runs alone.
    with np.load(DEMO) as demo:
        for name in demo.files:
            np.save(folder / f"{name}.npy", demo[name])
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    for name, tail in [("lucid-eval", ' -m lucid.eval "$@"'), ("python", ' "$@"')]:
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}"{tail}\n')
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return folder, env


def test_the_guide_shows_sessions():
    commands = [command for session in SESSIONS for command, _ in session]
    assert "lucid-eval --demo" in commands and len(SESSIONS) >= 4


@pytest.mark.parametrize("session", SESSIONS, ids=[s[-1][0][:40] for s in SESSIONS])
def test_each_session_prints_what_the_guide_shows(shell, session):
    if any("--plot" in command for command, _ in session):
        pytest.importorskip("matplotlib", reason="--plot needs the plot extra")
    folder, env = shell
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for command, expected in session:
        done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        got = done.stdout
        assert checker.check_output(expected, got, flags), (
            f"$ {command}\n--- the guide shows ---\n{expected}--- it printed ---\n{got}")


def test_demo_set_is_what_the_script_makes_and_small():
    spec = importlib.util.spec_from_file_location("make_demo_data",
                                                  ROOT / "scripts" / "make_demo_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    teacher, student, labels, weak_student = script.demo_arrays()
    with np.load(DEMO) as shipped:
        assert sorted(shipped.files) == ["labels", "student", "teacher", "weak_student"]
        for name, array in [("teacher", teacher), ("student", student), ("labels", labels),
                            ("weak_student", weak_student)]:
            np.testing.assert_array_equal(shipped[name], array)
    assert DEMO.stat().st_size < 2 * 10**6
    assert (labels == -100).sum() == 24 and labels.dtype == np.int64
