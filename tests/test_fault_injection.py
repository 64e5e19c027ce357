"""Fault injection: every script against damaged artifacts, wrong kinds of path and bad flags.

One tiny finished results folder is built once (module fixture). Each case copies it, breaks
one thing, runs the script's ``main(argv)`` in this process and expects exit code 2 with one
line on stderr and no traceback. Cases are generated: scripts x the artifacts each reads x
kinds of damage; scripts x the folders each writes x wrong kinds of path; every number, list
and device flag of every parser x nan / inf / too large / empty. The last test prints
``N cases, N clean``.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dasgraph import cli, paths, runtime

ROOT = Path(__file__).resolve().parents[1]
SEL = ["--causal_models", "XY,Z", "--layers", "2", "--low_rank_dimensions", "4", "--device", "cpu"]
TRAIN = ["--n_layer", "2", "--n_embd", "16", "--n_head", "2", "--epochs", "3", "--batch_size",
         "100", "--device", "cpu"]
MLP = ["--n_entities", "20", "--n_test_entities", "20", "--mlp_n_training", "2000",
       "--mlp_epochs", "2", "--n_training", "600", "--n_testing", "300", "--epochs", "1",
       "--device", "cpu", "--seed", "3"]


# script -> the flags of a normal re-run on the finished folder (tiny where they compute)
SCRIPTS = {
    "train_gpt2.py": TRAIN,
    "src/run_das.py": SEL + ["--n_training", "256", "--n_testing", "200", "--batch_size", "128",
                             "--workers", "1"],
    "evaluate_das.py": SEL + ["--n_testing", "200"],
    "visualizations.py": ["--experiment", "all"],
    "disentangle_causal_models.py": SEL,
    "analyse_graphs.py": [],
    "classification.py": [],
    "combine_causal_models.py": [],
    "make_report.py": [],
    "reproduce_das_experiment.py": MLP + ["--baseline_sample", "30"],
    "mlp/pattern_matching_das.py": MLP + ["--layers", "0"],
    "mlp/wrong_causal_graph_ablation_study.py": MLP,
}
BUILD_ORDER = ["train_gpt2.py", "src/run_das.py", "evaluate_das.py",
               "disentangle_causal_models.py", "analyse_graphs.py", "classification.py",
               "combine_causal_models.py", "reproduce_das_experiment.py",
               "mlp/pattern_matching_das.py", "mlp/wrong_causal_graph_ablation_study.py"]


def script(name: str):
    """The package module behind the root script ``name``."""
    return importlib.import_module(f"dasgraph.scripts.{Path(name).stem}")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A tiny results folder that every stage has finished (plots aside: nothing reads them)."""
    root = tmp_path_factory.mktemp("finished") / "results"
    for name in BUILD_ORDER:
        assert script(name).main(["--results_path", str(root), *SCRIPTS[name]]) == 0, name
    return root


# --- the artifacts, and who reads them ------------------------------------------------------------
CELL = "das/XY/layer_2/k_4"
GRAPH = "graphs/XY/layer_2_k_4"
MODEL_FILES = ["gpt2/config.json", "gpt2/model.safetensors", "gpt2/tokenizer.json",
               "gpt2/metrics.json"]
CELL_FILES = [f"{CELL}/config.json", f"{CELL}/intkey_layer_1_comp_block_output_unit_pos_nunit_6#0.bin",
              f"{CELL}/metrics.json"]
GPT2_READERS = ["src/run_das.py", "evaluate_das.py", "disentangle_causal_models.py"]
# (file, scripts that read it, extra flags making them read it rather than skip finished work)
READS = [
    *[(f, GPT2_READERS, []) for f in MODEL_FILES],
    ("gpt2/metrics.json", ["make_report.py"], []),
    ("gpt2/config.json", ["make_report.py"], []),
    # visualizations.py: the one experiment that reads the file (``all`` draws for seconds)
    ("gpt2/metrics.json", ["visualizations.py"], ["--experiment", "training"]),
    ("gpt2/config.json", ["visualizations.py"], ["--experiment", "published"]),
    ("iia.csv", ["visualizations.py"], ["--experiment", "empirical"]),
    (f"{GRAPH}.npy", ["visualizations.py"], ["--experiment", "graphs"]),
    (f"{GRAPH}.json", ["visualizations.py"], ["--experiment", "graphs"]),
    ("cliques/RemovalHeuristic/XY_layer_2_k_4.json", ["visualizations.py"], ["--experiment", "cliques"]),
    ("trees/XY_layer_2_k_4.json", ["visualizations.py"], ["--experiment", "trees"]),
    ("combination/layer_2_k_4.csv", ["visualizations.py"], ["--experiment", "combination"]),
    *[(f, ["evaluate_das.py"], []) for f in CELL_FILES],
    *[(f, ["disentangle_causal_models.py"], ["--overwrite"]) for f in CELL_FILES],
    (f"{CELL}/metrics.json", ["make_report.py"], []),
    ("iia.csv", ["evaluate_das.py", "make_report.py"], []),
    (f"{GRAPH}.npy", ["analyse_graphs.py", "combine_causal_models.py"], ["--overwrite"]),
    (f"{GRAPH}.json", ["analyse_graphs.py", "combine_causal_models.py"], ["--overwrite"]),
    (f"{GRAPH}.json", ["make_report.py"], []),
    ("cliques/RemovalHeuristic/XY_layer_2_k_4.json", ["classification.py"], ["--overwrite"]),
    ("cliques/RemovalHeuristic/XY_layer_2_k_4.json", ["make_report.py"], []),
    ("trees/XY_layer_2_k_4.json", ["make_report.py"], []),
    ("combination/layer_2_k_4.csv", ["make_report.py"], []),
    ("mlp/pattern_matching/metrics.json", ["make_report.py"], []),
    ("mlp/pattern_matching/iia.csv", ["make_report.py"], []),
]


