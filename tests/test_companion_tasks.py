"""The companions (causal tracing, path patching) run the task of their results tree: the
boolean task on a tiny network, with known answers that hold for any network; a task that lacks
what they need is refused in one line before any network is loaded."""
import pandas as pd
import pytest

import path_patching
import trace_causal_effects
import train_gpt2
from dasgraph import paths, tasks
from dasgraph.plots import circuits as plots_circuits
from test_own_task import readme_task_file

BOOLEAN = tasks.get("boolean")


@pytest.fixture(scope="module")
def boolean_results(tmp_path_factory):
    """A tiny GPT-2 trained briefly on the boolean task (64 inputs, 13 tokens)."""
    root = tmp_path_factory.mktemp("boolean") / "results"
    assert train_gpt2.main(["--task", "boolean", "--results_path", str(root), "--n_layer", "2",
                            "--n_embd", "16", "--n_head", "2", "--epochs", "50",
                            "--device", "cpu"]) == 0
    return root


def test_boolean_tracing_corrupts_the_tasks_own_tokens(boolean_results):
    assert trace_causal_effects.main([
        "--results_path", str(boolean_results), "--device", "cpu", "--corruption", "replace",
        "--variables", "X,OP1", "--n_inputs", "64", "--n_samples", "2"]) == 0
    table = pd.read_csv(paths.tracing_csv(boolean_results, "replace"))
    assert set(table.position) == set(range(BOOLEAN.seq_len))          # 13 tokens
    assert 0 < table.n_inputs.iloc[0] <= BOOLEAN.n_inputs
    last = BOOLEAN.seq_len - 1
    for variable in ("X", "OP1"):
        rows = table[(table.corrupted_variable == variable) & (table.component == "resid")]
        rows = rows.set_index(["layer", "position"])
        total = rows.total_effect.iloc[0]
        # at the embeddings only the corrupted token differs; the head reads the last position
        position = BOOLEAN.positions[variable]
        assert rows.loc[(0, position)].indirect_effect == pytest.approx(total, abs=1e-6)
        assert rows.loc[(2, last)].indirect_effect == pytest.approx(total, abs=1e-6)
        others = rows.loc[0].drop(index=position).indirect_effect
        assert (others.abs() <= 1e-7).all()
    # the maps name the task's positions, not arithmetic's X + Y + Z =
    figure = plots_circuits.tracing_maps(table, "t", BOOLEAN.position_names())
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert ticks[BOOLEAN.positions["X"]] == f"{BOOLEAN.positions['X']}:X" and ticks[1] == "1:("


def test_boolean_path_patching_names_the_receiver_by_the_tasks_length(boolean_results):
    last = str(BOOLEAN.seq_len - 1)           # 12: beyond arithmetic's 6 tokens
    assert path_patching.main(["--results_path", str(boolean_results), "--device", "cpu",
                               "--counterfactual", "Y", "--receiver", "1",
                               "--receiver_positions", last, "--n_inputs", "64"]) == 0
    table = pd.read_csv(paths.path_patching_csv(boolean_results, "layer_1"))
    assert table[["layer", "head"]].values.tolist() == [[0, 0], [0, 1]]
    assert set(table.counterfactual) == {"Y"} and table.n_examples.iloc[0] == 2 * 64


def _task_file(tmp_path, change: str):
    """The README's task with one change, recorded as the task of a results tree that holds no
    network (a refusal must come before any network is looked for)."""
    path = readme_task_file(tmp_path)
    path.write_text(path.read_text() + "\nimport dataclasses\n\n"
                    f"TASK = dataclasses.replace(TASK, {change})\n")
    root = tmp_path / "results"
    tasks.write_record(root, tasks.get(str(path)))
    return path, root


@pytest.mark.parametrize("script, change, flags, needle", [
    (trace_causal_effects, "positions={}", [], "declares no token positions"),
    (trace_causal_effects, "positions={'X': 1}", ["--variables", "Y"],
     "--variables Y: task max declares no token position"),
    (path_patching, "values={'X': (3,), 'Y': DIGITS}", ["--counterfactual", "X"],
     "--counterfactual 'X': task max gives it one value only (3)"),
], ids=["tracing-no-positions", "tracing-variable-without-position", "patching-one-value"])
def test_a_task_without_what_they_need_is_refused_in_one_line(tmp_path, capsys, script, change,
                                                              flags, needle):
    task_file, root = _task_file(tmp_path, change)
    assert script.main(["--results_path", str(root), "--task", str(task_file), "--device", "cpu",
                        *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (root / "tracing").exists() and not (root / "path_patching").exists()


def test_the_default_variables_on_the_boolean_task_are_refused_in_one_line(tmp_path, capsys):
    root = tmp_path / "results"
    tasks.write_record(root, BOOLEAN)
    assert trace_causal_effects.main(["--results_path", str(root), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --variables Z: unknown; valid: OP1, OP2, X, B, OP3, Y"]


@pytest.mark.parametrize("script", [trace_causal_effects, path_patching],
                         ids=["tracing", "patching"])
@pytest.mark.parametrize("task, needle", [
    ("missing.py", "--task {tmp}/missing.py: no such file"),
    ("algebra", "unknown --task 'algebra'"),
    ("boolean", "holds results of task arithmetic"),
], ids=["no-such-file", "unknown-name", "another-task"])
def test_a_bad_task_flag_is_one_line_and_exit_2(tmp_path, capsys, script, task, needle):
    root = tmp_path / "results"
    tasks.write_record(root, tasks.get("arithmetic"))
    flag = str(tmp_path / task) if task.endswith(".py") else task
    assert script.main(["--results_path", str(root), "--task", flag, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle.format(tmp=tmp_path) in err[0], err
    assert not (root / "tracing").exists() and not (root / "path_patching").exists()
