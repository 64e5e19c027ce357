"""A task of one's own: the README's example file end to end, bad task files, pyvene's models."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import analyse_graphs
import combine_causal_models
import disentangle_causal_models
import evaluate_das
import run_das
import train_gpt2
from dasgraph import paths, tasks
from dasgraph.causal import models as causal_models
from dasgraph.runtime import UsageError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_task_file(tmp_path: Path) -> Path:
    """The first python block of the README's "Your own task" section, as a file."""
    section = README.read_text().split("## Your own task", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "my_task.py"
    path.write_text(code)
    return path


def test_readme_task_runs_das_graphs_and_combination(tmp_path):
    task_file = readme_task_file(tmp_path)
    root = tmp_path / "results"
    common = ["--results_path", str(root)]
    assert train_gpt2.main(["--task", str(task_file), *common, "--epochs", "150"]) == 0
    assert tasks.recorded(root) == str(task_file.resolve())
    common += ["--task", str(task_file)]     # a task file runs only when named on the command
    cells = ["--layers", "1", "--low_rank_dimensions", "4"]
    assert run_das.main([*common, *cells, "--n_training", "1280", "--workers", "1"]) == 0
    assert evaluate_das.main([*common, "--n_testing", "500", "--random_draws", "0"]) == 0
    assert disentangle_causal_models.main([*common, *cells]) == 0
    assert analyse_graphs.main(common) == 0
    assert combine_causal_models.main(common) == 0
    graph = np.load(paths.graph_npy(root, "GE", 1, 4))
    assert graph.shape == (25, 25)                     # the task's inputs, not arithmetic's
    combination = paths.combination_csv(root, 1, 4).read_text()
    assert "X+Y+GE" in combination and ",O," in combination   # all three, O takes the rest


def test_the_readme_task_and_its_tables(tmp_path):
    task = tasks.get(str(readme_task_file(tmp_path)))
    assert (task.n_inputs, task.n_classes, task.seq_len) == (25, 5, 4)
    x, y = task.columns()["X"], task.columns()["Y"]
    # GE's counterfactual: the base's X where the source has X >= Y, else the base's Y
    ge = task.table("GE")
    b, s = 7, 18                                       # (1, 2) base, (3, 3) source
    assert (x[b], y[b], x[s], y[s]) == (1, 2, 3, 3)
    assert ge[b, s] == 1 and task.table("O")[b, s] == 3 and task.table("X")[b, s] == 3
    assert (np.diagonal(ge) == task.labels).all()      # no interchange: the task's own answer


BAD_TASKS = {
    "raises": ("raise RuntimeError('broken on purpose')\n", "the file raised RuntimeError"),
    "no_task": ("X = 1\n", "must define TASK"),
    "label_outside": ("{base}\nTASK = dataclasses.replace(TASK, label=lambda c: c['X'] + 1)\n",
                      "outside the classes"),
    "p_undefined": ("{base}\nTASK = dataclasses.replace(TASK, models={{**TASK.models, 'GE': "
                    "dataclasses.replace(TASK.models['GE'], p=lambda c: np.where(c['X'] > 3, "
                    "np.nan, c['X']))}})\n", "P is not defined on every input"),
    # "=" left out of vocab: without the check "max 3 1 =" ends in the tokenizer's unknown token
    "vocab_missing": ("{base}\nTASK = dataclasses.replace(TASK, vocab=TASK.vocab[:1] + "
                      "TASK.vocab[2:])\n",
                      "prompt 'max 0 0 =' (X=0, Y=0) holds '=', which is not in vocab"),
    # X's token is the second one ("max 3 1 ="), not the first
    "wrong_position": ("{base}\nTASK = dataclasses.replace(TASK, positions={{'X': 0, 'Y': 2}})\n",
                       "positions['X'] = 0 holds 'max' in 'max 0 0 =', not the value of X; "
                       "X's token sits at 1"),
    "position_outside": ("{base}\nTASK = dataclasses.replace(TASK, positions={{'X': 4}})\n",
                         "positions['X'] = 4 is outside the prompts' 4 tokens"),
    "lengths_differ": ("{base}\nTASK = dataclasses.replace(TASK, prompt=lambda v: f\"max {{v['X']}} "
                       "{{v['Y']}} =\" + (\" =\" if v['X'] == 4 else ''))\n",
                       "prompts have [4, 5] tokens"),
}


@pytest.mark.parametrize("case", list(BAD_TASKS))
def test_a_bad_task_file_is_one_line_and_exit_2(tmp_path, case, capsys):
    base = readme_task_file(tmp_path).read_text() + "\nimport dataclasses\n"
    text, message = BAD_TASKS[case]
    bad = tmp_path / f"{case}.py"
    bad.write_text(text.format(base=base))
    code = train_gpt2.main(["--task", str(bad), "--results_path", str(tmp_path / case)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_an_unknown_task_name_is_one_line_and_exit_2(tmp_path):
    run = subprocess.run([sys.executable, "train_gpt2.py", "--task", "algebra", "--results_path",
                          str(tmp_path)], capture_output=True, text=True,
                         cwd=README.parent)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: unknown --task 'algebra'; built in: arithmetic, boolean, or the path of a Python "
        "file that defines TASK (README, 'Your own task')"]


def test_a_results_tree_refuses_another_task(tmp_path):
    tasks.write_record(tmp_path, tasks.get("arithmetic"))
    with pytest.raises(UsageError, match="holds results of task arithmetic"):
        tasks.for_results(tmp_path, "boolean")


def test_pyvene_causal_model_gives_the_same_table_as_ours():
    """The arithmetic XY model written as a pyvene.CausalModel: P = X+Y, O = P+Z."""
    import pyvene

    values = list(range(1, 11))
    cm = pyvene.CausalModel(
        variables=["X", "Y", "Z", "P", "O"],
        values={"X": values, "Y": values, "Z": values, "P": list(range(2, 21)),
                "O": list(range(3, 31))},
        parents={"X": [], "Y": [], "Z": [], "P": ["X", "Y"], "O": ["P", "Z"]},
        functions={"X": lambda: 1, "Y": lambda: 1, "Z": lambda: 1,
                   "P": lambda x, y: x + y, "O": lambda p, z: p + z})
    arith = tasks.get("arithmetic")
    model = causal_models.from_pyvene(cm, "XY", intermediate="P", output="O",
                                      classes=list(range(3, 31)))
    assert model.reads == ("X", "Y")
    assert (model.table(arith) == arith.table("XY")).all()