def _schema(path: Path) -> bytes:
    """Valid bytes of the wrong shape for the file's kind."""
    if path.suffix == ".json":
        return b"[1, 2]"
    if path.suffix == ".csv":
        return b"colour,size\nred,3\n"
    if path.suffix == ".npy":
        import io

        buf = io.BytesIO()
        np.save(buf, np.full((10, 10), np.nan, dtype=np.float32))
        return buf.getvalue()
    return b"\x00" * 64


DAMAGE = {
    "garbage": lambda p: p.write_bytes(bytes(range(256)) * 8),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "missing": lambda p: p.unlink(),
    "folder": lambda p: (p.unlink(), p.mkdir()),
    "schema": lambda p: p.write_bytes(_schema(p)),
}

# (script, path that must be a folder (or a file, for "file:") the script writes, flags)
WRITES = [
    ("train_gpt2.py", "gpt2", ["--overwrite"]),
    ("src/run_das.py", "das", ["--overwrite"]),
    ("src/run_das.py", "das/XY", ["--overwrite"]),
    ("src/run_das.py", "das/XY/layer_2", ["--overwrite"]),
    ("src/run_das.py", "das/XY/layer_2/k_4", ["--overwrite"]),
    ("evaluate_das.py", "file:iia.csv", ["--overwrite"]),
    ("evaluate_das.py", "iia", ["--overwrite"]),
    ("evaluate_das.py", "file:iia/XY/layer_2_k_4.json", ["--overwrite"]),
    ("disentangle_causal_models.py", "graphs/Z", ["--overwrite"]),
    ("analyse_graphs.py", "cliques", ["--overwrite"]),
    ("analyse_graphs.py", "cliques/RemovalHeuristic", ["--overwrite"]),
    ("classification.py", "trees", ["--overwrite"]),
    ("combine_causal_models.py", "combination", ["--overwrite"]),
    ("visualizations.py", "plots", ["--experiment", "training"]),
    ("make_report.py", "file:REPORT.md", []),
    ("reproduce_das_experiment.py", "mlp/hierarchical_equality", []),
    ("reproduce_das_experiment.py", "mlp/hierarchical_equality/model", ["--overwrite"]),
    ("reproduce_das_experiment.py", "mlp/hierarchical_equality/layer_0", ["--overwrite"]),
    ("reproduce_das_experiment.py", "file:mlp/hierarchical_equality/iia.csv", []),
    ("mlp/pattern_matching_das.py", "mlp/pattern_matching", []),
    ("mlp/pattern_matching_das.py", "mlp/pattern_matching/layer_0", ["--overwrite"]),
    ("mlp/pattern_matching_das.py", "file:mlp/pattern_matching/metrics.json", []),
    ("mlp/wrong_causal_graph_ablation_study.py", "mlp/wrong_causal_graph", []),
    ("mlp/wrong_causal_graph_ablation_study.py", "mlp/wrong_causal_graph/iit/model", ["--overwrite"]),
    ("mlp/wrong_causal_graph_ablation_study.py", "mlp/wrong_causal_graph/plain/trained_on_ABAB",
     ["--overwrite"]),
    *[(name, "<root>", []) for name in SCRIPTS],     # the results root itself is a file
]


# Found by listing a folder, and optional by design (visualizations.py and make_report.py draw
# and report what exists; later stages skip what is absent): "missing" is no fault for these.
LISTED = ("iia.csv", "graphs/", "cliques/", "trees/", "combination/", "mlp/", "gpt2/metrics.json",
          "gpt2/config.json", f"{CELL}/metrics.json")


def artifact_cases():
    for rel, readers, extra in READS:
        for kind in DAMAGE:
            for name in readers:
                if kind == "missing" and rel.startswith(LISTED) and (
                        name in ("visualizations.py", "make_report.py", "evaluate_das.py",
                                 "analyse_graphs.py", "classification.py",
                                 "combine_causal_models.py") and not rel.startswith(CELL)
                        or name == "make_report.py"):
                    continue
                yield pytest.param(name, rel, kind, extra, id=f"{name}:{rel}:{kind}")


def model_path_cases():
    """--model_path: the same damage to a model folder passed by the user."""
    for rel in MODEL_FILES[:3]:
        for kind in DAMAGE:
            for name in ("train_gpt2.py", "src/run_das.py"):
                yield pytest.param(name, rel, kind, id=f"{name}:--model_path:{rel}:{kind}")


