"""transformers.TrainingArguments names in the runner's config, model.init and train.ignore_index."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
import yaml

from runner.config import config_from_dict, load_config, save_config
from runner.errors import ConfigError
from runner.loss import forward_loss
from runner.model import build_model


@pytest.mark.parametrize("name", ["adamw_torch", "adamw_torch_fused", "adamw", "sgd"])
def test_hf_optimizer_names_are_the_runners(name):
    from_file = config_from_dict({"train": {"optim": name}})
    from_override = config_from_dict({}, [f"train.optim={name}"])
    expected = "sgd" if name == "sgd" else "adamw"
    assert from_file.train.optim == from_override.train.optim == expected


def test_an_unknown_optimizer_is_refused_with_the_choices():
    with pytest.raises(
        ConfigError, match=r"expected adamw or sgd, got 'adafactor' \(train.optim\)$"
    ):
        config_from_dict({"train": {"optim": "adafactor"}})


def test_warmup_steps_takes_whole_steps_and_points_a_ratio_to_warmup_ratio():
    assert config_from_dict({}, ["train.warmup_steps=100"]).train.warmup_steps == 100
    assert config_from_dict({"train": {"warmup_steps": 100.0}}).train.warmup_steps == 100
    with pytest.raises(ConfigError, match=r"write train.warmup_ratio: 0.1 \(train.warmup_steps\)"):
        config_from_dict({}, ["train.warmup_steps=0.1"])


def test_eval_metric_names_are_the_runners_val_names():
    assert (
        config_from_dict(
            {"eval": {"metric_for_best_model": "eval_loss"}}
        ).eval.metric_for_best_model
        == "val_loss"
    )
    cfg = config_from_dict({"task": "classify"}, ["eval.metric_for_best_model=eval_accuracy"])
    assert cfg.eval.metric_for_best_model == "val_accuracy"
    assert cfg.objective_greater_is_better
    with pytest.raises(ConfigError, match="not measured for task lm"):
        config_from_dict({}, ["eval.metric_for_best_model=eval_accuracy"])


def test_report_to_takes_a_list_or_a_name_and_round_trips(tmp_path):
    cfg = config_from_dict({"train": {"report_to": ["mlflow"]}})
    assert cfg.train.report_to == "mlflow"
    assert config_from_dict({}, ["train.report_to=[none]"]).train.report_to == "none"
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    with pytest.raises(
        ConfigError,
        match=r"expected mlflow, tensorboard, none or all, got 'wandb' \(train.report_to\)$",
    ):
        config_from_dict({}, ["train.report_to=[mlflow, wandb]"])


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed"
)
def test_report_to_tensorboard_without_the_package_is_one_clear_line():
    with pytest.raises(ConfigError) as err:
        config_from_dict({}, ["train.report_to=tensorboard"])
    assert str(err.value) == (
        "<config>: tensorboard needs the tensorboard extra: pip install 'hpo[tensorboard]' "
        "(train.report_to)"
    )


def test_num_train_epochs_and_ignore_index_are_range_checked():
    with pytest.raises(ConfigError, match=r"\(train.num_train_epochs\)"):
        config_from_dict({}, ["train.num_train_epochs=-1"])
    with pytest.raises(ConfigError, match=r"must be negative.*\(train.ignore_index\)"):
        config_from_dict({}, ["train.ignore_index=0"])


def test_saved_config_uses_the_runners_names(tmp_path):
    cfg = config_from_dict({"train": {"optim": "adamw_torch_fused", "report_to": ["none"]}})
    save_config(cfg, tmp_path / "c.yaml")
    saved = yaml.safe_load((tmp_path / "c.yaml").read_text())["train"]
    assert (saved["optim"], saved["report_to"]) == ("adamw", "none")


def _weights(init: str, task: str = "lm"):
    cfg = config_from_dict(
        {"task": task, "model": {"n_layer": 1, "n_head": 2, "n_embd": 64, "init": init}}
    )
    torch.manual_seed(0)
    return build_model(cfg, vocab_size=100, pad_id=0, num_labels=2 if task == "classify" else 0)


def test_init_xavier_and_normal_set_the_weights_they_name():
    xavier = _weights("xavier")
    attention = xavier.transformer.h[0].attn.c_attn  # Conv1D 64 -> 192
    fan_in, fan_out = attention.weight.shape
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert attention.weight.abs().max() <= bound
    assert attention.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert not attention.bias.any()
    normal = _weights("normal", "classify")
    assert normal.bert.encoder.layer[0].output.dense.weight.std().item() == pytest.approx(
        0.02, rel=0.05
    )
    assert not normal.bert.embeddings.word_embeddings.weight[0].any()  # the pad row stays zero
    default = _weights("default")
    assert not torch.equal(default.transformer.h[0].attn.c_attn.weight, attention.weight)


class _Logits(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, input_ids, attention_mask=None):
        return type("Out", (), {"logits": self.logits})()


def test_ignore_index_labels_take_no_part_in_the_loss():
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    batch = {
        "input_ids": torch.zeros(4, 2, dtype=torch.long),
        "attention_mask": torch.ones(4, 2, dtype=torch.long),
        "labels": torch.tensor([0, -1, 2, -1]),
    }
    loss, _ = forward_loss(_Logits(logits), batch, "classify", ignore_index=-1)
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([0, 2]))
    assert loss.item() == pytest.approx(expected.item())


def test_load_best_model_at_end_is_what_the_runner_does_and_false_is_refused():
    assert config_from_dict({"eval": {"load_best_model_at_end": True}}).eval.load_best_model_at_end
    with pytest.raises(ConfigError, match=r"checkpoints/last.pt.*\(eval.load_best_model_at_end\)"):
        config_from_dict({}, ["eval.load_best_model_at_end=false"])
    with pytest.raises(ConfigError, match="did you mean 'eval.load_best_model_at_end'"):
        config_from_dict({}, ["train.load_best_model_at_end=true"])
