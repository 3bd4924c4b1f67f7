"""The README's quick start: the console script, and a clear error from an unbuilt source tree."""
import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_console_script_runs_the_command_line_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["lucid-eval"].partition(":")
    from lucid.eval import cli
    assert module == "lucid.eval.cli" and getattr(cli, name) is cli.main


def test_readme_quick_start_uses_the_console_script():
    lines = (ROOT / "README.md").read_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if line.startswith("<!-- quickstart-command"))
    command = next(line for line in lines[marker:] if line.startswith("pip install"))
    assert command == "pip install . && lucid-eval --demo"


def test_ci_reads_both_quick_start_commands_from_the_readme():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'readme_command quickstart-command' in ci and 'readme_command test-command' in ci
    assert ci.index("quickstart-command") < ci.index("test-command")


def test_unbuilt_source_tree_raises_an_import_error_that_says_what_to_do(tmp_path):
    # A copy of the package without its compiled modules: what a fresh clone holds.
    shutil.copytree(ROOT / "lucid", tmp_path / "lucid",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    done = subprocess.run([sys.executable, "-c", "import lucid"], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lucid's compiled kernels are missing")
    assert "pip install -e ." in last and "another folder" in last
    assert "ModuleNotFoundError" not in done.stderr


@pytest.mark.parametrize("argv", [["--demo", "--json"]])
def test_python_dash_m_still_runs_from_another_folder(tmp_path, argv):
    done = subprocess.run([sys.executable, "-m", "lucid.eval", *argv], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"rows": 1024' in done.stdout


def test_docs_front_page_shows_the_same_first_command():
    assert "   pip install . && lucid-eval --demo\n" in (ROOT / "docs" / "index.rst").read_text()