def flag_cases():
    """Every number, list and device flag of every parser, with values it must refuse."""
    for name in SCRIPTS:
        parser = _parser_of(name)
        for action in parser._actions:
            flag = action.option_strings[-1] if action.option_strings else None
            kind = getattr(action.type, "cast", None)
            values = []
            if kind is float:
                values = ["nan", "inf", "-inf"]
            elif kind is int:
                values = ["100000000000000000000000"]
            elif action.type in (cli.int_list, cli.str_list):
                values = ["", ","]
            elif action.type is cli.device_name:
                values = ["tpu"]
            for value in values:
                yield pytest.param(name, [flag, value], id=f"{name}:{flag}={value!r}")
    yield pytest.param("classification.py", ["--clique_finder", "../../etc"], id="finder-escape")
    yield pytest.param("analyse_graphs.py", ["--clique_finder", "../x"], id="finder-escape-2")
    yield pytest.param("train_gpt2.py", ["--n_embd", "4096", "--n_layer", "96", "--n_head", "8"],
                       id="train:memory-estimate")


def _parser_of(name: str):
    """The script's parser, captured by running parse_args on --help."""
    import argparse

    captured = {}
    original = argparse.ArgumentParser.parse_args

    def grab(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = grab
    try:
        with pytest.raises(SystemExit):
            script(name).parse_args(["--help"])
    finally:
        argparse.ArgumentParser.parse_args = original
    return captured["parser"]


# --- running a case -------------------------------------------------------------------------------
RESULTS = {"cases": 0, "clean": 0}


def run_case(name: str, argv: list[str], capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = script(name).main(argv)
    err = capsys.readouterr().err
    # what a terminal shows: the text after a progress bar's last carriage return
    lines = [line.rsplit("\r", 1)[-1].strip() for line in err.splitlines()]
    return code, [line for line in lines if line]


def check_clean(code: int, lines: list[str], err_needle: str | None = None) -> None:
    RESULTS["cases"] += 1
    assert code == 2, (code, lines)
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "Traceback" not in lines[0]
    if err_needle:
        assert err_needle in lines[0], lines
    RESULTS["clean"] += 1


def copy_of(finished: Path, tmp_path: Path) -> Path:
    root = tmp_path / "results"
    shutil.copytree(finished, root, symlinks=True)
    return root


@pytest.mark.parametrize("name, rel, kind, extra", list(artifact_cases()))
def test_damaged_artifact(finished, tmp_path, capsys, name, rel, kind, extra):
    root = copy_of(finished, tmp_path)
    DAMAGE[kind](root / rel)
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], *extra], capsys)
    check_clean(code, lines, err_needle=Path(rel).parent.name)


@pytest.mark.parametrize("name, rel, kind", list(model_path_cases()))
def test_damaged_model_path(finished, tmp_path, capsys, name, rel, kind):
    model = tmp_path / "my_model"
    shutil.copytree(paths.gpt2_dir(finished), model)
    DAMAGE[kind](model / Path(rel).name)
    out = tmp_path / "fresh"
    flags = SCRIPTS[name] if name != "train_gpt2.py" else ["--epochs", "1", "--device", "cpu"]
    code, lines = run_case(name, ["--results_path", str(out), *flags, "--model_path", str(model)],
                           capsys)
    check_clean(code, lines, err_needle="my_model")


@pytest.mark.parametrize("name, rel, extra", [pytest.param(*w, id=f"{w[0]}:{w[1]}") for w in WRITES])
def test_wrong_kind_of_path(finished, tmp_path, capsys, name, rel, extra):
    root = copy_of(finished, tmp_path)
    if rel == "<root>":
        target, root = tmp_path / "a_file", tmp_path / "a_file"
        target.write_text("not a folder")
    elif rel.startswith("file:"):                  # a folder where the stage writes a file
        target = root / rel[len("file:"):]
        target.unlink(missing_ok=True)
        target.mkdir(parents=True)
    else:                                           # a file where the stage writes a folder
        target = root / rel
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("not a folder")
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], *extra], capsys)
    check_clean(code, lines)


@pytest.mark.parametrize("name, flags", list(flag_cases()))
def test_bad_flag(finished, tmp_path, capsys, name, flags):
    root = copy_of(finished, tmp_path) if name != "train_gpt2.py" else tmp_path / "fresh"
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], *flags], capsys)
    check_clean(code, lines)


def test_foreign_intervention_type_is_refused_before_any_import(finished, tmp_path, capsys):
    """A crafted cell (its completion marker recomputed, so only the allow-list can stop it)
    naming the ``this`` module: pyvene would import it, printing the Zen of Python."""
    import sys

    assert "this" not in sys.modules
    root = copy_of(finished, tmp_path)
    cell = root / CELL
    config = json.loads((cell / "config.json").read_text())
    config["intervention_types"] = ["<class 'this.Zen'>"]
    (cell / "config.json").write_text(json.dumps(config))
    runtime.write_done(cell / paths.DONE, [p for p in cell.iterdir() if p.name != paths.DONE])
    code, lines = run_case("evaluate_das.py", ["--results_path", str(root),
                                               *SCRIPTS["evaluate_das.py"], "--overwrite"], capsys)
    check_clean(code, lines, err_needle="this.Zen")
    assert "this" not in sys.modules


# --- a results folder never runs code -------------------------------------------------------------
TASK_READERS = ["evaluate_das.py", "disentangle_causal_models.py", "analyse_graphs.py",
                "classification.py", "combine_causal_models.py", "make_report.py",
                "visualizations.py"]
