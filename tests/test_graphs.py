"""IIA graphs: equal to pair-by-pair pyvene evaluation; shape, symmetry, node order; CLI."""
import json

import numpy as np
import pytest
import torch

import disentangle_causal_models
import run_das
from dasgraph.causal import models as causal_models
from dasgraph.interventions import das
from dasgraph.analysis import graphs
from dasgraph import paths
from dasgraph.tasks import arithmetic as task
from dasgraph.networks.subject import load_subject
from dasgraph import tasks

ARITH = tasks.get("arithmetic")


@pytest.fixture(scope="module")
def graph_results(tiny_results, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("graph_results")
    shutil.copytree(paths.gpt2_dir(tiny_results), paths.gpt2_dir(root))
    assert run_das.main(["--results_path", str(root), "--causal_models", "XY,X",
                         "--layers", "1", "--low_rank_dimensions", "6", "--n_training", "1024",
                         "--n_testing", "200", "--device", "cpu", "--workers", "1"]) == 0
    assert disentangle_causal_models.main(["--results_path", str(root), "--device", "cpu",
                                           "--export", "node_link"]) == 0
    return root


def test_graph_equals_pair_by_pair_pyvene(graph_results):
    graph = graphs.load_graph(graph_results, "XY", 1, 6)
    subject = load_subject(str(paths.gpt2_dir(graph_results)))
    pv = das.load_intervenable(paths.das_cell_dir(graph_results, "XY", 1, 6), subject.model)
    table = causal_models.table_of("XY", ARITH)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 1000, 120), rng.integers(0, 1000, 120)
    i, j = i[i != j], j[i != j]
    with torch.no_grad():
        ij = das.pyvene_logits(pv, subject.ids, torch.as_tensor(i), torch.as_tensor(j)).argmax(-1)
        ji = das.pyvene_logits(pv, subject.ids, torch.as_tensor(j), torch.as_tensor(i)).argmax(-1)
    expected = ((ij.numpy() == table[i, j]).astype(np.float32) +
                (ji.numpy() == table[j, i]).astype(np.float32)) / 2
    assert np.array_equal(graph[i, j], expected)
    assert set(np.unique(expected)) <= {0.0, 0.5, 1.0}


def test_the_matrix_does_not_depend_on_the_batch(graph_results):
    """The CPU batch is sized against glibc's mmap threshold; the graph must not move with it:
    one base a batch (1 or 999 pairs: whole bases only), the default and the GPU's row count
    give the same matrix."""
    subject = load_subject(str(paths.gpt2_dir(graph_results)))
    intervention = das.intervention_of(das.load_intervenable(
        paths.das_cell_dir(graph_results, "XY", 1, 6), subject.model))
    R = das.rotation(intervention).detach()
    table = torch.as_tensor(causal_models.table_of("XY", ARITH))
    states = subject.states[1]
    rows = graphs.batch_rows(states)
    assert 1000 <= rows and rows * states.shape[1] * 4 * states.shape[2] * 4 <= graphs.CPU_BATCH_BYTES
    assert graphs.batch_rows(states, "cuda") == graphs.GPU_BATCH_ROWS
    runs = [graphs.correctness_matrix(subject.lean, states, 1, R, table, chunk=chunk,
                                      progress=False) for chunk in (None, 1, 999, 8000)]
    assert all(torch.equal(runs[0], other) for other in runs[1:])
    saved = graphs.load_graph(graph_results, "XY", 1, 6)
    assert np.array_equal(graphs.graph_from_correctness(runs[0].numpy()), saved)


def test_graph_is_symmetric_with_zero_diagonal_in_node_order(graph_results):
    graph = graphs.load_graph(graph_results, "X", 1, 6)
    assert graph.shape == (1000, 1000) and graph.dtype == np.float32
    assert np.array_equal(graph, graph.T) and not np.diag(graph).any()
    meta = json.loads(paths.graph_meta(graph_results, "X", 1, 6).read_text())
    assert meta["mean_pair_iia"] == pytest.approx(
        float(graph[np.triu_indices_from(graph, k=1)].mean()), abs=1e-6)   # this graph's
    assert paths.graph_export(graph_results, "X", 1, 6, "node_link").exists()


