"""Shared fixtures: seeded torch, a tiny trained GPT-2 in a temporary results folder."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch

from dasgraph import paths

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2
torch.set_num_threads(THREADS)

TINY_TRAIN = ["--n_layer", "2", "--n_embd", "16", "--n_head", "2", "--epochs", "3",
              "--batch_size", "100", "--device", "cpu"]



# The thesis's own published graphs (*_graph_256_7.pt, from its repository) are not shipped: the
# package holds an exact copy (dasgraph/reference). The tests that check that copy against the
# originals run where this variable names a folder holding them.
THESIS_PT_ENV = "DASGRAPH_THESIS_GRAPHS"
THESIS_PT = Path(os.environ[THESIS_PT_ENV]) if os.environ.get(THESIS_PT_ENV) else None
needs_thesis_pt = pytest.mark.skipif(
    THESIS_PT is None or not THESIS_PT.is_dir(),
    reason=f"set {THESIS_PT_ENV} to a folder of the thesis's published *_graph_256_7.pt files")


def load_file(relative: str):
    """A Python file of the repository outside the package (a root entry point, a benchmark
    under bench/), run as a module of its own. The package's scripts import as modules:
    ``from dasgraph.scripts import run_das``."""
    name = "file_" + relative.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _seeded():
    # Some stages set the thread count (the MLP scripts' --num_threads); float reductions
    # depend on it, so every test starts from the same one for bit-for-bit comparisons.
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def default_network(tmp_path_factory):
    """The embedded default network, trained once per session by train_gpt2.main (the slow
    tests' known answer: X+Y planted at layer 2). Never written into: use copy_results."""
    import train_gpt2

    root = tmp_path_factory.mktemp("default_network")
    assert train_gpt2.main(["--results_path", str(root), "--device", "cpu"]) == 0
    return root


def copy_results(source: Path, target: Path) -> Path:
    """A results folder of its own, holding a copy of ``source`` (its network and records)."""
    shutil.copytree(source, target)
    return target


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory):
    """A results folder holding a tiny (under-trained) GPT-2 trained through train_gpt2.main."""
    import train_gpt2

    root = tmp_path_factory.mktemp("tiny_results")
    assert train_gpt2.main(["--results_path", str(root), *TINY_TRAIN]) == 0
    return root


@pytest.fixture
def tiny_copy(tiny_results, tmp_path):
    """A private copy of the tiny results folder, for tests that write into it."""
    dst = tmp_path / "results"
    shutil.copytree(paths.gpt2_dir(tiny_results), paths.gpt2_dir(dst))
    return dst