SENTINEL_TASK = ("from pathlib import Path\nPath({sentinel!r}).write_text('ran')\n"
                 "from dasgraph.tasks.arithmetic import TASK\n")


def _plant_task_file(root: Path, tmp_path: Path, sha: str | None = "match") -> tuple[Path, Path]:
    """task.json naming a Python file that, if ever run, creates a sentinel file."""
    import hashlib

    sentinel, source = tmp_path / "sentinel", tmp_path / "evil_task.py"
    source.write_text(SENTINEL_TASK.format(sentinel=str(sentinel)))
    digest = hashlib.sha256(source.read_bytes()).hexdigest() if sha == "match" else sha
    record = {"task": "arithmetic", "source": str(source), "n_inputs": 1000}
    if digest is not None:
        record["source_sha256"] = digest
    (root / "task.json").write_text(json.dumps(record))
    return source, sentinel


@pytest.mark.parametrize("name", TASK_READERS)
def test_a_recorded_task_file_is_not_run_without_task(finished, tmp_path, capsys, name):
    root = copy_of(finished, tmp_path)
    source, sentinel = _plant_task_file(root, tmp_path)
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name]], capsys)
    check_clean(code, lines, err_needle=f"pass --task {source}")
    assert not sentinel.exists()


@pytest.mark.parametrize("sha", ["0" * 64, None, 5])
def test_a_recorded_task_file_with_another_digest_is_not_run(finished, tmp_path, capsys, sha):
    """Named with --task, but not the file the results were made with (or task.json records no
    digest, or a damaged one): refused before the file runs."""
    root = copy_of(finished, tmp_path)
    source, sentinel = _plant_task_file(root, tmp_path, sha)
    code, lines = run_case("analyse_graphs.py", ["--results_path", str(root), "--task",
                                                 str(source)], capsys)
    check_clean(code, lines, err_needle="task")
    assert not sentinel.exists()


def test_a_named_task_file_with_the_recorded_digest_is_used(finished, tmp_path, capsys):
    """The control: the same file named with --task on the command is run (the sentinel)."""
    root = copy_of(finished, tmp_path)
    source, sentinel = _plant_task_file(root, tmp_path)
    code, _ = run_case("classification.py", ["--results_path", str(root), "--task", str(source)],
                       capsys)
    assert code == 0 and sentinel.read_text() == "ran"
    # the file hands back the built-in task object it imported: loading it must not turn the
    # built-in into this file's task for the rest of the process
    from dasgraph import tasks
    assert tasks.get("arithmetic").source == ""


TASK_JSON = {
    "number": "5", "list": "[1, 2]", "null": "null", "source-number": '{"task": "x", "source": 7}',
    "task-list": '{"task": ["arithmetic"]}', "unknown-name": '{"task": "../evil.py"}',
    "deep": "[" * 100000 + "]" * 100000, "garbage": "\u0000\u00ff",
}


@pytest.mark.parametrize("kind", list(TASK_JSON))
def test_a_damaged_task_json_is_one_line(finished, tmp_path, capsys, kind):
    root = copy_of(finished, tmp_path)
    (root / "task.json").write_text(TASK_JSON[kind])
    code, lines = run_case("analyse_graphs.py", ["--results_path", str(root)], capsys)
    check_clean(code, lines, err_needle="task.json")


TASK_FILES = {
    "not-python.txt": "TASK = 1\n",
    "binary.py": "\u0000\u00ff\u00fe",
    "syntax.py": "def (:\n",
    "keyboard.py": "raise KeyboardInterrupt\n",
    "exit0.py": "import sys\nsys.exit(0)\n",
    "exit-text.py": "raise SystemExit('bye')\n",
    "recursion.py": "def f():\n    return f()\nf()\n",
    "not-a-task.py": "TASK = [1, 2]\n",
}


@pytest.mark.parametrize("file", list(TASK_FILES))
def test_a_bad_task_file_ends_in_one_line(tmp_path, capsys, file):
    bad = tmp_path / file
    bad.write_text(TASK_FILES[file], encoding="latin-1")
    code, lines = run_case("train_gpt2.py", ["--results_path", str(tmp_path / "out"),
                                             "--task", str(bad), *TRAIN], capsys)
    check_clean(code, lines, err_needle=file)
    assert not (tmp_path / "out").exists()       # nothing left behind by a refused run


