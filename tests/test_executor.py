"""Cohort training against the per-cell path, the manifest's settings rule, the
executors (debug, local, submitit's local executor) and --status."""
import json
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest
import torch

import run_das
from dasgraph import paths
from dasgraph.causal import models as causal_models
from dasgraph.interventions import cohort, das
from dasgraph.stages.jobs import executor
from dasgraph.networks.subject import load_subject
from dasgraph.stages.sweep import cell_seed
from dasgraph import tasks

ARITH = tasks.get("arithmetic")

CFG = das.DasConfig(n_training=512, n_testing=500, batch_size=128)


def _members(cells):
    return [cohort.Member(torch.as_tensor(causal_models.table_of(cm, ARITH)), k,
                          cell_seed(42, cm, layer, k)) for cm, layer, k in cells]


def test_a_cell_in_a_cohort_is_the_cell_trained_alone(tiny_results):
    subject = load_subject(str(paths.gpt2_dir(tiny_results)))
    layer, full = 1, 6 * subject.width
    cells = [(cm, layer, k) for cm in ("XY", "X", "Z") for k in (1, 3, 5, full)]
    states = subject.states[layer]
    torch.set_num_threads(1)                      # as the sweep trains every cell
    members = cohort.train_cohort(subject.lean, states, layer, _members(cells), CFG, False)
    results = cohort.evaluate_cohort(subject.lean, states, layer, members, CFG.n_testing)
    for (cm, _, k), member, result in zip(cells, members, results):
        # the reference: today's per-cell path, das.train_cell and das.evaluate_cell
        table = torch.as_tensor(causal_models.table_of(cm, ARITH))
        seed = cell_seed(42, cm, layer, k)
        iv, history = das.train_cell(subject.lean, states, table, layer, k, CFG, seed, False)
        ref = das.evaluate_cell(subject.lean, states, layer=layer, table=table, intervention=iv,
                                n_testing=CFG.n_testing, seed=seed)
        assert len(member.history) == len(history) == (0 if k == full else 4)
        assert member.history == pytest.approx(history, abs=1e-5)
        assert torch.allclose(das.rotation(member.intervention), das.rotation(iv), atol=1e-5)
        assert result["iia"] == pytest.approx(ref["iia"], abs=2 / CFG.n_testing)
        # and the same cell in a cohort of one (a cell re-run alone): bit for bit
        alone, = cohort.train_cohort(subject.lean, states, layer, _members([(cm, layer, k)]),
                                     CFG, False)
        assert torch.equal(das.rotation(alone.intervention), das.rotation(member.intervention))
        assert alone.history == member.history
    assert len({round(m.history[-1], 6) for m in members if m.history}) > 3   # distinct cells


def sweep(root, *flags):
    return run_das.main(["--results_path", str(root), "--n_training", "512", "--n_testing",
                         "500", "--batch_size", "128", "--device", "cpu", "--workers", "1",
                         "--causal_models", "XY,Z", "--layers", "1", *flags])


def cell_files(root) -> dict:
    """The bytes of every file of every finished cell, but run.json (the time and command line
    it records) and the marker listing its digest. torch.save writes a random id into every
    file (.data/serialization_id), so a weights file is compared record by record, all but it."""
    out = {}
    for path in sorted(paths.das_root(root).rglob("*")):
        if not path.is_file() or path.name in (paths.RUN, paths.DONE):
            continue
        name = str(path.relative_to(root))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                out.update({f"{name}:{record}": z.read(record) for record in z.namelist()
                            if not record.endswith(".data/serialization_id")})
        else:
            out[name] = path.read_bytes()
    return out


