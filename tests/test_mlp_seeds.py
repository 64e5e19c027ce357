"""The MLP experiments over run seeds (--seeds N): the statistics against hand
computations, and the scripts end to end at tiny sizes: the first seed is the single-seed run,
every other seed is what --seed S alone gives, re-runs skip, and the report shows the spread."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from dasgraph import paths
from dasgraph.analysis import seeds as seed_stats
from dasgraph.report import section_mlp
from dasgraph.report.markdown import Page
from dasgraph.scripts import pattern_matching_das as PATTERN
from dasgraph.scripts import reproduce_das_experiment as HIERARCHICAL
from dasgraph.scripts import wrong_causal_graph_ablation_study as WRONG_GRAPH
from test_mlp import TINY

SEED = 3                     # TINY's --seed
HIERARCHICAL_TINY = [*TINY, "--baseline_sample", "60"]


# --- the statistics, by hand -------------------------------------------------------------------
def test_paired_comparison_by_hand():
    """Differences 1, 2, 3, 4, -1 (first - second at five seeds)."""
    first = {10: 2.0, 11: 3.0, 12: 4.0, 13: 5.0, 14: 0.0}
    second = {10: 1.0, 11: 1.0, 12: 1.0, 13: 1.0, 14: 1.0}
    result = seed_stats.paired(first, second, seed=0)
    d = result["difference"]
    assert d["per_seed"] == {"10": 1.0, "11": 2.0, "12": 3.0, "13": 4.0, "14": -1.0}
    assert d["mean"] == pytest.approx(1.8) and (d["min"], d["max"]) == (-1.0, 4.0)
    # squared deviations 0.64 + 0.04 + 1.44 + 4.84 + 7.84 = 14.8, over n - 1 = 4
    sd = math.sqrt(14.8 / 4)
    assert d["sd"] == pytest.approx(sd)
    assert d["wins"] == {"das": 4, "neurons": 1, "ties": 0}
    assert result["das"]["mean"] == pytest.approx(2.8) and result["neurons"]["sd"] == 0.0
    # sign flips: the 32 sums are 11 - 2 S, S the sum of the flipped values; |11 - 2 S| >= 9
    # needs S <= 1 (flip nothing, or one of the two 1s) or S >= 10 (their complements): 6 of 32
    assert result["test"]["p"] == pytest.approx(6 / 32)
    assert result["test"]["smallest_possible_p"] == pytest.approx(2 / 32)
    assert result["significant"] is False
    assert result["paired_t_test"]["t"] == pytest.approx(1.8 / (sd / math.sqrt(5)))
    assert result["paired_t_test"]["df"] == 4
    assert d["effect_size_d"] == pytest.approx(1.8 / sd)
    low, high = d["bootstrap_ci_95"]
    assert -1.0 <= low < 1.8 < high <= 4.0
    assert seed_stats.paired(first, second, seed=0) == result          # seeded: the same again
    assert "p = 0.1875, not significant at 0.05" in result["statement"]
    assert "cannot go below p = 0.0625" in result["statement"]


def test_six_seeds_all_one_way_is_significant():
    """Six positive differences: only "all +" and "all -" are as extreme, p = 2 / 64."""
    result = seed_stats.paired({s: 1.0 + (s + 1) / 10 for s in range(6)}, {s: 1.0 for s in range(6)},
                               seed=1)
    assert result["test"]["p"] == pytest.approx(2 / 64)
    assert result["significant"] is True
    assert "cannot go below" not in result["statement"]


def test_ties_and_power():
    result = seed_stats.paired({1: 0.9, 2: 0.8}, {1: 0.9, 2: 0.8}, seed=0)
    assert result["difference"]["wins"]["ties"] == 2 and result["test"]["p"] == 1.0
    assert result["paired_t_test"] == {"t": None, "df": 1, "p": None}
    assert result["difference"]["bootstrap_ci_95"] == [0.0, 0.0]
    # no effect: the t-test rejects exactly alpha of the time
    assert seed_stats.t_power(5, 0.0) == pytest.approx(seed_stats.ALPHA)
    assert seed_stats.t_power(5, 1.0) < seed_stats.t_power(20, 1.0)
    assert seed_stats.seeds_for_power(1.0) == next(
        n for n in range(2, 100) if seed_stats.t_power(n, 1.0) >= 0.8)
    with pytest.raises(ValueError):
        seed_stats.paired({1: 0.9}, {1: 0.8}, seed=0)


# --- the scripts, tiny -------------------------------------------------------------------------
def read_metrics(directory) -> dict:
    return json.loads((directory / paths.METRICS).read_text())


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    assert HIERARCHICAL.main([*HIERARCHICAL_TINY, "--results_path", str(root), "--seeds", "2"]) == 0
    return paths.mlp_dir(root, "hierarchical_equality")


def test_two_seeds_end_to_end(two_seeds):
    out = two_seeds
    for name in ("iia_over_seeds.csv", "das_vs_neurons_over_seeds.png", "layer_0/metrics.json",
                 f"seed_{SEED + 1}/model/config.json", f"seed_{SEED + 1}/layer_0/das/config.json"):
        assert (out / name).is_file(), name
    over = read_metrics(out)["over_seeds"]
    assert over["seeds"] == [SEED, SEED + 1]
    assert over["folders"] == {str(SEED): ".", str(SEED + 1): f"seed_{SEED + 1}"}
    cells = {SEED: read_metrics(out / "layer_0"), SEED + 1: read_metrics(out / f"seed_{SEED + 1}" / "layer_0")}
    assert cells[SEED + 1]["settings"]["seed"] == SEED + 1
    table = pd.read_csv(out / "iia_over_seeds.csv")
    assert len(table) == 2 * 2 * 4                      # seeds x methods x interventions
    for seed, cell in cells.items():
        for method, key in (("das", "das"), ("neurons", "neuron_baseline")):
            rows = table[(table["seed"] == seed) & (table["method"] == method)]
            assert rows.set_index("intervention")["iia"].to_dict() == pytest.approx(cell[key]["iia"])
            assert over[method]["per_seed"][str(seed)] == cell[key]["iia"]["all"]
        assert over["difference"]["per_seed"][str(seed)] == pytest.approx(
            cell["das"]["iia"]["all"] - cell["neuron_baseline"]["iia"]["all"])
    assert over["test"]["smallest_possible_p"] == 0.5 and over["significant"] is False
    accuracy = read_metrics(out / f"seed_{SEED + 1}" / "model")["test_accuracy"]
    assert over["mlp_test_accuracy"]["per_seed"][str(SEED + 1)] == accuracy


def without_wall_times(record):
    if isinstance(record, dict):
        return {k: without_wall_times(v) for k, v in record.items() if k != "wall_time_s"}
    return record


def with_seed(argv: list[str], seed: int) -> list[str]:
    i = argv.index("--seed")
    return [*argv[:i + 1], str(seed), *argv[i + 2:]]


def test_first_seed_is_the_single_seed_run_and_each_seed_is_its_run_alone(two_seeds, tmp_path):
    alone = {}
    for seed in (SEED, SEED + 1):
        root = tmp_path / str(seed)
        assert HIERARCHICAL.main([*with_seed(HIERARCHICAL_TINY, seed), "--results_path", str(root)]) == 0
        alone[seed] = paths.mlp_dir(root, "hierarchical_equality")
    # the first seed: the same files as the single-seed run (wall times apart)
    names = ["iia.csv", "das_vs_neurons.png", "model/model.safetensors",
             *(p.relative_to(alone[SEED]) for p in (alone[SEED] / "layer_0" / "das").iterdir())]
    for name in names:
        assert (two_seeds / name).read_bytes() == (alone[SEED] / name).read_bytes(), name
    single, multi = read_metrics(alone[SEED]), read_metrics(two_seeds)
    assert "over_seeds" not in single
    del multi["over_seeds"]
    assert without_wall_times(multi) == without_wall_times(single)
    assert not (alone[SEED] / "iia_over_seeds.csv").exists()
    # the second seed inside the multi-seed run: --seed S+1 alone, number for number
    inside = read_metrics(two_seeds / f"seed_{SEED + 1}" / "layer_0")
    own = read_metrics(alone[SEED + 1] / "layer_0")
    for key in ("settings", "das", "neuron_baseline"):
        assert inside[key] == own[key], key
    assert read_metrics(alone[SEED + 1])["das"] == inside["das"]


def test_rerun_skips_and_more_seeds_train_only_the_new_one(two_seeds, tmp_path, capsys):
    root = two_seeds.parent.parent
    before = (two_seeds / "metrics.json").stat().st_mtime_ns
    argv = [*HIERARCHICAL_TINY, "--results_path", str(root)]
    assert HIERARCHICAL.main([*argv, "--seeds", "2"]) == 0
    assert (two_seeds / "metrics.json").stat().st_mtime_ns == before
    # one seed: the finished summary is kept as it is
    assert HIERARCHICAL.main(argv) == 0
    assert (two_seeds / "metrics.json").stat().st_mtime_ns == before
    capsys.readouterr()
    cells = [two_seeds / "model", two_seeds / f"seed_{SEED + 1}" / "model"]
    stamps = [(c / "metrics.json").stat().st_mtime_ns for c in cells]
    assert HIERARCHICAL.main([*argv, "--seeds", "3"]) == 0
    assert [(c / "metrics.json").stat().st_mtime_ns for c in cells] == stamps
    log = capsys.readouterr()
    assert log.err.count("skipped") + log.out.count("skipped") == 2       # the two finished cells
    over = read_metrics(two_seeds)["over_seeds"]
    assert over["seeds"] == [SEED, SEED + 1, SEED + 2]
    assert len(pd.read_csv(two_seeds / "iia_over_seeds.csv")) == 3 * 2 * 4


def test_report_shows_the_spread_and_the_test(two_seeds):
    page = Page(two_seeds.parent.parent)
    section_mlp(page)
    text = page.text()
    over = read_metrics(two_seeds)["over_seeds"]
    assert "| run seed | DAS | best neuron split | DAS - neurons |" in text
    assert f"| seed {SEED + 1} | {over['das']['per_seed'][str(SEED + 1)]:.4f} |" in text
    assert over["statement"] in text
    assert "das_vs_neurons_over_seeds.png" in text


def test_pattern_matching_over_seeds(tmp_path):
    argv = [*TINY, "--layers", "0", "--results_path", str(tmp_path), "--seeds", "2"]
    assert PATTERN.main(argv) == 0
    out = paths.mlp_dir(tmp_path, "pattern_matching")
    assert (out / "iia_per_layer_over_seeds.png").is_file()
    over = read_metrics(out)["over_seeds"]
    cells = [read_metrics(out / "layer_0"), read_metrics(out / f"seed_{SEED + 1}" / "layer_0")]
    assert over["layers"]["0"]["per_seed"] == {str(SEED): cells[0]["das"]["iia"]["all"],
                                               str(SEED + 1): cells[1]["das"]["iia"]["all"]}
    assert over["layers"]["0"]["sd"] == pytest.approx(
        np.std([c["das"]["iia"]["all"] for c in cells], ddof=1))
    page = Page(tmp_path)
    section_mlp(page)
    assert "| layer 0 |" in page.text()


def test_wrong_causal_graph_over_seeds(tmp_path):
    """Each seed's cells are that seed's run alone; the summary holds every entry's spread and
    ABAB/ABAB against the highest other entry, per network; the report shows both."""
    argv = [*TINY, "--results_path", str(tmp_path / "multi"), "--networks", "iit"]
    assert WRONG_GRAPH.main([*argv, "--seeds", "2"]) == 0
    out = paths.mlp_dir(tmp_path / "multi", "wrong_causal_graph")
    assert (out / "diagonal_over_seeds.png").is_file()
    cells = {seed: {m: read_metrics(folder / "iit" / f"trained_on_{m}")
                    for m in ("ABAB", "AABB", "ABBA")}
             for seed, folder in ((SEED, out), (SEED + 1, out / f"seed_{SEED + 1}"))}
    over = read_metrics(out)["over_seeds"]
    assert over["seeds"] == [SEED, SEED + 1]
    part = over["networks"]["iit"]
    for trained in ("ABAB", "AABB", "ABBA"):
        for tested in ("ABAB", "AABB", "ABBA"):
            values = [cells[s][trained]["tested_on"][tested]["iia"]["all"] for s in cells]
            entry = part["iia_matrix"][trained][tested]
            assert entry["mean"] == pytest.approx(np.mean(values))
            assert entry["sd"] == pytest.approx(np.std(values, ddof=1))
    for seed, by_model in cells.items():
        entries = {(t, s): m["tested_on"][s]["iia"]["all"] for t, m in by_model.items()
                   for s in m["tested_on"]}
        right = entries.pop(("ABAB", "ABAB"))
        assert part["comparison"]["difference"]["per_seed"][str(seed)] == pytest.approx(
            right - max(entries.values()))
    table = pd.read_csv(out / "iia_over_seeds.csv")
    assert len(table) == 2 * 3 * 3 * 4           # seeds x trained x tested x interventions
    assert set(table["network"]) == {"iit"}
    # the second seed is --seed S+1 alone
    alone = tmp_path / "alone"
    single = with_seed([*TINY, "--results_path", str(alone), "--networks", "iit"], SEED + 1)
    assert WRONG_GRAPH.main(single) == 0
    for model, inside in cells[SEED + 1].items():
        own = read_metrics(paths.mlp_dir(alone, "wrong_causal_graph") / "iit" / f"trained_on_{model}")
        assert (own["settings"], own["tested_on"]) == (inside["settings"], inside["tested_on"])
    page = Page(tmp_path / "multi")
    section_mlp(page)
    text = page.text()
    assert part["comparison"]["statement"] in text
    abab = part["iia_matrix"]["ABAB"]["ABAB"]
    assert f"{abab['mean']:.4f} ± {abab['sd']:.4f}" in text