# --- provenance: nothing foreign is used as if it were ours ---------------------------------------
@pytest.fixture(scope="module")
def other_network(finished, tmp_path_factory) -> Path:
    """A network of the same shape as the finished folder's, with other weights (its first
    layer's bias moved): the cells were not trained on it."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("other") / "other_gpt2"
    shutil.copytree(paths.gpt2_dir(finished), folder)
    (folder / paths.DONE).unlink()
    weights = load_file(folder / "model.safetensors")
    name = next(n for n in sorted(weights) if n.endswith("ln_1.bias"))
    weights[name] = weights[name] + 0.5
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.mark.parametrize("name", ["evaluate_das.py", "disentangle_causal_models.py"])
def test_a_cell_used_with_another_network_is_refused(finished, other_network, tmp_path, capsys,
                                                     name):
    root = copy_of(finished, tmp_path)
    before = (root / "iia.csv").read_bytes()
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], "--overwrite",
                                  "--model_path", str(other_network)], capsys)
    check_clean(code, lines, err_needle=str(other_network))
    assert "was trained on network" in lines[0]
    assert (root / "iia.csv").read_bytes() == before


def _copy_over(root: Path, files: list[tuple[str, str]], main: str) -> None:
    """What a user's cp does, the completion marker of ``main`` made anew (so that only the
    place can tell): each (source, target) file or folder copied over its target."""
    for source, target in files:
        src, dst = root / source, root / target
        if src.is_dir():
            shutil.rmtree(dst)
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
    if not (root / main).is_dir():
        marker = paths.done_marker(root / main)
        group = [root / main, *(p for p in [(root / main).with_suffix(".json")]
                                if p.exists() and p != root / main)]
        runtime.write_done(marker, group, runtime.recorded_settings(marker))


MISPLACED = {  # (files copied, main file, the script that reads it)
    "cell": ([("das/Z/layer_2/k_4", CELL)], CELL, "evaluate_das.py"),
    "cell-graphed": ([("das/Z/layer_2/k_4", CELL)], CELL, "disentangle_causal_models.py"),
    "graph": ([("graphs/Z/layer_2_k_4.npy", f"{GRAPH}.npy"),
               ("graphs/Z/layer_2_k_4.json", f"{GRAPH}.json")], f"{GRAPH}.npy",
              "analyse_graphs.py"),
    "graph-json": ([("graphs/Z/layer_2_k_4.json", f"{GRAPH}.json")], f"{GRAPH}.npy",
                   "combine_causal_models.py"),
    "cliques": ([("cliques/RemovalHeuristic/Z_layer_2_k_4.json",
                  "cliques/RemovalHeuristic/XY_layer_2_k_4.json")],
                "cliques/RemovalHeuristic/XY_layer_2_k_4.json", "classification.py"),
}


@pytest.mark.parametrize("case", list(MISPLACED))
def test_an_artifact_copied_to_another_cells_place_is_refused(finished, tmp_path, capsys, case):
    root = copy_of(finished, tmp_path)
    files, main, name = MISPLACED[case]
    _copy_over(root, files, main)
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], "--overwrite"],
                           capsys)
    check_clean(code, lines, err_needle="place of XY")


UNFINISHED = {  # marker file -> the script that reads its artifact
    f"{CELL}/{paths.DONE}": "evaluate_das.py",
    f"graphs/XY/.layer_2_k_4.npy.done": "analyse_graphs.py",
    "cliques/RemovalHeuristic/.XY_layer_2_k_4.json.done": "classification.py",
}


@pytest.mark.parametrize("marker", list(UNFINISHED))
@pytest.mark.parametrize("how", ["empty-list", "missing"])
def test_an_artifact_without_a_valid_marker_is_unfinished(finished, tmp_path, capsys, marker,
                                                          how):
    """Refused by the stage that reads it (a hand-made artifact is never trusted)..."""
    root = copy_of(finished, tmp_path)
    if how == "missing":
        (root / marker).unlink()
    else:
        (root / marker).write_text('{"files": {}}')
    name = UNFINISHED[marker]
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], "--overwrite"],
                           capsys)
    check_clean(code, lines, err_needle="marker")


def test_a_graph_with_an_empty_marker_is_redone(finished, tmp_path):
    """... and redone by the stage that makes it."""
    root = copy_of(finished, tmp_path)
    marker = root / "graphs/XY/.layer_2_k_4.npy.done"
    marker.write_text('{"files": {}}')
    rerun("disentangle_causal_models.py", root)
    assert runtime.is_done(marker)
    assert (root / f"{GRAPH}.npy").read_bytes() == (finished / f"{GRAPH}.npy").read_bytes()


# --- FIFOs and other non-regular files: one line within seconds -----------------------------------
class Hung(BaseException):
    """Raised by the alarm: a reader blocked (never caught by a stage's error handling)."""


@contextlib.contextmanager
def within(seconds: int):
    import signal

    def alarm(signum, frame):
        raise Hung(f"still running after {seconds} s (blocked on a FIFO?)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def fifo_cases():
    seen = set()
    for rel, readers, extra in READS:
        if rel not in seen:
            seen.add(rel)
            yield pytest.param(readers[0], rel, extra, id=f"{readers[0]}:{rel}")
    for marker, name in UNFINISHED.items():
        yield pytest.param(name, marker, ["--overwrite"], id=f"{name}:{marker}")


@pytest.mark.parametrize("name, rel, extra", list(fifo_cases()))
def test_a_fifo_in_place_of_an_artifact_is_one_line(finished, tmp_path, capsys, name, rel, extra):
    import os

    root = copy_of(finished, tmp_path)
    (root / rel).unlink()
    os.mkfifo(root / rel)
    with within(60):
        code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], *extra], capsys)
    check_clean(code, lines)


def test_a_fifo_among_thesis_graphs_is_one_line(tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "(X+Y)+Z_graph_256_7.pt")
    with within(30):
        code, lines = run_case("import_graphs.py", ["--results_path", str(tmp_path / "out"),
                                                    "--thesis_graphs", str(tmp_path)], capsys)
    check_clean(code, lines, err_needle="not a regular file")


