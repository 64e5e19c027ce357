"""The report: every section and key table from a synthetic results folder, links only to
figures that exist, missing stages named, and the Markdown helpers."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import fake_results
import make_report
from dasgraph.report import markdown
from dasgraph import collect, paths, report, tasks
from dasgraph.analysis import trees
from dasgraph.plots import visualize

ARITH = tasks.get("arithmetic")

SECTIONS = ["## Settings", "### Model", "### Training (stage 1)", "### DAS (stage 2)",
            "### Code and versions", "## 1. The arithmetic network", "## 2. Causal models",
            "## 3. IIA per causal model", "### Sanity check", "### This run beside the published",
            "## 4. IIA graphs", "## 5. Cliques", "## 6. Rules", "## 7. Combined causal models",
            "## 8. MLP experiments", "## 11. The paper's boolean task"]
LINK = re.compile(r"\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """A full results folder with two figures drawn (training, empirical), and its report."""
    root = fake_results.build(tmp_path_factory.mktemp("report_results"))
    saver = visualize.Saver(root)
    for experiment in ("training", "empirical"):
        for name, fig in visualize.figures(experiment, root):
            saver.save(name, fig)
    assert make_report.main(["--results_path", str(root)]) == 0
    return root, paths.report_md(root).read_text()


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n## ", start + 1)
    return text[start:nxt if nxt > 0 else None]


def test_every_section_is_there_in_order(full_report):
    _, text = full_report
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    missing = [l for l in text.splitlines() if "Not available" in l
               and "reproduce-thesis-graphs" not in l       # that section: test_thesis_graphs.py
               and "reproduce-boolean" not in l]             # that one: test_boolean_task.py
    assert len(missing) == 1 and "mlp/pattern_matching" in missing[0]   # the one MLP experiment left out


def test_settings_come_from_the_run_files(full_report):
    _, text = full_report
    settings = _section(text, "## Settings")
    assert "| n_embd | 16 |" in settings and "| n_layer | 3 |" in settings
    assert "| lr | 0.003 |" in settings                      # training config, as written
    assert "| n_training | 512 |" in settings                 # a DAS cell's metrics.json
    assert "run_das.py --low_rank_dimensions 4,16" in settings
    assert "| torch |" in settings and "git commit" in settings


def test_iia_tables_pivot_iia_csv(full_report):
    _, text = full_report
    iia = _section(text, "## 3. IIA")
    for k in fake_results.KS:
        assert f"**k = {k}**" in iia
    assert "| causal model | L0 | L1 | L2 | L3 |" in iia
    row = [l for l in iia.splitlines() if l.startswith("| XY |")][0]   # first table: k = 4
    expected = [fake_results.iia_value("XY", L, 4, "XY") for L in fake_results.LAYERS]
    assert row == "| XY | " + " | ".join(f"{v:.3f}" for v in expected) + " |"
    # the cross matrix at the k nearest width/3 (16/3 -> 4): 9 trained/tested rows
    cross = iia[iia.index("### Sanity check"):]
    assert "At k = 4" in cross and "| trained on | tested on | L0 |" in cross
    assert len([l for l in cross.splitlines() if re.match(r"\| (XY|XZ|YZ) \| (XY|XZ|YZ) \|", l)]) == 9


def test_floors_identifiability_and_verdicts(full_report):
    _, text = full_report
    part = _section(text, "## 3. IIA")
    part = part[part.index("### Chance floors"):part.index("### Sanity check")]
    xy = [l for l in part.splitlines() if l.startswith("| XY | 0.067")]
    assert xy and "0.100" in xy[0]                       # unchanged 6.7 %, copy source 10 %
    # the fake IIA is the same for every model at a layer (0.95 - 0.15 per layer, ± 0.02), so
    # no layer tells them apart; at layer 0 the random subspace (0.9 + 2 x 0.01) matches it
    assert "IIA **cannot tell** the candidate models apart at any layer" in part
    layers = {l.split("|")[1].strip(): l for l in part.splitlines() if re.match(r"\| \d \| ", l)}
    assert "nothing holds" in layers["0"]
    assert "XY, XZ, YZ, X, Y, Z (IIAs within each other's intervals)" in layers["1"]
    verdict = {tuple(c.strip() for c in l.split("|")[1:3]): l.split("|")[-2].strip()
               for l in part.splitlines() if re.match(r"\| [A-Z]+ \| \d \| \d+ \| 0\.", l)}
    assert verdict[("XY", "0")] == "not above its control"
    assert verdict[("XY", "1")] == "above floor and control"
    # the trivial model (0.80 at layer 1) against the network's 0.88: flagged, with the cells
    assert verdict[("XYZ", "1")] == "under-trained"
    assert "trivial model XYZ at layer 1, k = 16 (its best k): IIA 0.810 against the " \
        "network's accuracy 0.880: k too small or DAS under-trained" in part
    assert "at layer 1, k = 4" not in part           # a layer is flagged at its best k only


def test_graph_cliques_trees_combination_mlp_tables(full_report):
    root, text = full_report
    graph = _section(text, "## 4. IIA graphs")
    assert "published: pairs IIA 1" in graph
    xy = [l for l in graph.splitlines() if l.startswith("| XY | 2 | 4 |")][0]
    assert xy.endswith("| 0.736 | 0.849 |")                         # published XY beside ours
    cliques = _section(text, "## 5. Cliques")
    assert "### RemovalHeuristic" in cliques and "| XY | 2 | 4 | 2 | 20 |" in cliques
    rules = _section(text, "## 6. Rules")
    xy_tree = [l for l in rules.splitlines() if l.startswith("| XY |")][0]
    assert "X+Y+Z" in xy_tree and "0.970" in xy_tree
    assert "no_cliques" in rules                                     # the degenerate record
    combo = _section(text, "## 7. Combined")
    assert "**layer 2, k 4, rule mean_iia**" in combo and "**layer 2, k 4, rule largest_set**" in combo
    assert "published λ=1.0" in combo
    mlp = _section(text, "## 8. MLP")
    assert "MLP test accuracy 0.9990" in mlp
    assert "| method | WX | YZ | all | both |" in mlp and "| das | 0.9700 | 0.9600 | 0.9700 | 0.9700 |" in mlp
    assert "mlp/hierarchical_equality/das_vs_neurons.png" in mlp
    assert f"Run `mlp/pattern_matching_das.py --results_path {root}` first" in mlp   # its folder
    # the ablation: one trained-on x tested-on matrix per network, and each network's accuracy
    assert "| network | trained on \\ tested on | ABAB | AABB | ABBA |" in mlp
    assert "| plain | ABAB | 0.8100 | 0.5600 | 0.5600 |" in mlp
    assert "| iit | ABAB | 0.9900 | 0.5600 | 0.5600 |" in mlp
    assert "Network iit: MLP test accuracy 0.9995" in mlp and "planted neuron split's test IIA 0.9980" in mlp


def test_links_point_only_to_files_that_exist(full_report):
    root, text = full_report
    links = LINK.findall(text)
    assert links and all((root / link).is_file() for link in links), \
        [l for l in links if not (root / l).is_file()]
    assert f"plots/{paths.TRAINING_PNG}" in links and f"plots/{paths.EMPIRICAL_PNG}" in links
    assert not any(paths.HEATMAP_PNG in l for l in links)          # not drawn: not linked ...
    assert "visualizations.py --experiment heatmap" in text          # ... but how to draw it


def test_empty_folder_names_every_missing_stage(tmp_path):
    assert make_report.main(["--results_path", str(tmp_path)]) == 0
    text = paths.report_md(tmp_path).read_text()
    for heading in SECTIONS:
        if heading not in ("### Sanity check", "### This run beside the published", "### Model",
                           "### Training (stage 1)"):
            assert heading in text, heading
    for stage in ("train_gpt2.py", "src/run_das.py", "evaluate_das.py",
                  "disentangle_causal_models.py", "analyse_graphs.py", "classification.py",
                  "combine_causal_models.py", "reproduce_das_experiment.py"):
        assert f"Run `{stage} --results_path {tmp_path}` first" in text, stage   # this folder
    assert not LINK.findall(text)
    assert (tmp_path / "REPORT.md.run.json").exists()


def test_bad_flag_exits_2(tmp_path, capsys):
    assert make_report.main(["--results_path", str(tmp_path), "--no_such_flag"]) == 2
    assert "--no_such_flag" in capsys.readouterr().err
    assert not paths.report_md(tmp_path).exists()


# --- helpers ----------------------------------------------------------------------------------
def test_markdown_table_formats_and_escapes():
    frame = pd.DataFrame({"name": ["a|b", "c"], "value": [0.12345, np.nan], "n": [1, 2]})
    assert markdown.markdown_table(frame).splitlines() == [
        "| name | value | n |", "|---|---:|---:|", "| a\\|b | 0.123 | 1 |", "| c | – | 2 |"]


def test_clique_rules_merge_bounds_along_a_path():
    leaf = lambda inside: {"leaf": True, "prediction": "in a clique" if inside else "outside cliques"}
    rules = {"feature": "X+Y+Z", "threshold": 14.5, "condition": "X+Y+Z <= 14",
             "if_true": {"feature": "X+Y+Z", "threshold": 13.5, "condition": "X+Y+Z <= 13",
                         "if_true": leaf(False),
                         "if_false": {"feature": "X_even", "threshold": 0.5, "condition": "not X_even",
                                      "if_true": leaf(True), "if_false": leaf(True)}},
             "if_false": {"feature": "Y_div3", "threshold": 0.5, "condition": "not Y_div3",
                          "if_true": leaf(False), "if_false": leaf(True)}}
    # both children of the X_even split say "in a clique": that split is no test
    assert report.clique_rules(rules, trees.Features.of(ARITH).binary) == ["X+Y+Z = 14", "X+Y+Z ≥ 15 and Y_div3"]


def test_one_view_puts_every_control_beside_the_trained_iia(full_report):
    _, text = full_report
    part = _section(text, "## 3. IIA")
    part = part[part.index("### One view"):]
    assert "layer 0, k = 4" in part.splitlines()[0]      # best non-trivial layer, reference k
    xy = [l for l in part.splitlines() if l.startswith("| XY |")][0].split("|")
    cells = [c.strip() for c in xy[1:-1]]
    assert cells[1] == f"{fake_results.iia_value('XY', 0, 4, 'XY'):.3f}"
    assert cells[4] == "0.900 ± 0.010" and cells[5] == "–"   # random subspace; no random net
    assert cells[6] == "0.067" and cells[7] == "0.100"


def test_one_view_shows_the_random_network_beside_its_own_floor(tmp_path):
    """With controls/random_init evaluated, the one view gives the random network's IIA at the
    same cell and, in brackets, what that network scores un-intervened on the same labels."""
    root = fake_results.build(tmp_path / "results")
    iia = pd.read_csv(paths.iia_csv(root))
    net_root = paths.control_root(root, "random_init")
    net_root.mkdir(parents=True)
    net = iia.copy()
    net["iia"] = 0.04 + 0.001 * np.arange(len(net))        # every row its own number
    net.to_csv(paths.iia_csv(net_root), index=False)
    floors = pd.DataFrame({"causal_model": list(ARITH.models), "unchanged": 0.031,
                           "copy_source": 0.029})
    floors.to_csv(paths.floors_csv(net_root), index=False)
    layer, k, cell = collect.one_view(root, iia, tasks.for_results(root))
    expected = net[(net.causal_model == "XY") & (net.test_causal_model == "XY")
                   & (net.layer == layer) & (net.low_rank_dimension == k)]["iia"].item()
    xy = cell.set_index("causal_model").loc["XY"]
    assert xy["random_network_iia"] == pytest.approx(expected)
    assert xy["random_network_floor"] == pytest.approx(0.031)
    assert make_report.main(["--results_path", str(root)]) == 0
    part = paths.report_md(root).read_text()
    part = part[part.index("### One view"):]
    row = [l for l in part.splitlines() if l.startswith("| XY |")][0]
    assert f"| {expected:.3f} (0.031) |" in row
