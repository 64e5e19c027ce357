"""make reproduce's up-front check: nothing to do only when the results tree, the code and the
settings are exactly what the last complete run left; any change runs the stages."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dasgraph import freshness, paths

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "results"
    (root / "das" / "XY").mkdir(parents=True)
    (root / "iia.csv").write_text("causal_model,iia\nXY,0.99\n")
    (root / "das" / "XY" / "metrics.json").write_text("{}")
    return root


@pytest.fixture
def repo(tmp_path):
    code = tmp_path / "repo"
    (code / "src" / "dasgraph").mkdir(parents=True)
    (code / "src" / "dasgraph" / "stage.py").write_text("x = 1\n")
    (code / "Makefile").write_text("reproduce:\n")
    return code


def test_a_tree_never_stamped_has_work_to_do(tree, repo):
    assert not freshness.check(tree, "2 21", repo)


def test_nothing_changed_is_nothing_to_do(tree, repo):
    freshness.write(tree, "2 21", repo)
    assert freshness.check(tree, "2 21", repo)
    assert paths.reproduce_stamp(tree).name not in freshness.snapshot(tree)


@pytest.mark.parametrize("change", ["touch", "edit", "add", "remove", "key", "code", "makefile",
                                    "damaged stamp"])
def test_any_change_means_the_stages_run(tree, repo, change):
    freshness.write(tree, "2 21", repo)
    key = "2 21"
    metrics = tree / "das" / "XY" / "metrics.json"
    if change == "touch":          # same bytes, a later modification time (a stage rewrote it)
        stat = metrics.stat()
        os.utime(metrics, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    elif change == "edit":
        metrics.write_text("{} ")
    elif change == "add":          # e.g. a graph made by hand at another layer
        (tree / "graphs").mkdir()
        (tree / "graphs" / "new.npy").write_bytes(b"x")
    elif change == "remove":       # a cell deleted to be trained again
        metrics.unlink()
    elif change == "key":          # another GRAPH_K
        key = "2 42"
    elif change == "code":
        (repo / "src" / "dasgraph" / "stage.py").write_text("x = 2\n")
    elif change == "makefile":
        (repo / "Makefile").write_text("reproduce:\n\ttrue\n")
    else:
        paths.reproduce_stamp(tree).write_text("{not json")
    assert not freshness.check(tree, key, repo)


def test_the_command_line_answers_with_its_exit_code(tree):
    def run(*args):
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        return subprocess.run([sys.executable, "-m", "dasgraph.freshness", *args],
                              capture_output=True, text=True, cwd=REPO, env=env)

    assert run("check", str(tree), "k").returncode == 1
    assert run("write", str(tree), "k").returncode == 0
    done = run("check", str(tree), "k")
    assert done.returncode == 0 and "nothing to do" in done.stdout
    assert run("check", str(tree), "other").returncode == 1
    assert run("verify", str(tree), "k").returncode == 2
    # deciding needs no torch: the check is what a run with nothing to do costs
    code = ("import sys; from dasgraph import freshness; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.stdout.strip() == "False"
