"""Quiet logs: progress bars log a line every few seconds when stderr is not a terminal,
pyvene's import notice is filtered, and the graph bar counts the bases it evaluates."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tqdm import std

from dasgraph import progress


class Clock:
    """A fake clock for tqdm: each call to ``tick`` moves it on by ``step`` seconds."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def tick(self, step: float):
        self.now += step


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(std, "time", c)
    return c


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="dasgraph.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "dasgraph.progress"]


def test_not_a_terminal_one_line_per_interval_and_a_last_one(clock, lines):
    bar = progress.progress_bar(total=100, desc="DAS cells", unit="cell", interval=10)
    assert isinstance(bar, progress.LoggedBar)          # pytest's stderr is not a terminal
    for _ in range(100):                                 # one cell a second: 100 s
        clock.tick(1.0)
        bar.update()
        bar.set_postfix(cell="XY")                       # no extra line for a new postfix
    bar.close()
    logged = lines()
    # a line at 10 s, 20 s, ..., 100 s, then the closing line (the last may coincide)
    assert 10 <= len(logged) <= 11, logged
    assert all("\r" not in line and "/100" in line for line in logged)
    assert logged[0].startswith("DAS cells:") and " 10/100" in logged[0]
    assert "100/100" in logged[-1] and "cell=XY" in logged[-1]


def test_a_short_bar_logs_its_end_once_and_a_short_inner_bar_nothing(clock, lines):
    for _ in progress.progress_bar(range(5), desc="trees", interval=10):
        clock.tick(1.0)
    for _ in progress.progress_bar(range(5), desc="inner", leave=False, interval=10):
        clock.tick(1.0)
    assert len(lines()) == 1 and lines()[0].startswith("trees: 100%") and "5/5" in lines()[0]


def test_a_disabled_bar_logs_nothing(clock, lines):
    for _ in progress.progress_bar(range(50), desc="off", disable=True, interval=1):
        clock.tick(5.0)
    assert lines() == []


def test_a_terminal_gets_tqdms_own_bar(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress.progress_bar(range(3), desc="x")
    assert not isinstance(bar, progress.LoggedBar) and isinstance(bar, std.tqdm)
    list(bar)
    assert "\r" in sys.stderr.getvalue()
    assert not progress.on_terminal(io.StringIO()) and not progress.on_terminal(object())


def test_graph_bar_counts_bases_not_batches(monkeypatch):
    """100 inputs in batches of 81 bases: the bar's total and its count are 100 bases (the
    bar used to scale its batch count by the batch size: 0/162 base)."""
    from dasgraph.analysis import graphs

    seen = []

    def recording_bar(*args, **kwargs):
        bar = progress.LoggedBar(*args, **kwargs)
        seen.append(bar)
        return bar

    monkeypatch.setattr(progress, "progress_bar", recording_bar)

    class Net:
        def logits_from(self, layer, h):
            return h.reshape(h.shape[0], -1)[:, :3]

    n, s, d = 100, 2, 4
    states = torch.randn(n, s, d)
    table = torch.zeros(n, n, dtype=torch.long)
    out = graphs.correctness_matrix(Net(), states, 0, torch.eye(s * d)[:, :2], table,
                                    chunk=81 * n)
    assert out.shape == (n, n)
    [bar] = seen
    assert bar.total == n and bar.n == n and bar.unit == "base"


@pytest.mark.parametrize("quiet", ["setup_logging", "quiet_libraries"])
def test_pyvene_notice_and_transformers_bars_quiet(quiet):
    """What a script's setup_logging does, and each spawned DAS worker (quiet_libraries)."""
    module = "runtime" if quiet == "setup_logging" else "quiet"
    code = (f"from dasgraph import {module}; {module}.{quiet}(); import pyvene; "
            "from transformers.utils import logging as hf; "
            "print('imported', pyvene.IntervenableModel.__name__, hf.is_progress_bar_enabled())")
    env = {**os.environ, "PYTHONPATH": str(Path(progress.__file__).parents[1])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=240, env=env)
    assert run.returncode == 0, run.stderr
    assert "nnsight" not in run.stdout + run.stderr
    assert run.stdout.strip() == "imported IntervenableModel False"
    # without the filter pyvene prints it: the test above can fail
    bare = subprocess.run([sys.executable, "-c", "import pyvene"], capture_output=True,
                          text=True, timeout=240)
    assert "nnsight is not detected" in bare.stdout


def test_nested_bars_write_plain_lines_and_a_finished_bar_its_end_once(clock, lines):
    outer = progress.progress_bar(total=2, desc="IIA graphs", unit="graph", interval=10)
    for _ in range(2):
        inner = progress.progress_bar(total=100, desc="graph layer 2", unit="base",
                                      leave=False, interval=10)
        for _ in range(100):
            clock.tick(0.25)
            inner.update()
        inner.close()
        outer.update()          # 25 s since the outer bar's start: a line with 2/2 at the end
    outer.close()
    logged = lines()
    assert all(line.isprintable() for line in logged), logged       # no cursor escapes
    assert [line for line in logged if line.startswith("IIA graphs")][-1].count("2/2") == 1
    assert sum("2/2" in line for line in logged) == 1               # the end, once
    assert sum(line.startswith("graph layer 2") for line in logged) == 4   # 10 s, 20 s each
