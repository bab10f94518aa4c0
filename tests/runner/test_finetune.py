"""Fine-tuning options: layer-wise lr decay and gradual unfreezing (runner.finetune)."""

import pytest
import torch
import transformers
from test_model import save_small_pretrained

from runner import run_trial
from runner.checkpoint import load_checkpoint
from runner.config import config_from_dict
from runner.errors import ConfigError
from runner.finetune import parameter_depths
from runner.optim import build_optimizer
from runner.schedule import lr_at


def tiny_gpt2(n_layer: int = 2) -> transformers.GPT2LMHeadModel:
    return transformers.GPT2LMHeadModel(
        transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=n_layer, n_head=2)
    )


def test_depths_put_embeddings_lowest_blocks_in_order_and_the_head_on_top():
    model = tiny_gpt2(n_layer=3)
    depths, blocks = parameter_depths(model)
    by_name = {name: depths[id(p)] for name, p in model.named_parameters()}
    assert blocks == 3
    assert by_name["transformer.wte.weight"] == by_name["transformer.wpe.weight"] == 0
    assert by_name["transformer.h.0.attn.c_attn.weight"] == 1
    assert by_name["transformer.h.2.mlp.c_fc.bias"] == 3
    assert by_name["transformer.ln_f.weight"] == 4

    bert = transformers.BertForSequenceClassification(
        transformers.BertConfig(
            vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32, num_labels=3,
        )
    )  # fmt: skip
    depths, blocks = parameter_depths(bert)
    by_name = {name: depths[id(p)] for name, p in bert.named_parameters()}
    assert blocks == 2
    assert by_name["bert.embeddings.word_embeddings.weight"] == 0
    assert by_name["bert.embeddings.LayerNorm.weight"] == 0
    assert by_name["bert.encoder.layer.1.output.dense.weight"] == 2
    assert by_name["classifier.weight"] == by_name["bert.pooler.dense.weight"] == 3


def test_layerwise_decay_gives_each_depth_its_power_of_the_lr(tiny_lm_config):
    model = tiny_gpt2(n_layer=2)
    config = tiny_lm_config("train.layerwise_lr_decay=0.5", "train.weight_decay=0.1")
    optimizer = build_optimizer(model, config.train, torch.device("cpu"))
    depths, _ = parameter_depths(model)
    seen = set()
    for group in optimizer.param_groups:
        for param in group["params"]:
            assert group["lr_scale"] == 0.5 ** (3 - depths[id(param)])
            seen.add(id(param))
    assert seen == {id(p) for p in model.parameters()}  # every parameter in exactly one group
    # weight decay still only on matrices: embeddings (depth 0) are in a no-decay group
    assert {g["weight_decay"] for g in optimizer.param_groups if g["depth"] == 0} == {0.0}


def test_trial_sets_every_group_lr_to_the_scheduled_lr_times_its_decay(tiny_lm_config, tmp_path):
    folder = tmp_path / "pretrained"
    save_small_pretrained(tiny_lm_config(), folder)  # one block: depths 0, 1, 2
    config = tiny_lm_config(
        f"model.pretrained={folder}",
        "train.layerwise_lr_decay=0.8",
        "train.max_steps=3",
        "eval.eval_steps=3",
    )
    result = run_trial(config)
    assert result.status == "complete"
    groups = load_checkpoint(result.last_checkpoint)["optimizer"]["param_groups"]
    scheduled = lr_at(2, config.train)  # the last step's lr
    assert sorted({g["depth"] for g in groups}) == [0, 1, 2]
    for group in groups:
        assert group["lr"] == pytest.approx(scheduled * 0.8 ** (2 - group["depth"]))


def test_frozen_depths_keep_their_weights_until_their_unfreeze_step(tiny_lm_config, tmp_path):
    folder = tmp_path / "pretrained"
    saved = save_small_pretrained(tiny_lm_config(), folder).state_dict()
    parts = {
        "head": "transformer.ln_f.weight",  # depth 2: trains from step 0
        "block": "transformer.h.0.mlp.c_fc.weight",  # depth 1: from step 2
        "embeddings": "transformer.wpe.weight",  # depth 0: from step 4
    }

    def changed_after(steps: int) -> set[str]:
        config = tiny_lm_config(
            f"model.pretrained={folder}",
            f"output_dir={tmp_path / f'trial{steps}'}",
            "train.unfreeze_every_steps=2",
            "train.weight_decay=0.1",  # decay must not touch frozen weights either
            "train.warmup_steps=0",
            f"train.max_steps={steps}",
            f"eval.eval_steps={steps}",
        )
        result = run_trial(config)
        assert result.status == "complete"
        weights = load_checkpoint(result.last_checkpoint)["model"]
        return {part for part, name in parts.items() if not torch.equal(weights[name], saved[name])}

    assert changed_after(2) == {"head"}
    assert changed_after(3) == {"head", "block"}
    assert changed_after(5) == {"head", "block", "embeddings"}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.layerwise_lr_decay=0", "train.layerwise_lr_decay"),
        ("train.layerwise_lr_decay=1.5", "train.layerwise_lr_decay"),
        ("train.unfreeze_every_steps=-1", "train.unfreeze_every_steps"),
    ],
)
def test_bad_finetune_values_name_their_key(override, key):
    with pytest.raises(ConfigError, match=rf"\({key}\)"):
        config_from_dict({"task": "lm"}, [override])


def test_unfreezing_under_ddp_is_refused():
    with pytest.raises(ConfigError, match="DDP"):
        config_from_dict({"task": "lm"}, ["train.unfreeze_every_steps=5", "train.nproc=2"])


def test_a_model_without_recognisable_blocks_is_refused():
    with pytest.raises(ConfigError, match="no transformer blocks"):
        parameter_depths(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_a_resumed_trial_unfreezes_and_decays_as_an_uninterrupted_one(
    tiny_lm_config, stop_at, tmp_path
):
    folder = tmp_path / "pretrained"
    save_small_pretrained(tiny_lm_config(), folder)

    def config(name):
        return tiny_lm_config(
            f"model.pretrained={folder}",
            f"output_dir={tmp_path / name}",
            "train.unfreeze_every_steps=1",  # h.0 from step 1, the embeddings from step 2
            "train.layerwise_lr_decay=0.8",
            "train.max_steps=3",
            "eval.eval_steps=1",
        )

    whole = run_trial(config("whole"))
    stopped = run_trial(config("split"), stop_at(1))  # stopped while only the head trains
    assert stopped.status == "pruned" and stopped.steps == 1
    resumed = run_trial(config("split"), resume=True)
    assert resumed.status == "complete" and resumed.steps == 3
    expected = load_checkpoint(whole.last_checkpoint)["model"]
    weights = load_checkpoint(resumed.last_checkpoint)["model"]
    for name, tensor in expected.items():
        assert torch.equal(weights[name], tensor), name
