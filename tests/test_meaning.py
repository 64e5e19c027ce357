"""Results that say what they mean: equivalent models found from the tables, verdicts on IIA,
clique and tree rows, the health checks of stages 1 and 3 in the log and the report, and a
report that knows its network and task (no arithmetic wording in another task's report)."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evaluate_das
import make_report
import run_das
import train_gpt2
from dasgraph import paths, tasks
from dasgraph.analysis import verdicts
from dasgraph.causal import floors
from dasgraph.networks import readouts, tiny
from dasgraph.stages import evaluation_cells

TASK_FILE = Path(__file__).parent / "data" / "difference_task.py"
# words of the arithmetic task that must not reach another task's report
ARITHMETIC_WORDS = re.compile(r"arithmetic|X\+Y|X, Y, Z|\bXYZ?\b|\bYZ\b|6 positions|"
                              r"reproduce-boolean|results/gpt2|results/iia", re.I)


def test_a_bijection_of_a_model_is_equivalent_to_it(tmp_path):
    task = tasks.get(str(TASK_FILE))
    # NEG's P = -B mod 10 is a bijection of B: the same counterfactual on every pair
    assert np.array_equal(task.table("B"), task.table("NEG"))
    assert floors.task_equivalence_classes(task) == [["B", "NEG"]]
    evaluation_cells.write_floors(tmp_path, task)
    table = pd.read_csv(paths.disagreement_csv(tmp_path), index_col=0, keep_default_na=False)
    assert table["equivalent_to"].to_dict() == {"A": "", "B": "NEG", "NEG": "B", "D": ""}
    assert table.loc["B", "NEG"] == 0.0 and table.loc["A", "B"] == pytest.approx(0.9)


def test_models_within_the_tolerance_are_one_class_and_others_are_not():
    names = ["P", "Q", "R", "S"]
    matrix = pd.DataFrame([[0, 0.004, 0.5, 0.5], [0.004, 0, 0.009, 0.5],
                           [0.5, 0.009, 0, 0.5], [0.5, 0.5, 0.5, 0]], index=names, columns=names)
    # P-Q and Q-R are within 1 %: one class through Q; S differs from all
    assert floors.equivalence_classes(matrix) == [["P", "Q", "R"]]
    assert floors.equivalence_classes(matrix, tolerance=0.005) == [["P", "Q"]]


def _row(cm, layer, iia, lo, hi, n=10_000, random=0.1):
    return {"causal_model": cm, "layer": layer, "low_rank_dimension": 4, "iia": iia,
            "iia_ci_low": lo, "iia_ci_high": hi, "n_examples": n, "random_iia_mean": random,
            "random_iia_sd": 0.01}


def test_iia_verdicts_follow_the_stated_thresholds():
    floor = 0.1
    assert verdicts.iia_verdict(_row("A", 1, 0.12, 0.11, 0.13), floor) == verdicts.AT_CHANCE
    assert verdicts.iia_verdict(_row("A", 1, 0.9, 0.89, 0.91), floor) == verdicts.ABOVE
    assert verdicts.iia_verdict(_row("A", 1, 0.9, 0.89, 0.91, random=0.88), floor) == \
        verdicts.AT_CONTROL
    assert verdicts.iia_verdict(_row("A", 1, 0.9, 0.8, 1.0, n=50), floor) == \
        verdicts.TOO_FEW_PAIRS
    assert verdicts.iia_verdict(_row("D", 1, 0.8, 0.79, 0.81), floor, trivial=True,
                                accuracy=0.99) == verdicts.UNDER_TRAINED
    assert verdicts.iia_verdict(_row("D", 1, 0.96, 0.95, 0.97), floor, trivial=True,
                                accuracy=0.99) == verdicts.ABOVE


def test_separation_per_layer_from_intervals_and_equivalence():
    task = tasks.get(str(TASK_FILE))
    rows = [_row("A", 1, 0.95, 0.94, 0.96), _row("B", 1, 0.12, 0.11, 0.13),
            _row("NEG", 1, 0.11, 0.10, 0.12),                     # layer 1: A alone holds
            _row("A", 2, 0.60, 0.58, 0.62), _row("B", 2, 0.61, 0.59, 0.63),
            _row("NEG", 2, 0.40, 0.38, 0.42)]                     # layer 2: A, B overlap
    table = verdicts.with_verdicts(pd.DataFrame(rows), floors.floor_table(
        {n: task.table(n) for n in task.models}), task.trivial, 1.0)
    disagreement = floors.disagreement_matrix({n: task.table(n) for n in task.models})
    per_layer = verdicts.separation(verdicts.best_per_layer(table), task, disagreement,
                                    floors.equivalence_classes(disagreement)).set_index("layer")
    assert per_layer.loc[1, "holds"] == "A" and per_layer.loc[1, "at_chance"] == "B, NEG"
    assert per_layer.loc[1, "cannot_tell_apart"] == "B, NEG (identical counterfactuals)"
    assert not per_layer.loc[1, "tells_apart"]
    # B and NEG are equivalent even where their IIAs differ; A and B overlap, but each one's
    # P is the other's rest (A's table is B's transposed): one computation, not rivals
    assert per_layer.loc[2, "cannot_tell_apart"] == "B, NEG (identical counterfactuals)"
    # rivals: X and Y of arithmetic overlap at layer 2, XY and Z (complements) hold together
    arith = tasks.get("arithmetic")
    rows = [_row("X", 2, 0.60, 0.58, 0.62), _row("Y", 2, 0.61, 0.59, 0.63),
            _row("XY", 2, 0.99, 0.98, 1.0), _row("Z", 2, 0.99, 0.98, 1.0)]
    table = verdicts.with_verdicts(pd.DataFrame(rows), floors.floor_table(
        {n: arith.table(n) for n in arith.models}), arith.trivial, 1.0)
    disagreement = floors.disagreement_matrix({n: arith.table(n) for n in arith.models})
    per_layer = verdicts.separation(verdicts.best_per_layer(table), arith, disagreement, [])
    assert per_layer["cannot_tell_apart"].tolist() == [
        "X, Y (IIAs within each other's intervals)"]
    rows[1] = _row("Y", 2, 0.70, 0.68, 0.72)                  # apart: Y beyond X's interval
    table = verdicts.with_verdicts(pd.DataFrame(rows), None, arith.trivial, 1.0)
    assert verdicts.separation(verdicts.best_per_layer(table), arith, disagreement, []
                               )["tells_apart"].tolist() == [True]


def test_cliques_and_trees_are_rules_only_on_enough_above_chance():
    ok = {"status": "ok", "class_balance": {"n_positive": 40, "majority_baseline_accuracy": 0.5},
          "cv_accuracy": {"mean": 0.9, "std": 0.3}}
    assert verdicts.tree_verdict(ok, verdicts.ABOVE) == verdicts.RULE
    assert verdicts.tree_verdict(ok, verdicts.AT_CHANCE) == "graph at chance"
    few = {**ok, "class_balance": {"n_positive": 14, "majority_baseline_accuracy": 0.5}}
    assert verdicts.tree_verdict(few, verdicts.ABOVE) == "too few inputs"
    weak = {**ok, "cv_accuracy": {"mean": 0.53, "std": 0.1}}
    assert verdicts.tree_verdict(weak, verdicts.ABOVE) == "not above majority baseline"
    assert verdicts.clique_verdict(14, verdicts.ABOVE) == "too few inputs"
    assert verdicts.clique_verdict(400, verdicts.AT_CHANCE) == "graph at chance"
    assert verdicts.clipped(0.9, 0.3) == "0.600–1.000"        # an accuracy stays in 0..1


# --- the stages, for real, on the task file with the equivalent models -----------------------
@pytest.fixture(scope="module")
def own_task(tmp_path_factory):
    """An under-trained network (300 epochs: about 0.6 accuracy) and a DAS sweep too short for
    its trivial model, through the real stages; the warnings each stage logged."""
    root = tmp_path_factory.mktemp("difference")
    common = ["--results_path", str(root), "--task", str(TASK_FILE)]   # a folder runs no code
    handler = _Collect()
    logging.getLogger("dasgraph").addHandler(handler)
    try:
        assert train_gpt2.main([*common, "--epochs", "300",
                                "--lr", "0.01"]) == 0
        trained = list(handler.messages)
        assert run_das.main([*common, "--layers", "1", "--low_rank_dimensions", "1,8",
                             "--n_training", "512", "--executor", "debug"]) == 0
        assert evaluate_das.main([*common, "--n_testing", "400", "--random_draws", "0"]) == 0
        evaluated = handler.messages[len(trained):]     # run_das's and evaluate_das's
    finally:
        logging.getLogger("dasgraph").removeHandler(handler)
    assert make_report.main(common) == 0
    return root, trained, evaluated, paths.report_md(root).read_text()


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_equivalent_models_in_the_report(own_task):
    root, _, logged, text = own_task
    assert any(m.startswith("causal models B, NEG are equivalent") for m in logged), logged
    assert "equivalent_to" in paths.disagreement_csv(root).read_text()
    assert "**Equivalent models**" in text and "B ≡ NEG" in text
    assert "B, NEG (identical counterfactuals)" in text
    assert "tells the candidate models apart everywhere" not in text


def test_an_under_trained_network_is_a_warning_in_log_and_report(own_task):
    root, trained, _, text = own_task
    accuracy = json.loads((paths.gpt2_dir(root) / paths.METRICS).read_text())[
        "all_inputs_accuracy"]
    assert accuracy < verdicts.ACCURACY_TARGET
    assert any("below 95%" in m and "--epochs, now 300" in m for m in trained), trained
    section = text[text.index("## 1. The difference network"):text.index("## 2.")]
    assert "**Warning**" in section and "--epochs` above the 300 used" in section


def test_a_trivial_model_short_of_the_accuracy_is_flagged_in_log_and_report(own_task):
    _, _, evaluated, text = own_task
    # its best k (8; k = 1 is lower still) falls short of the accuracy (about 0.6)
    flagged = [m for m in evaluated if m.startswith("trivial model D at layer 1, k = 8 (its best")]
    assert flagged and "k too small or DAS under-trained" in flagged[0], evaluated
    assert "trivial model D at layer 1, k = 8 (its best k): IIA" in text
    assert re.search(r"\| D \| 1 \| \d+ \| [0-9.]+ \|.*\| under-trained \|", text)


def test_another_tasks_report_has_no_arithmetic_wording(own_task):
    _, _, _, text = own_task
    assert not ARITHMETIC_WORDS.findall(text), ARITHMETIC_WORDS.findall(text)


def test_an_own_model_report_shows_its_network_and_no_arithmetic(tmp_path):
    """A tiny random Llama with the task's own tokenizer, through the DAS stages and the report:
    the report names the model the cells ran on, its size, readout and accuracy."""
    task = tasks.get(str(TASK_FILE))
    model = tmp_path / "llama"
    tiny.build("llama", readouts.CLASSIFIER, n_layer=1, width=16, n_head=2,
               vocab_size=len(task.vocab) + 1, num_labels=task.n_classes).save_pretrained(model)
    task.build_tokenizer().save_pretrained(str(model))
    root = tmp_path / "results"
    common = ["--results_path", str(root), "--model_path", str(model)]
    assert run_das.main([*common, "--task", str(TASK_FILE), "--layers", "1",
                         "--low_rank_dimensions", "2", "--n_training", "256",
                         "--executor", "debug"]) == 0
    assert evaluate_das.main([*common, "--task", str(TASK_FILE), "--n_testing", "300",
                              "--random_draws", "1"]) == 0
    assert make_report.main(["--results_path", str(root), "--task", str(TASK_FILE)]) == 0
    text = paths.report_md(root).read_text()
    network = text[text.index("### Network"):text.index("### DAS")]
    assert "| architecture | LlamaForSequenceClassification |" in network
    assert f"| model | {model} |" in network
    assert "| readout | classifier head, 10 classes |" in network
    shown = re.search(r"\| task accuracy \| ([0-9.]+) on the task's 100 inputs", network)[1]
    # the known answer: transformers' own forward of the saved model on the task's prompts
    import torch
    from transformers import AutoModelForSequenceClassification

    llama = AutoModelForSequenceClassification.from_pretrained(model).eval()
    with torch.no_grad():
        predicted = llama(task.encode(task.build_tokenizer())).logits.argmax(-1).numpy()
    assert float(shown) == pytest.approx((predicted == task.labels).mean(), abs=1e-4)
    assert "no trained model" not in text
    assert not ARITHMETIC_WORDS.findall(text), ARITHMETIC_WORDS.findall(text)