# --- JSON too deep or too large, and of the wrong type --------------------------------------------
JSON_READS = {"gpt2/config.json": "src/run_das.py", f"{CELL}/metrics.json": "evaluate_das.py",
              f"{GRAPH}.json": "analyse_graphs.py",
              "cliques/RemovalHeuristic/XY_layer_2_k_4.json": "classification.py"}
JSON_DAMAGE = {"deep": b"[" * 100000 + b"]" * 100000,
               "deep-object": b'{"a":' * 50000 + b"1" + b"}" * 50000,
               "huge": b'{"pad": "' + b"x" * 5000 + b'"}', "number": b"5", "list": b"[1, 2]"}


@pytest.mark.parametrize("kind", list(JSON_DAMAGE))
@pytest.mark.parametrize("rel", list(JSON_READS))
def test_json_too_deep_too_large_or_of_another_type_is_one_line(finished, tmp_path, capsys,
                                                                 monkeypatch, rel, kind):
    from dasgraph import readers

    monkeypatch.setattr(readers, "MAX_JSON_BYTES", 4096)     # "huge", without writing 64 MiB
    root = copy_of(finished, tmp_path)
    (root / rel).write_bytes(JSON_DAMAGE[kind])
    name = JSON_READS[rel]
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], "--overwrite"],
                           capsys)
    check_clean(code, lines, err_needle=Path(rel).name)


# --- a full disk: one line, finished files intact -------------------------------------------------
FULL_DISK = {  # the stage, made to write again
    "train_gpt2.py": ["--overwrite"], "src/run_das.py": ["--overwrite"],
    "evaluate_das.py": ["--overwrite"], "disentangle_causal_models.py": ["--overwrite"],
    "analyse_graphs.py": ["--overwrite"], "classification.py": ["--overwrite"],
    "combine_causal_models.py": ["--overwrite"],
    "visualizations.py": ["--experiment", "empirical"],
    "make_report.py": [], "reproduce_das_experiment.py": ["--overwrite"],
    "mlp/pattern_matching_das.py": ["--overwrite"],
    "mlp/wrong_causal_graph_ablation_study.py": ["--overwrite"],
}
KEPT = ["gpt2/model.safetensors", CELL_FILES[1], "iia.csv", f"{GRAPH}.npy",
        "cliques/RemovalHeuristic/XY_layer_2_k_4.json", "trees/XY_layer_2_k_4.json",
        "combination/layer_2_k_4.csv", "mlp/pattern_matching/metrics.json"]
# Run in one child process with a file-size limit (what a full disk does to a writer, without
# mounting a filesystem): each stage's main on its own copy, its exit code and stderr lines back.
FULL_DISK_CHILD = """
import contextlib, io, json, resource, signal, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # the write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
import test_fault_injection as t
out = {}
for name, root, flags in json.loads(sys.argv[4]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = t.script(name).main(["--results_path", root, *t.SCRIPTS[name], *flags])
    out[name] = [code, err.getvalue()]
print(json.dumps(out))
"""


