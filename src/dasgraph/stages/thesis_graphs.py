"""import_graphs.py: the thesis's own IIA graphs, written into our layout for stages 6-8.

Reading and checking the thesis's files is ``analysis.thesis_graphs``; this module writes each
graph as results/graphs/{cm}/layer_{L}_k_{k}.npy with the .json stages 6-8 read (through stage
5's writer, ``graph_files.write_graph``), skipping graphs imported from the same source.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dasgraph import cli, paths, tasks
from dasgraph.analysis import thesis_graphs
from dasgraph.runtime import finished, run_record
from dasgraph.stages.graph_files import write_graph
from dasgraph.tasks import arithmetic

log = logging.getLogger(__name__)


def run(config) -> None:
    """import_graphs.py: the folder of .pt files ``config.thesis_graphs`` (or the packaged
    copy), each graph not yet imported written under ``config.results_path``."""
    found = (thesis_graphs.read_folder(config.thesis_graphs)
             if config.thesis_graphs is not None else thesis_graphs.read_packaged())
    cli.writable_dir(config.results_path)
    import_graphs(found, config.results_path, config, overwrite=config.overwrite)


def import_graphs(found: list[thesis_graphs.ThesisGraph], root: Path, config,
                  overwrite: bool = False) -> list[Path]:
    """Write each graph (diagonal zeroed) with its .json, the run record of ``config`` in it;
    a graph already imported from the same source is skipped unless ``overwrite``."""
    written = []
    tasks.write_record(root, arithmetic.TASK)   # the thesis's graphs are of the arithmetic task
    for g in found:
        target = paths.graph_npy(root, g.causal_model, g.layer, g.low_rank_dimension)
        settings = {"source_sha256": g.sha256, "label": g.label}
        if finished(paths.done_marker(target), settings, overwrite, "an imported graph"):
            continue
        stats = write_graph(root, g.causal_model, g.layer, g.low_rank_dimension,
                            thesis_graphs.our_graph(g),
                            {"imported_from": thesis_graphs.provenance(g),
                             "run": run_record(config)}, settings, arithmetic.TASK)
        log.info("%s (thesis layer %d) -> %s: pairs with IIA 1 %.3f, mean pair IIA %.3f",
                 g.source, g.thesis_layer, target, stats["fraction_pairs_iia_1"],
                 stats["mean_pair_iia"])
        written.append(target)
    return written


def pack(found: list[thesis_graphs.ThesisGraph], out: Path) -> Path:
    """Write graphs as one compressed .npz of uint8 2 x IIA arrays, keyed by file stem (how the
    packaged copy, ``reference/thesis_graphs_256_7.npz``, was made)."""
    arrays = {f"{g.label}_graph_{g.low_rank_dimension}_{g.thesis_layer}":
              np.rint(g.graph * 2).astype(np.uint8) for g in found}
    np.savez_compressed(out, **arrays)
    return Path(out)
