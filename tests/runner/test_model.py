"""Models from config, from a local pretrained directory, with gradient checkpointing or compiled."""

import json

import pytest
import torch
import transformers

from runner import run_trial
from runner.checkpoint import load_checkpoint
from runner.data import prepare_data
from runner.data.tokenizer import TextTokenizer
from runner.errors import ConfigError
from runner.metrics_log import read_metrics


def save_small_pretrained(config, folder):
    """A tiny GPT-2 and its tokenizer saved with save_pretrained, as a user's local model would be."""
    data = prepare_data(config)
    model = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(
            vocab_size=data.tokenizer.vocab_size, n_positions=64, n_embd=32, n_layer=1, n_head=2
        )
    )
    model.save_pretrained(folder)
    data.tokenizer.save_pretrained(folder)
    return model


def test_pretrained_model_and_tokenizer_load_from_a_local_directory(tiny_lm_config, tmp_path):
    folder = tmp_path / "pretrained"
    saved = save_small_pretrained(tiny_lm_config(), folder)
    # learning rate 0: the trial's weights must be exactly the saved ones
    config = tiny_lm_config(
        f"model.pretrained={folder}",
        "train.learning_rate=0",
        "train.max_steps=2",
        "eval.eval_steps=2",
    )
    result = run_trial(config)
    assert result.status == "complete"
    weights = load_checkpoint(result.last_checkpoint)["model"]
    for name, tensor in saved.state_dict().items():
        assert torch.equal(weights[name], tensor), name
    tokenizer = TextTokenizer.from_pretrained(folder)
    assert tokenizer.kind == "pretrained"
    assert tokenizer.vocab_size == saved.config.vocab_size


def test_missing_pretrained_directory_is_a_config_error(tiny_lm_config, tmp_path):
    with pytest.raises(ConfigError, match="not a local model directory"):
        run_trial(tiny_lm_config(f"model.pretrained={tmp_path / 'nothing'}"))
    assert not (tmp_path / "trial").exists()


def test_gradient_checkpointing_gives_the_same_training_as_without(tiny_lm_config, tmp_path):
    plain = run_trial(
        tiny_lm_config(f"output_dir={tmp_path / 'a'}", "train.max_steps=5", "eval.eval_steps=5")
    )
    checkpointed = run_trial(
        tiny_lm_config(
            f"output_dir={tmp_path / 'b'}",
            "train.max_steps=5",
            "eval.eval_steps=5",
            "model.gradient_checkpointing=true",
        )
    )
    assert checkpointed.final_metrics["val_loss"] == pytest.approx(
        plain.final_metrics["val_loss"], rel=1e-4
    )


@pytest.mark.slow
def test_untied_output_layer_trains_its_own_weights_and_resumes_exactly(
    tiny_lm_config, stop_at, tmp_path
):
    def config(name, *extra):
        return tiny_lm_config(f"output_dir={tmp_path / name}", *extra)

    tied = run_trial(config("tied", "train.max_steps=10", "eval.eval_steps=10"))
    weights = load_checkpoint(tied.last_checkpoint)["model"]
    assert torch.equal(weights["lm_head.weight"], weights["transformer.wte.weight"])

    untied = "model.tie_word_embeddings=false"
    whole = run_trial(config("whole", untied))
    weights = load_checkpoint(whole.last_checkpoint)["model"]
    assert not torch.equal(weights["lm_head.weight"], weights["transformer.wte.weight"])
    # stopped at step 10 and resumed: the separate output layer comes back from the checkpoint
    stopped = run_trial(config("split", untied), stop_at(10))
    assert stopped.status == "pruned" and stopped.steps == 10
    resumed = run_trial(config("split", untied), resume=True)
    again = load_checkpoint(resumed.last_checkpoint)["model"]
    assert all(torch.equal(weights[k], again[k]) for k in weights)


def test_bf16_autocast_trains_on_cpu(tiny_lm_config, tmp_path):
    result = run_trial(tiny_lm_config("train.precision=bf16"))
    assert result.status == "complete"
    train = read_metrics(tmp_path / "trial" / "metrics.jsonl", "train")
    assert train[-1]["loss"] < train[0]["loss"] - 0.5, "bf16 training did not learn"


@pytest.mark.slow
def test_torch_compile_trains_to_the_same_loss_as_eager(tiny_lm_config, tmp_path):
    eager = run_trial(
        tiny_lm_config(
            f"output_dir={tmp_path / 'e'}",
            "train.max_steps=4",
            "eval.eval_steps=4",
            "eval.sample_tokens=0",
        )
    )
    compiled = run_trial(
        tiny_lm_config(
            f"output_dir={tmp_path / 'c'}",
            "train.max_steps=4",
            "eval.eval_steps=4",
            "eval.sample_tokens=0",
            "train.torch_compile=true",
        )
    )
    assert compiled.status == "complete"
    assert compiled.final_metrics["val_loss"] == pytest.approx(
        eager.final_metrics["val_loss"], rel=1e-3
    )
    saved = json.loads((tmp_path / "c" / "result.json").read_text())
    assert saved["last_checkpoint"], "the compiled model's weights are saved without a wrapper"
    assert not any(
        k.startswith("_orig_mod") for k in load_checkpoint(saved["last_checkpoint"])["model"]
    )
