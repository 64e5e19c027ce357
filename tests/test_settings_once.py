"""Settings are defined once: a dataclass field holds a setting's default, help and
validation; the scripts' flags are derived from it, so the two cannot disagree."""
import dataclasses

import pytest

import train_gpt2
from dasgraph import cli
from dasgraph.interventions import das
from dasgraph.networks import gpt2
from dasgraph.stages import training
from dasgraph import tasks
from dasgraph.scripts import run_das


def test_run_das_flags_are_the_das_config_fields_with_their_defaults():
    args = run_das.parse_args([])
    for field in dataclasses.fields(das.DasConfig):
        assert getattr(args, field.name) == field.default, field.name
    assert cli.settings_from(args, das.DasConfig) == das.DasConfig()
    changed = run_das.parse_args(["--lr", "0.05", "--lr_schedule", "constant"])
    assert cli.settings_from(changed, das.DasConfig) == \
        das.DasConfig(lr=0.05, lr_schedule="constant")


@pytest.mark.parametrize("flags, needle", [(["--lr", "0"], "--lr"),
                                           (["--n_training", "0"], "--n_training"),
                                           (["--lr_schedule", "cosine"], "--lr_schedule")])
def test_a_derived_flag_keeps_the_fields_validation(flags, needle, capsys):
    with pytest.raises(SystemExit) as stop:
        run_das.parse_args(flags)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_the_default_training_recipe_is_train_configs_own_defaults():
    """TrainConfig once said iit_weight 0 while the default trained with 1."""
    assert training.TRAIN_DEFAULTS["scratch"] == gpt2.TrainConfig()
    assert gpt2.TrainConfig().iit_weight > 0 and gpt2.TrainConfig().invariance_weight > 0
    arithmetic = tasks.get("arithmetic")
    arch, cfg = training.resolve_configs(train_gpt2.parse_args([]), arithmetic)
    assert cfg == gpt2.TrainConfig() and arch == gpt2.ArchConfig() == training.ARCH_DEFAULT
    _, tuned = training.resolve_configs(train_gpt2.parse_args(["--model_path", "gpt2"]), arithmetic)
    assert tuned == training.TRAIN_DEFAULTS["pretrained"] and tuned.iit_weight == 0


def test_train_gpt2_help_names_each_recipes_default(capsys):
    with pytest.raises(SystemExit):
        train_gpt2.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: 1.0 from scratch, 0.0 fine-tuning)" in help_text      # --iit_weight
    assert "from scratch: blocks (default: 3)" in help_text
