"""Region-aware DAS on trained networks (slow: each network trains for about a minute of CPU).

Known answers: the default network plants X+Y everywhere at layer 2, so the planted model's
region must cover (nearly) every input and the models it does not hold for must get no region;
a randomly initialised copy holds nothing, so no model may get a region there; a second combined
plant, ``XY if X<=5 else X`` (its region known at every position, the plant cross-entropy DAS
misses worst), must be recovered by the oracle and by the recommended objective.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import train_gpt2
from conftest import copy_results
from dasgraph import paths, tasks
from dasgraph.causal import models as causal_models
from dasgraph.interventions import das, regions
from dasgraph.networks import random_init as random_network
from dasgraph.networks.subject import load_subject

pytestmark = pytest.mark.slow

ARITH = tasks.get("arithmetic")
LAYER, K = 2, 21


def train(root, *flags):
    """(results root, its trained network as a sweep subject)."""
    assert train_gpt2.main(["--results_path", str(root), "--device", "cpu", *flags]) == 0
    return root, load_subject(str(paths.gpt2_dir(root)))


@pytest.fixture(scope="module")
def default(tmp_path_factory, default_network):
    root = copy_results(default_network, tmp_path_factory.mktemp("default") / "results")
    return root, load_subject(str(paths.gpt2_dir(root)))


@pytest.fixture(scope="module")
def first_plant(tmp_path_factory):
    return train(tmp_path_factory.mktemp("plant1"), "--iit_causal_model", "XY if Z<=5 else X")


@pytest.fixture(scope="module")
def second_plant(tmp_path_factory):
    return train(tmp_path_factory.mktemp("plant"), "--iit_causal_model", "XY if X<=5 else X")


def run(subject, cm, objective, rule=None, seed=0):
    table = torch.as_tensor(ARITH.table(cm).copy())
    ocfg = regions.ObjectiveConfig(objective=objective, region=rule or "")
    return regions.train_region_cell(subject.lean, subject.states[LAYER], table, LAYER, K,
                                     das.DasConfig(), ocfg, seed, subject.predictions, rule, ARITH)


def beats_its_controls(record) -> bool:
    """The guard's question: does the region beat its held-out floor by more than a random
    subspace of the same rank does there?"""
    if record["heldout_iia"] is None:
        return False
    floor = max(record["floor_unchanged"], record["floor_copy_source"])
    return record["heldout_iia"] - floor > max(record["random_subspace_iia"] - floor, 0.0)


def test_default_planted_model_holds_nearly_everywhere_and_the_others_nowhere(default):
    _, subject = default
    _, _, record = run(subject, "XY", regions.RECOMMENDED)
    assert record["reported"] and record["n_inputs"] >= 0.95 * ARITH.n_inputs, record["verdict"]
    for cm in ("X", "Y", "XZ", "YZ"):
        _, _, record = run(subject, cm, regions.RECOMMENDED)
        assert not record["reported"], (cm, record["verdict"], record["rule"])
        assert not beats_its_controls(record) or not record["reported"], cm


def test_no_region_on_a_random_network(default, tmp_path):
    root, _ = default
    model_dir = random_network.make_network(str(paths.gpt2_dir(root)), tmp_path, 0, ARITH)
    subject = load_subject(str(model_dir))
    for cm in ARITH.models:
        _, _, record = run(subject, cm, regions.RECOMMENDED)
        assert not record["reported"], (cm, record["verdict"], record["rule"])


def iia_on(subject, cm, R, mask, n=4000, seed=0) -> float:
    """One-direction IIA of rotation R on n sampled pairs inside ``mask``."""
    rng = np.random.default_rng(seed)
    nodes = np.flatnonzero(mask)
    table = torch.as_tensor(ARITH.table(cm).copy())
    return float(regions.correct(subject.lean, subject.states[LAYER], LAYER, R, table,
                                 rng.choice(nodes, n), rng.choice(nodes, n)).mean())


def planted_direction(subject) -> torch.Tensor:
    """(S*d, 1): coordinate 0 of the last position, where IIT planted P."""
    _, S, d = subject.states[LAYER].shape
    R = torch.zeros(S * d, 1)
    R[(S - 1) * d, 0] = 1.0
    return R


@pytest.mark.parametrize("plant,spec", [("first_plant", "XY if Z<=5 else X"),
                                        ("second_plant", "XY if X<=5 else X")])
def test_oracle_recovers_the_plant(request, plant, spec):
    """Trained only on the pairs inside each planted region, DAS finds the plant there: its IIA
    inside the region reaches 0.99, or the planted coordinate's own IIA there where the network
    holds its plant less well than that (the plant is then what there is to find)."""
    _, subject = request.getfixturevalue(plant)
    model = causal_models.planted_model(spec, ARITH)
    region = model.region(ARITH.columns())
    for cm, rule, mask in ((model.inside.name, f"{model.variable}<={model.threshold}", region),
                           (model.outside.name, f"{model.variable}>{model.threshold}", ~region)):
        intervention, _, record = run(subject, cm, "oracle", rule)
        found = iia_on(subject, cm, das.rotation(intervention).detach(), mask)
        own = iia_on(subject, cm, planted_direction(subject), mask)
        assert found >= min(0.99, own - 0.01), (spec, cm, found, own, record["heldout_iia"])
        assert record["reported"], record["verdict"]


def pair_shares(subject, cm, R, mask, n=4000, seed=0):
    """Shares of sampled pairs whose IIA (both directions right, the graphs' entry) is 1: inside
    ``mask`` and across its border."""
    rng = np.random.default_rng(seed)
    table = torch.as_tensor(ARITH.table(cm).copy())
    inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
    shares = []
    for a, b in ((inside, inside), (inside, outside)):
        base, source = rng.choice(a, n), rng.choice(b, n)
        both = regions.correct(subject.lean, subject.states[LAYER], LAYER, R, table, base, source) \
            & regions.correct(subject.lean, subject.states[LAYER], LAYER, R, table, source, base)
        shares.append(float(both.mean()))
    return shares


def test_oracle_finds_the_default_plant_inside_any_region(default):
    """The default plants X+Y everywhere: trained on the pairs of one region only, DAS still
    finds it there (IIA >= 0.99), a third plant for the oracle beside the two combined ones."""
    _, subject = default
    for rule in ("Z<=5", "X>3"):
        intervention, _, record = run(subject, "XY", "oracle", rule)
        mask = regions.rule_mask(rule, ARITH)
        assert iia_on(subject, "XY", das.rotation(intervention).detach(), mask) >= 0.99, rule
        assert record["reported"], record      # and on held-out inputs it still holds


@pytest.mark.parametrize("cm,inside", [("XY", True), ("X", False)])
def test_second_plant_is_recovered(second_plant, cm, inside):
    """The recommended objective on a plant whose region is known at every position: each planted
    model's pairs have IIA 1 on >= 90 % of the pairs inside its region and <= 30 % across (the
    graphs' bar), it reports a region, and the region's rule names the planted boundary. (X also
    holds on the inputs with X <= 5 and Y = 1 among themselves, where the two mechanisms give the
    same counterfactual, so its rule may carry that piece too.)"""
    _, subject = second_plant
    plant = causal_models.planted_model("XY if X<=5 else X", ARITH)
    mask = plant.region(ARITH.columns())
    mask = mask if inside else ~mask
    intervention, _, found = run(subject, cm, regions.RECOMMENDED)
    share_in, share_across = pair_shares(subject, cm, das.rotation(intervention).detach(), mask)
    assert share_in >= 0.9 and share_across <= 0.3, (share_in, share_across, found["rule"])
    assert found["reported"] and found["heldout_iia"] >= 0.9, found["verdict"]
    assert ("X <= 5" if inside else "X > 5") in found["rule"], found["rule"]