def test_a_cell_made_with_other_settings_is_refused_then_redone(tiny_copy, capsys):
    assert sweep(tiny_copy, "--low_rank_dimensions", "4", "--executor", "debug") == 0
    marker = json.loads((paths.das_cell_dir(tiny_copy, "XY", 1, 4) / paths.DONE).read_text())
    assert marker["settings"]["lr"] == 0.01 and marker["settings"]["causal_model"] == "XY"
    capsys.readouterr()
    # a re-run with another --lr must not mix old and new cells
    assert sweep(tiny_copy, "--low_rank_dimensions", "4,8", "--lr", "0.02") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lr" in err[0] and "--overwrite" in err[0], err
    assert not paths.das_cell_dir(tiny_copy, "XY", 1, 8).exists()     # refused before training
    assert sweep(tiny_copy, "--low_rank_dimensions", "4,8", "--lr", "0.02", "--overwrite") == 0
    for k in (4, 8):
        metrics = json.loads((paths.das_cell_dir(tiny_copy, "Z", 1, k) / "metrics.json").read_text())
        assert metrics["config"]["lr"] == 0.02


def test_executors_give_the_same_cells_and_status_counts_them(tiny_results, tmp_path, capsys):
    import shutil

    roots = {}
    for name, flags in {"debug": ["--executor", "debug"],
                        "per_cell": ["--cohort_size", "1"],
                        "cohorts": ["--workers", "2", "--cohort_size", "3"]}.items():
        roots[name] = tmp_path / name
        shutil.copytree(paths.gpt2_dir(tiny_results), paths.gpt2_dir(roots[name]))
        assert sweep(roots[name], "--low_rank_dimensions", "4,8,96", *flags) == 0
    ref = cell_files(roots["debug"])
    assert len([f for f in ref if f.endswith("metrics.json")]) == 6
    assert cell_files(roots["cohorts"]) == ref        # another cohort split: same bytes
    per_cell = cell_files(roots["per_cell"])             # --cohort_size 1: das.train_cell
    for name, data in ref.items():
        if name.endswith("metrics.json"):
            a, b = json.loads(data), json.loads(per_cell[name])
            assert a["iia"] == pytest.approx(b["iia"], abs=2 / 500)
            assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    capsys.readouterr()
    assert run_das.main(["--results_path", str(roots["debug"]), "--status"]) == 0
    out = capsys.readouterr().out
    assert "6 cells" in out and "6 done" in out and "0 failed" in out, out


