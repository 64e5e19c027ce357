"""Chance floors and disagreement from the counterfactual tables, against brute-force counts."""
from __future__ import annotations

import itertools

import pandas as pd
import pytest

from dasgraph.causal import floors
from dasgraph.tasks import arithmetic as task
from dasgraph import tasks

ARITH = tasks.get("arithmetic")

INPUTS = [tuple(int(v) for v in row) for row in task.TASK.inputs]


def _output(model: str, base, source) -> int:
    """The counterfactual sum written out per model, independently of causal_models."""
    take = {"XY": "XY", "XZ": "XZ", "YZ": "YZ", "X": "X", "Y": "Y", "Z": "Z", "XYZ": "XYZ"}[model]
    return sum(s if v in take else b for v, b, s in zip("XYZ", base, source))


@pytest.mark.parametrize("model", ["XY", "Z", "XYZ"])
def test_floors_equal_a_brute_force_count_over_all_pairs(model):
    unchanged = copy = 0
    for base, source in itertools.product(INPUTS, INPUTS):
        cf = _output(model, base, source)
        unchanged += cf == sum(base)
        copy += cf == sum(source)
    n = len(INPUTS) ** 2
    got = floors.floors(model, ARITH.table(model))
    assert got["unchanged"] == pytest.approx(unchanged / n, abs=1e-12)
    assert got["copy_source"] == pytest.approx(copy / n, abs=1e-12)


def test_published_floors_and_disagreement_by_brute_force():
    # the expected numbers: 6.7 % unchanged and 10 % copy for an arithmetic model
    assert floors.floors("XY", ARITH.table("XY"))["unchanged"] == pytest.approx(0.067)
    assert floors.floors("XY", ARITH.table("XY"))["copy_source"] == pytest.approx(0.10)
    m = floors.disagreement_matrix({n: ARITH.table(n) for n in ["XY", "X"]})
    differ = sum(_output("XY", b, s) != _output("X", b, s)
                 for b, s in itertools.product(INPUTS[::7], INPUTS))
    # the full matrix entry, against a brute-force count over every 7th base and all sources
    assert m.loc["XY", "X"] == m.loc["X", "XY"]
    assert abs(m.loc["XY", "X"] - differ / (len(INPUTS[::7]) * len(INPUTS))) < 0.01
    assert m.loc["XY", "XY"] == 0


def test_indistinguishable_layers_flags_rivals_not_complements():
    d = floors.disagreement_matrix({n: ARITH.table(n) for n in {n: ARITH.table(n) for n in ARITH.models}})
    own = pd.DataFrame([
        # layer 0: everything aligns -> flagged; layer 2: XY and Z only (complements) -> not
        *[{"causal_model": m, "layer": 0, "low_rank_dimension": 5, "iia": 0.99} for m in d.index],
        {"causal_model": "XY", "layer": 2, "low_rank_dimension": 5, "iia": 0.99},
        {"causal_model": "Z", "layer": 2, "low_rank_dimension": 5, "iia": 0.98},
        {"causal_model": "X", "layer": 2, "low_rank_dimension": 5, "iia": 0.11},
        {"causal_model": "XYZ", "layer": 2, "low_rank_dimension": 5, "iia": 0.99},
    ])
    flagged = floors.indistinguishable_layers(own, d, ARITH)
    assert flagged["layer"].tolist() == [0]
    assert "XYZ" not in flagged.loc[0, "models"] and flagged.loc[0, "max_disagreement"] > 0.9
    assert floors.complementary(ARITH.table("XY"), ARITH.table("Z"))
    assert not floors.complementary(ARITH.table("XY"), ARITH.table("X"))


def test_writing_the_same_floors_again_leaves_the_files_alone(tmp_path):
    # a second make reproduce must not make the plots look stale
    from dasgraph import paths
    from dasgraph.stages.evaluation_cells import write_floors

    assert write_floors(tmp_path, ARITH) == [paths.floors_csv(tmp_path), paths.disagreement_csv(tmp_path)]
    before = [p.stat().st_mtime_ns for p in (paths.floors_csv(tmp_path),
                                             paths.disagreement_csv(tmp_path))]
    assert write_floors(tmp_path, ARITH) == []
    assert [p.stat().st_mtime_ns for p in (paths.floors_csv(tmp_path),
                                           paths.disagreement_csv(tmp_path))] == before