def test_a_full_disk_in_each_stage_is_one_line(finished, tmp_path, capsys):
    import subprocess
    import sys

    jobs = []
    for i, (name, flags) in enumerate(FULL_DISK.items()):
        root = tmp_path / f"r{i}"
        shutil.copytree(finished, root, symlinks=True)
        jobs.append([name, str(root), flags])
    child = subprocess.run([sys.executable, "-c", FULL_DISK_CHILD, str(ROOT / "src"),
                            str(ROOT / "tests"), "1500", json.dumps(jobs)],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert child.returncode == 0, child.stderr[-3000:]
    results = json.loads(child.stdout.strip().splitlines()[-1])
    for name, root, _ in jobs:
        code, err = results[name]
        assert "Traceback" not in err, (name, err[-2000:])
        # progress bars, written to a file rather than a terminal, end their lines there
        lines = [line.rsplit("\r", 1)[-1].replace("\x1b[A", "").strip()
                 for line in err.splitlines()]
        lines = [line for line in lines if line and "%|" not in line]
        check_clean(code, lines, err_needle="free space on that disk")
        for rel in KEPT:                 # nothing good destroyed, no half file at a final name
            assert (Path(root) / rel).read_bytes() == (finished / rel).read_bytes(), (name, rel)
        assert not leftovers(Path(root)), name


# --- sizes and values checked before work ---------------------------------------------------------
def _model_folder(tmp_path: Path, config: dict, tensors: dict | None = None) -> Path:
    """A folder a user might pass as --model_path: ``config`` and a safetensors file."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "my_model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    save_file(tensors or {"w": torch.zeros(1)}, folder / "model.safetensors")
    return folder


HUGE = {  # config -> what the one line says
    "llama-huge": ({"model_type": "llama", "hidden_size": 65536, "num_hidden_layers": 96,
                    "architectures": ["LlamaForCausalLM"]}, "GiB of memory"),
    "gpt2-huge": ({"model_type": "gpt2", "n_embd": 32768, "n_layer": 96,
                   "architectures": ["GPT2ForSequenceClassification"]}, "GiB of memory"),
    "bad-size": ({"model_type": "gpt2", "n_embd": -5}, "not a size"),
    "bool-size": ({"model_type": "gpt2", "n_layer": True}, "not a size"),
    "auto-map": ({"model_type": "gpt2", "auto_map": {"AutoModel": "evil.Model"}}, "auto_map"),
}


@pytest.mark.parametrize("name", ["src/run_das.py", "train_gpt2.py"])
@pytest.mark.parametrize("case", list(HUGE))
def test_a_model_folder_is_checked_before_it_is_built(tmp_path, capsys, name, case):
    config, needle = HUGE[case]
    folder = _model_folder(tmp_path, config)
    sentinel = tmp_path / "sentinel"
    (folder / "evil.py").write_text(f"open({str(sentinel)!r}, 'w')\nclass Model: pass\n")
    flags = SCRIPTS[name] if name != "train_gpt2.py" else ["--epochs", "1", "--device", "cpu"]
    with within(60):                   # refused from its config: nothing is built
        code, lines = run_case(name, ["--results_path", str(tmp_path / "out"), *flags,
                                      "--model_path", str(folder)], capsys)
    check_clean(code, lines, err_needle=needle)
    assert "my_model" in lines[0] and not sentinel.exists()
    assert not (tmp_path / "out").exists()         # no empty results folder left behind


def test_a_default_size_llama_from_a_bare_config_is_refused(tmp_path, capsys):
    """model_type llama and no sizes: transformers would build a 6.7-billion-parameter Llama."""
    import os

    if os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") > 2 * 27 * 2**30:
        pytest.skip("this machine could hold a default Llama")
    folder = _model_folder(tmp_path, {"model_type": "llama"})
    with within(60):
        code, lines = run_case("src/run_das.py", ["--results_path", str(tmp_path / "out"),
                                                  *SCRIPTS["src/run_das.py"], "--model_path",
                                                  str(folder)], capsys)
    check_clean(code, lines, err_needle="GiB of memory")


def _edit_weights(folder: Path, how: str) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    if how == "missing":
        weights.pop(sorted(weights)[len(weights) // 2])
    elif how == "missing-head":
        weights.pop(next(n for n in weights if n.startswith("score")))
    else:
        weights["transformer.extra.weight"] = torch.zeros(3)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize("how", ["missing", "missing-head", "unexpected"])
@pytest.mark.parametrize("name", ["src/run_das.py", "evaluate_das.py"])
def test_missing_or_unexpected_weights_are_refused(finished, tmp_path, capsys, how, name):
    folder = tmp_path / "my_model"
    shutil.copytree(paths.gpt2_dir(finished), folder)
    (folder / paths.DONE).unlink()               # the user's own folder: no marker to check
    _edit_weights(folder, how)
    root = copy_of(finished, tmp_path) if name == "evaluate_das.py" else tmp_path / "out"
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], "--model_path",
                                  str(folder)], capsys)
    check_clean(code, lines, err_needle="weight")
    assert "my_model" in lines[0]


@pytest.mark.parametrize("name", ["src/run_das.py", "train_gpt2.py"])
def test_a_results_folder_given_as_model_path_names_its_model(finished, tmp_path, capsys, name):
    flags = SCRIPTS[name] if name != "train_gpt2.py" else ["--epochs", "1", "--device", "cpu"]
    code, lines = run_case(name, ["--results_path", str(tmp_path / "out"), *flags,
                                  "--model_path", str(finished)], capsys)
    check_clean(code, lines, err_needle=f"--model_path {paths.gpt2_dir(finished)}")
    assert "--overwrite" not in lines[0] and not (tmp_path / "out").exists()


OUT_OF_RANGE = {  # (file, edit, reader)
    "iia-above-1": ("iia.csv", ("iia", 7.9), "make_report.py"),
    "iia-negative": ("iia.csv", ("iia", -0.2), "visualizations.py"),
    "count-negative": ("iia.csv", ("n_examples", -3), "evaluate_das.py"),
    "layer-negative": ("iia.csv", ("layer", -1), "make_report.py"),
    "metric-inf": (f"{CELL}/metrics.json", ("iia", "1e400"), "make_report.py"),
    "metric-above-1": (f"{CELL}/metrics.json", ("iia", "7.5"), "evaluate_das.py"),
    "metric-bool": (f"{CELL}/metrics.json", ("iia", "true"), "make_report.py"),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_a_number_out_of_its_range_in_an_artifact_is_refused(finished, tmp_path, capsys, case):
    import pandas as pd

    rel, (column, value), name = OUT_OF_RANGE[case]
    root = copy_of(finished, tmp_path)
    path = root / rel
    if path.suffix == ".csv":
        table = pd.read_csv(path)
        table.loc[0, column] = value
        path.write_text(table.to_csv(index=False))
    else:                                        # the raw text: 1e400 is what a file can say
        record = json.loads(path.read_text())
        record[column] = "@@"
        path.write_text(json.dumps(record).replace('"@@"', value))
        runtime.write_done(path.parent / paths.DONE,
                           [p for p in path.parent.iterdir() if p.name != paths.DONE],
                           runtime.recorded_settings(path.parent / paths.DONE))
    extra = ["--experiment", "empirical"] if name == "visualizations.py" else []
    code, lines = run_case(name, ["--results_path", str(root), *SCRIPTS[name], *extra], capsys)
    check_clean(code, lines, err_needle=repr(column))


FLAGS = [  # (script, flags): repeated list values, unbounded floats, names that leave the tree
    ("trace_causal_effects.py", ["--variables", "X,X"]),
    ("trace_causal_effects.py", ["--components", "resid,attn,resid"]),
    ("trace_causal_effects.py", ["--layers", "1,1"]),
    ("trace_causal_effects.py", ["--noise_scale", "inf"]),
    ("trace_causal_effects.py", ["--noise_scale", "1e308"]),
    ("trace_causal_effects.py", ["--noise_scale", "-1"]),
    ("src/run_das.py", ["--causal_models", "XY,XY"]),
    ("src/run_das.py", ["--lr", "1e308"]),
    ("evaluate_das.py", ["--positions", "0,0"]),
    ("train_iit.py", ["--mlp_lr", "1e308"]),
    ("train_iit.py", ["--iit_weight", "1e300"]),
    ("train_iit.py", ["--name", "../../x"]),
    ("train_iit.py", ["--name", "/tmp/x"]),
    ("train_iit.py", ["--name", ".."]),
    ("reproduce_das_experiment.py", ["--mlp_lr", "1e308"]),
    ("train_gpt2.py", ["--lr", "1e308"]),
]


@pytest.mark.parametrize("name, flags", FLAGS, ids=[f"{n}:{' '.join(f)}" for n, f in FLAGS])
def test_a_bad_value_of_a_flag_is_refused_before_work(tmp_path, capsys, name, flags):
    code, lines = run_case(name, ["--results_path", str(tmp_path / "out"), *flags], capsys)
    check_clean(code, lines, err_needle=flags[0])
    assert not (tmp_path / "out").exists()


# --- damaged work is redone, to the same bytes; a killed run resumes ------------------------------
def rerun(name: str, root: Path, *flags: str) -> None:
    assert script(name).main(["--results_path", str(root), *SCRIPTS[name], *flags]) == 0


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if ".partial-" in p.name or ".tmp" in p.name]


def test_truncated_cell_file_is_redone_to_the_same_bytes(finished, tmp_path):
    import subprocess

    root = copy_of(finished, tmp_path)
    weights = root / CELL_FILES[1]
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])
    dead = subprocess.Popen(["true"])
    dead.wait()                                  # a pid that no longer runs
    stale = root / CELL / ".." / f".k_4.partial-{dead.pid}-x"
    stale.mkdir()
    rerun("src/run_das.py", root)
    assert weights.read_bytes() == original
    assert runtime.is_done(root / CELL / paths.DONE) and not stale.exists()


def test_deleted_graph_json_is_redone(finished, tmp_path):
    root = copy_of(finished, tmp_path)
    npy = (root / f"{GRAPH}.npy").read_bytes()
    (root / f"{GRAPH}.json").unlink()
    rerun("disentangle_causal_models.py", root)
    assert (root / f"{GRAPH}.json").exists() and (root / f"{GRAPH}.npy").read_bytes() == npy


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_damaged_evaluation_record_is_redone_to_the_same_bytes(finished, tmp_path, damage):
    """An evaluated cell's record whose bytes no longer match its marker is evaluated again
    (only it), and iia.csv assembled from the records is the same."""
    root = copy_of(finished, tmp_path)
    record = root / "iia/XY/layer_2_k_4.json"
    other = root / "iia/Z/layer_2_k_4.json"
    stamp = other.stat().st_mtime_ns
    DAMAGE[damage](record)
    (root / "iia.csv").unlink()
    rerun("evaluate_das.py", root)
    assert runtime.is_done(paths.done_marker(record)) and other.stat().st_mtime_ns == stamp
    assert (root / "iia.csv").read_bytes() == (finished / "iia.csv").read_bytes()


# script -> (what to delete before the run, files whose bytes must match the finished folder)
KILLED = {
    "train_gpt2.py": (["gpt2"], ["gpt2/model.safetensors", "gpt2/metrics.json"]),
    "src/run_das.py": (["das", "iia.csv", "graphs"], [CELL_FILES[1], CELL_FILES[2]]),
    "evaluate_das.py": (["iia.csv", "iia"], ["iia.csv"]),
    "disentangle_causal_models.py": (["graphs"], [f"{GRAPH}.npy"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KILLED))
@pytest.mark.parametrize("after", [6.0, 12.0])
def test_kill_9_then_rerun_gives_the_same_bytes(finished, tmp_path, name, after):
    """The script in its own process, killed with SIGKILL after ``after`` seconds (import,
    loading or computing, wherever it is), then re-run to the end."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = copy_of(finished, tmp_path)
    remove, compare = KILLED[name]
    for rel in remove:
        target = root / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, str(ROOT / name), "--results_path", str(root),
                             *SCRIPTS[name]], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the killed run may have finished: re-run as make reproduce does (keep finished work)
    rerun(name, root, *(["--skip_existing"] if name == "train_gpt2.py" else []))
    for rel in compare:
        assert (root / rel).read_bytes() == (finished / rel).read_bytes(), rel
    assert not leftovers(root)


def test_count(capsys):
    """Printed last (pytest runs a module's tests in order): the suite's tally."""
    with capsys.disabled():
        print(f"\nfault injection: {RESULTS['cases']} cases, {RESULTS['clean']} clean")
    assert RESULTS["cases"] == RESULTS["clean"]