@pytest.mark.parametrize("flags, needle", [
    (["--executor", "kubernetes"], "--executor"),
    (["--executor", "slurm"], "--executor local"),
    (["--cells_per_job", "0"], "--cells_per_job"),
    (["--cohort_size", "0"], "--cohort_size"),
    (["--no_wait"], "--no_wait"),
    (["--executor", "submitit_local", "--slurm_config", "CONFIG"], "gpu"),
])
def test_executor_bad_input(tiny_copy, capsys, monkeypatch, flags, needle):
    monkeypatch.setattr(executor.shutil, "which", lambda name: None)   # no SLURM here
    config = tiny_copy / "slurm.json"
    config.write_text(json.dumps({"partition": "gpu", "gpu": 1}))     # "gpu": a typo
    flags = [str(config) if f == "CONFIG" else f for f in flags]
    assert sweep(tiny_copy, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not paths.das_root(tiny_copy).exists()


def test_status_before_any_sweep_is_one_line(tmp_path, capsys):
    assert run_das.main(["--results_path", str(tmp_path), "--status"]) == 2
    assert "run it first" in capsys.readouterr().err


def _kill_when_a_cell_finishes(root, timeout=240):
    """Watch the jobs' started records; SIGKILL their processes as soon as one cell is done."""
    started = paths.sweep_dir(root, "das") / "started"
    pids, end = set(), time.time() + timeout
    while time.time() < end:
        for record in started.glob("*.json"):
            try:
                pids.add(json.loads(record.read_text())["pid"])
            except (OSError, ValueError):
                pass
        if any(paths.das_root(root).rglob(paths.DONE)):
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return pids
        time.sleep(0.02)
    raise AssertionError("no cell finished in time")


@pytest.mark.slow
def test_submitit_sweep_killed_mid_way_resumes_to_the_in_process_result(tiny_results, tmp_path,
                                                                         capsys):
    import shutil

    flags = ["--low_rank_dimensions", "2,4,8", "--n_training", "6400", "--batch_size", "64",
             "--cohort_size", "1"]              # one cell after another, so a kill falls between
    roots = {name: tmp_path / name for name in ("jobs", "inprocess")}
    for root in roots.values():
        shutil.copytree(paths.gpt2_dir(tiny_results), paths.gpt2_dir(root))
    assert sweep(roots["inprocess"], *flags, "--executor", "debug") == 0
    jobs = flags + ["--executor", "submitit_local", "--cells_per_job", "3"]
    assert sweep(roots["jobs"], *jobs, "--no_wait") == 0
    killed = _kill_when_a_cell_finishes(roots["jobs"])
    assert killed
    time.sleep(1)
    finished = {p.parent: p.parent.joinpath("metrics.json").stat().st_mtime_ns
                for p in paths.das_root(roots["jobs"]).rglob(paths.DONE)}
    assert 1 <= len(finished) < 6, finished    # killed mid-way
    capsys.readouterr()
    assert run_das.main(["--results_path", str(roots["jobs"]), "--status"]) == 0
    out = capsys.readouterr().out
    assert f"{len(finished)} done" in out and "died" in out, out
    assert sweep(roots["jobs"], *jobs) == 0    # resume: waits for its jobs and collects them
    assert cell_files(roots["jobs"]) == cell_files(roots["inprocess"])
    for cell, stamp in finished.items():      # no finished cell was computed again
        assert cell.joinpath("metrics.json").stat().st_mtime_ns == stamp
    assert not list(Path(paths.das_root(roots["jobs"])).rglob(".*partial*"))


@pytest.mark.parametrize("sacct_says, state, needle", [
    ("TIMEOUT", "died", "ended TIMEOUT"),
    ("PREEMPTED", "died", "ended PREEMPTED"),
    ("RUNNING", "running", "SLURM job 812_3 RUNNING"),
    (None, "running", "no sacct"),
])
def test_status_asks_slurm_about_a_cell_started_on_a_node(tmp_path, monkeypatch, capsys,
                                                          sacct_says, state, needle):
    """A cell started by a SLURM job on another node is reported from sacct's state: a job that
    timed out or was preempted before the cell finished shows as died, not as running forever."""
    from dasgraph.stages.jobs import manifest

    cell = manifest.Cell("XY", 2, 21, 1, {"causal_model": "XY", "layer": 2, "seed": 42})
    manifest.write_manifest(tmp_path, "das", [cell], {"executor": "slurm"})
    record = paths.sweep_dir(tmp_path, "das") / manifest.STARTED / f"{cell.key}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"cell": cell.name, "host": "node7", "pid": 1, "job": "812_3",
                                  "scheduler": "slurm"}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if sacct_says:       # a stand-in for SLURM's sacct: checks it is asked about the array task
        script = bin_dir / "sacct"
        script.write_text(f'#!/bin/sh\ncase "$*" in *"-j 812_3"*) echo "{sacct_says}";; '
                          '*) exit 1;; esac\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin" if sacct_says else str(bin_dir))
    report = manifest.status(tmp_path, "das")
    assert report["counts"][state] == 1
    assert needle in report["cells"][0][2]
    capsys.readouterr()
    assert run_das.main(["--results_path", str(tmp_path), "--status"]) == 0
    assert needle in capsys.readouterr().out


def test_where_names_the_array_task_sacct_takes(monkeypatch):
    from dasgraph.stages.jobs import manifest

    monkeypatch.setenv("SLURM_JOB_ID", "815")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "812")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    here = manifest.where()
    assert here["job"] == "812_3" and here["scheduler"] == "slurm"
