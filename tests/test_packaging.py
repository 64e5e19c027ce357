"""Packaging: pyproject.toml declares dependency ranges and a console script per stage script;
the thesis's script names at the root are thin entry points into the same code."""
import importlib
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import load_file

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ROOT_SCRIPTS = sorted([*ROOT.glob("*.py"), ROOT / "src" / "run_das.py", *ROOT.glob("mlp/*.py")])


def _pins() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line)


def test_dependencies_are_ranges_that_admit_the_pinned_versions():
    from packaging.requirements import Requirement

    pins = _pins()
    for spec in PROJECT["dependencies"]:
        req = Requirement(spec)
        assert not any(s.operator == "==" for s in req.specifier), f"{spec}: a pin, not a range"
        assert req.name in pins, f"{req.name} has no pin in requirements.txt"
        assert req.specifier.contains(pins[req.name]), f"{spec} excludes the pin {pins[req.name]}"
    names = {Requirement(s).name for s in PROJECT["dependencies"]}
    assert set(pins) - names <= {"pytest"}, "a pinned library is missing from pyproject"


@pytest.mark.parametrize("script", ROOT_SCRIPTS, ids=lambda p: p.name)
def test_each_root_script_is_a_console_script_running_the_same_main(script):
    target = PROJECT["scripts"][script.stem]
    module_name, function = target.split(":")
    module = importlib.import_module(module_name)
    shim = load_file(str(script.relative_to(ROOT)))
    assert shim.main is getattr(module, function) and shim.parse_args is module.parse_args
    assert len(script.read_text().splitlines()) < 15          # a thin entry point, no logic


def test_every_console_script_has_its_root_script():
    assert set(PROJECT["scripts"]) == {p.stem for p in ROOT_SCRIPTS}


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_gives_a_working_package():
    """.ci/check_install: a few minutes (a fresh venv, every dependency from pip's cache)."""
    out = subprocess.run([str(ROOT / ".ci" / "check_install")], capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
