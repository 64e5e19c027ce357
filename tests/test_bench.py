"""The benchmarks under bench/ still run against the package (tiny sizes, one step): they are
not timed here, only kept from breaking silently when an interface they call changes."""
import re

import pytest

from conftest import load_file


def _bench(name: str):
    return load_file(f"bench/{name}.py")


def test_das_speed_generic_lean_and_pyvene_on_a_tiny_gpt2(capsys):
    _bench("das_speed").main(["--architectures", "gpt2", "--steps", "1", "--batch_size", "8,4",
                              "--repeats", "3"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line.split()[:1] == ["gpt2"]]
    # every layer of the 3-block model, at each batch size in the order given
    assert [(int(r[1]), int(r[2])) for r in rows] == [(b, l) for b in (8, 4) for l in range(4)]
    for row in rows:               # generic, pyvene, median ratio, range, work, lean, ratio
        assert float(row[3]) > 0 and float(row[4]) > 0 and row[5].endswith("x")
        low, high = map(float, row[6].split("-"))
        assert low <= float(row[5].rstrip("x")) <= high     # the median lies in the range
        assert float(row[7].rstrip("x")) >= 1          # pyvene never does less work
        assert row[9].endswith("x")
    work = [float(r[7].rstrip("x")) for r in rows[:4]]
    assert work[-1] > work[0]                          # less of the model to run above


def test_interleaved_timing_runs_each_way_once_per_repeat_after_a_warm_up():
    calls = []
    speeds = _bench("das_speed").interleaved(
        [lambda: calls.append("a") or 1.0, lambda: calls.append("b") or 2.0], 3)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert speeds == [[1.0] * 3, [2.0] * 3]


@pytest.mark.parametrize("argv", [["--architectures", "gpt2", "--batch_size", "0"],
                                  ["--architectures", "gpt2", "--batch_size", "64,x"],
                                  ["--architectures", "gpt2", "--repeats", "0"],
                                  ["--batch_size", "64,256"]])
def test_das_speed_rejects_bad_batches_and_repeats_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        _bench("das_speed").main(argv)
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in last and ("batch_size" in last or "repeats" in last)


@pytest.mark.slow
def test_gpt2_small_cell_projects_the_thesis_sweep(capsys):
    _bench("gpt2_small_cell").main(["--layer", "11", "--batch_size", "4", "--steps", "1"])
    out = capsys.readouterr().out
    assert re.search(r"\d+\.\d+ s per step", out) and "GPU-hours" in out


def test_clique_speed_runs_every_finder_on_a_small_graph(capsys):
    module = _bench("clique_speed")
    module.main(["--nodes", "40", "--density", "0.5", "--time_limit", "1"])
    out = capsys.readouterr().out
    finders = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
    assert set(finders) >= set(module.cliques.FINDERS)


def test_sweep_speed_counts_the_flops_of_a_step_it_can_derive_by_hand():
    """The compute floor's FLOP count, checked at the top layer, where a step is the interchange
    (three (B, D) x (D, k) products) and the classifier head alone."""
    import torch

    from dasgraph import tasks
    from dasgraph.networks import readouts, tiny
    from dasgraph.networks.lean import LeanGPT2

    task = tasks.get("arithmetic")
    lean = LeanGPT2(tiny.build("gpt2", readouts.CLASSIFIER, n_layer=2, width=32))
    states = lean.all_states(task.encode(tiny.build_tokenizer()))
    B, k, D, C = 16, 5, states.shape[2] * states.shape[3], task.n_classes
    module = _bench("sweep_speed")
    assert module.step_flops(lean, states, 2, k, B, train=False) == 3 * 2 * B * D * k + 2 * B * 32 * C
    below = module.step_flops(lean, states, 1, k, B, train=False)
    assert below > 3 * 2 * B * D * k + 2 * B * 32 * C          # one block more
    assert module.step_flops(lean, states, 1, k, B, train=True) > 2 * below
    threads = torch.get_num_threads()
    assert module.matmul_rate(64, 16, seconds=0.05) > 0
    assert torch.get_num_threads() == threads          # the one-thread timing restores it