def test_graph_rows_are_node_ids_in_the_order_its_json_states(graph_results):
    """Row i is the input X, Y, Z with i = 100(X-1) + 10(Y-1) + (Z-1), as the .json says.
    Checked against pyvene on prompts written here from that formula (not from the task's
    own input list), with the X model's counterfactual worked out here too."""
    from transformers import AutoTokenizer

    meta = json.loads(paths.graph_meta(graph_results, "X", 1, 6).read_text())
    assert meta["node_order"] == "node id = row of task arithmetic's inputs (itertools.product over X, Y, Z)"
    assert meta["task"] == "arithmetic"
    graph = graphs.load_graph(graph_results, "X", 1, 6)
    nodes = np.arange(1000)
    x, y, z = nodes // 100 + 1, nodes // 10 % 10 + 1, nodes % 10 + 1
    tokenizer = AutoTokenizer.from_pretrained(str(paths.gpt2_dir(graph_results)))
    ids = torch.tensor([tokenizer(f"{a}+{b}+{c}=", add_special_tokens=False)["input_ids"]
                        for a, b, c in zip(x, y, z)])
    subject = load_subject(str(paths.gpt2_dir(graph_results)))
    pv = das.load_intervenable(paths.das_cell_dir(graph_results, "X", 1, 6), subject.model)
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, 1000, 200), rng.integers(0, 1000, 200)
    i, j = i[i != j], j[i != j]

    def right(base, source):            # the X model: X from the source, Y and Z from the base
        with torch.no_grad():
            pred = das.pyvene_logits(pv, ids, torch.as_tensor(base), torch.as_tensor(source))
        return pred.argmax(-1).numpy() == x[source] + y[base] + z[base] - 3

    expected = (right(i, j).astype(np.float32) + right(j, i)) / 2
    assert len(set(expected.tolist())) > 1      # not constant, so an order can be told apart
    assert np.array_equal(graph[i, j], expected)
    # the check tells orders apart: the same pairs read in Z-major order do not match
    zyx = lambda n: 100 * (n % 10) + 10 * (n // 10 % 10) + n // 100
    assert not np.array_equal(graph[zyx(i), zyx(j)], expected)


def test_node_order_matches_node_ids_on_a_hand_built_correctness_matrix():
    table = causal_models.table_of("X", ARITH)
    inputs = task.TASK.inputs
    # a "network" that is right exactly when the source's X is odd
    correct = np.broadcast_to(inputs[None, :, 0] % 2 == 1, table.shape)
    graph = graphs.graph_from_correctness(correct)
    i, j = task.node_id(3, 1, 1), task.node_id(5, 9, 9)       # both odd X: 1 both ways
    k = task.node_id(4, 2, 2)                                   # even X
    assert graph[i, j] == 1 and graph[i, k] == 0.5 and graph[k, task.node_id(6, 1, 1)] == 0


def test_bad_graph_files_are_rejected(tmp_path, capsys):
    from dasgraph import runtime

    path = paths.graph_npy(tmp_path, "XY", 1, 6)
    path.parent.mkdir(parents=True)
    meta = paths.graph_meta(tmp_path, "XY", 1, 6)
    meta.write_text('{"causal_model": "XY", "layer": 1, "low_rank_dimension": 6}')

    def finish():           # finished, as far as its marker says: only the bytes are wrong
        runtime.write_done(paths.done_marker(path), [path, meta])

    np.save(path, np.zeros((10, 10), dtype=np.float32))
    with pytest.raises(Exception, match="completion marker"):
        graphs.load_graph(tmp_path, "XY", 1, 6)
    finish()
    with pytest.raises(Exception, match="shape"):
        graphs.load_graph(tmp_path, "XY", 1, 6)
    path.write_bytes(b"not a numpy file")
    finish()
    with pytest.raises(Exception, match="not a readable"):
        graphs.load_graph(tmp_path, "XY", 1, 6)


def test_graph_cli_bad_input(tmp_path, tiny_copy, capsys):
    assert disentangle_causal_models.main(["--results_path", str(tmp_path)]) == 2
    assert "train_gpt2.py" in capsys.readouterr().err
    assert disentangle_causal_models.main(["--results_path", str(tiny_copy)]) == 2
    assert "run_das.py" in capsys.readouterr().err
    assert disentangle_causal_models.main(["--results_path", str(tiny_copy), "--layers", "7"]) == 2
    assert disentangle_causal_models.main(["--results_path", str(tiny_copy), "--export", "gml"]) == 2
    assert "--export" in capsys.readouterr().err


def test_a_graph_records_its_das_cells_weights_not_their_run_records(tmp_path):
    """A graph's recorded settings are its DAS cell's weights: they change when the cell is
    trained again to other weights (so runtime.finished refuses the old graph), not when only
    its run record is rewritten."""
    from dasgraph import runtime
    from dasgraph.networks.base import Site
    from dasgraph.stages.graph_cells import _graph_settings

    cell = paths.das_cell_dir(tmp_path, "XY", 1, 6)
    cell.mkdir(parents=True)
    weights, run = cell / "weights.bin", cell / paths.RUN
    weights.write_bytes(b"rotation 1")
    run.write_text('{"created": "monday"}')
    runtime.write_done(cell / paths.DONE, [weights, run])
    first = _graph_settings(tmp_path, ("XY", 1, 6), Site())
    run.write_text('{"created": "tuesday"}')
    runtime.write_done(cell / paths.DONE, [weights, run])
    assert _graph_settings(tmp_path, ("XY", 1, 6), Site()) == first
    weights.write_bytes(b"rotation 2")
    runtime.write_done(cell / paths.DONE, [weights, run])
    assert _graph_settings(tmp_path, ("XY", 1, 6), Site()) != first
    # the site joins the settings only away from the default, so default graphs keep their keys
    assert "site" not in first
    assert _graph_settings(tmp_path, ("XY", 1, 6), Site(positions=(5,)))["site"] == \
        {"component": "residual", "positions": [5]}
