import torch

from runner import run_trial
from runner.export import export_pretrained, load_trained_model


def test_exported_checkpoint_is_a_pretrained_dir_the_runner_can_start_from(
    tiny_lm_config, tmp_path
):
    first = run_trial(tiny_lm_config("train.max_steps=10", "eval.eval_steps=10"))
    folder = export_pretrained(first.best_checkpoint, tmp_path / "exported")
    assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    model, tokenizer, config = load_trained_model(first.best_checkpoint)
    ids = torch.tensor([tokenizer.encode("the quick brown fox")])
    with torch.inference_mode():
        expected = model(input_ids=ids).logits
    # fine-tune from the export with lr 0: the first evaluation equals the exported model's
    again = run_trial(
        tiny_lm_config(
            f"model.pretrained={folder}",
            f"output_dir={tmp_path / 'ft'}",
            "train.learning_rate=0",
            "train.max_steps=1",
            "eval.eval_steps=1",
        )
    )
    assert again.final_metrics["val_loss"] == first.best_metrics["val_loss"]
    reloaded, _, _ = load_trained_model(again.best_checkpoint)
    with torch.inference_mode():
        assert torch.allclose(reloaded(input_ids=ids).logits, expected)


def test_evaluate_checkpoint_scores_the_whole_validation_split(tiny_lm_config):
    from runner.evaluate import evaluate_checkpoint

    result = run_trial(
        tiny_lm_config("train.max_steps=10", "eval.eval_steps=10", "eval.max_eval_batches=0")
    )
    metrics = evaluate_checkpoint(result.best_checkpoint)
    assert metrics["val_loss"] == result.best_metrics["val_loss"]
