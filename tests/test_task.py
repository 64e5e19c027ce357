"""The arithmetic task through the Task interface: inputs, node ids, labels, the local
tokenizer, the split."""
import numpy as np
import pytest

from dasgraph.runtime import UsageError
from dasgraph.tasks import arithmetic

ARITH = arithmetic.TASK


def test_node_ids_follow_product_order():
    inputs = ARITH.inputs
    assert inputs.shape == (1000, 3) and ARITH.n_inputs == 1000
    assert inputs[0].tolist() == [1, 1, 1] and inputs[999].tolist() == [10, 10, 10]
    assert inputs[123].tolist() == [2, 3, 4]          # 100*1 + 10*2 + 3
    assert np.array_equal(ARITH.node_ids(inputs), np.arange(1000))
    # the closed form the figures and tracing use agrees with the task's own numbering
    ids = arithmetic.node_id(inputs[:, 0], inputs[:, 1], inputs[:, 2])
    assert np.array_equal(ids, np.arange(1000))
    x, y, z = arithmetic.node_to_xyz(np.arange(1000))
    assert np.array_equal(np.stack([x, y, z], 1), inputs)


def test_labels_are_sum_minus_three():
    lab = ARITH.labels
    assert lab.min() == 0 and lab.max() == 27 and ARITH.n_classes == 28
    assert lab[arithmetic.node_id(10, 9, 8)] == 27 - 3
    assert ARITH.class_names[lab[arithmetic.node_id(10, 9, 8)]] == "27"
    assert np.array_equal(lab, ARITH.inputs.sum(axis=1) - 3)


def test_tokenizer_gives_six_tokens_and_round_trips(tmp_path):
    from transformers import AutoTokenizer

    tok = ARITH.build_tokenizer()
    ids = ARITH.encode(tok)
    assert ids.shape == (1000, 6) and ARITH.seq_len == 6
    tok.save_pretrained(str(tmp_path))
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert ARITH.encode(loaded).equal(ids)
    for prompt, row in zip(ARITH.prompts(), ids):
        assert loaded.decode(row).replace(" ", "") == prompt
    assert ARITH.prompts([arithmetic.node_id(2, 3, 4)]) == ["2+3+4="]
    # "10" is one token, as in GPT-2's BPE
    assert len(loaded("10+10+10=")["input_ids"]) == 6


def test_encode_rejects_a_tokenizer_that_splits_prompts_unevenly():
    class CharTokenizer:
        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [[ord(c) for c in t] for t in texts]}

    with pytest.raises(UsageError, match="same length"):
        ARITH.encode(CharTokenizer())


def test_split_is_disjoint_and_complete():
    parts = ARITH.split_nodes(seed=3)
    sets = {k: set(v.tolist()) for k, v in parts.items()}
    assert not sets["train"] & sets["validation"]
    assert not sets["train"] & sets["test"]
    assert not sets["validation"] & sets["test"]
    assert set().union(*sets.values()) == set(range(1000))
    assert len(sets["test"]) == 100
    assert np.array_equal(ARITH.split_nodes(3)["test"], parts["test"])
    assert not np.array_equal(ARITH.split_nodes(4)["test"], parts["test"])
