"""Multi-task fine-tuning (task: multitask): one shared encoder, a head and a loss weight per
task, per-task metrics and their mean as the objective (runner/multitask.py, runner/data/multitask.py)."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from runner import run_trial
from runner.checkpoint import load_checkpoint
from runner.config import config_from_dict, load_config
from runner.data import prepare_data
from runner.data.multitask import split_batch
from runner.errors import ConfigError, DataError
from runner.evaluate import evaluate_checkpoint
from runner.export import export_pretrained
from runner.jsonl import read_records
from runner.metrics_log import reproducible
from runner.model import build_model
from runner.multitask import MultiTaskClassifier
from runner.quantize import quantize_checkpoint

SHIPPED_DATA = Path(__file__).parents[2] / "data"


def multitask_config(tmp_path: Path, *overrides: str, sentiment_weight=1.0, aspect_weight=0.5):
    """Two shipped tasks (sentiment: 2 classes, aspect: 3) and a model that trains in ms a step."""
    raw = {
        "task": "multitask",
        "output_dir": str(tmp_path / "trial"),
        "tasks": [
            {
                "name": "sentiment",
                "path": str(SHIPPED_DATA / "sentiment"),
                "num_labels": 2,
                "loss_weight": sentiment_weight,
            },
            {
                "name": "aspect",
                "path": str(SHIPPED_DATA / "aspect"),
                "num_labels": 3,
                "loss_weight": aspect_weight,
            },
        ],
        "data": {"tokenizer": "char", "max_length": 32, "max_tokens_per_batch": 128},
        "model": {"n_layer": 1, "n_head": 2, "n_embd": 16},
        "train": {"max_steps": 6, "logging_steps": 2, "learning_rate": 3e-3},
        "eval": {"eval_steps": 3, "max_eval_batches": 2, "metric_for_best_model": "val_accuracy"},
    }
    return config_from_dict(raw, list(overrides))


def history(output_dir: Path) -> list[dict]:
    return [reproducible(record) for record in read_records(output_dir / "metrics.jsonl")]


def test_an_experiment_file_reads_tasks_with_paths_relative_to_it(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "mt.yaml").write_text(
        "task: multitask\ntasks:\n"
        "  - {name: a, path: ../data_a, num_labels: 2}\n"
        "  - {name: b, path: ../data_b, num_labels: 3, loss_weight: 0.25}\n"
    )
    config = load_config(tmp_path / "exp" / "mt.yaml")
    assert [(t.name, t.path, t.num_labels, t.loss_weight) for t in config.tasks] == [
        ("a", str(tmp_path / "data_a"), 2, 1.0),
        ("b", str(tmp_path / "data_b"), 3, 0.25),
    ]


@pytest.mark.parametrize(
    ("tasks", "key", "words"),
    [
        ([{"name": "a", "path": "x", "num_labels": 2, "weight": 1}], "tasks.0.weight", "unknown"),
        ([{"name": "a", "num_labels": 2}], "tasks.0.path", "needs path"),
        (
            [{"name": "a", "path": "x", "num_labels": 2, "loss_weight": 0}],
            "tasks.0.loss_weight",
            "> 0",
        ),
        ([{"name": "a", "path": "x", "num_labels": 1}], "tasks.0.num_labels", "[2,"),
        (
            [
                {"name": "a", "path": "x", "num_labels": 2},
                {"name": "a", "path": "y", "num_labels": 2},
            ],
            "tasks.1.name",
            "duplicate",
        ),
        ([{"name": "a/b", "path": "x", "num_labels": 2}], "tasks.0.name", "not a task name"),
        ([], "tasks", "at least one"),
        ("a", "tasks", "list of tasks"),
    ],
)
def test_bad_tasks_are_refused_naming_the_key(tasks, key, words):
    with pytest.raises(ConfigError) as refused:
        config_from_dict({"task": "multitask", "tasks": tasks}, source="exp.yaml")
    message = str(refused.value)
    assert message.startswith("exp.yaml: ") and message.endswith(f"({key})") and words in message


def test_tasks_belong_to_multitask_and_multitask_to_tasks():
    with pytest.raises(ConfigError, match=r"\(tasks\)$"):
        config_from_dict(
            {"task": "classify", "tasks": [{"name": "a", "path": "x", "num_labels": 2}]}
        )
    with pytest.raises(ConfigError, match=r"\(data.path\)$"):
        config_from_dict(
            {
                "task": "multitask",
                "data": {"path": "x"},
                "tasks": [{"name": "a", "path": "x", "num_labels": 2}],
            }
        )


def test_a_task_s_key_can_be_overridden_as_a_search_space_would(tmp_path):
    config = multitask_config(tmp_path, "tasks.1.loss_weight=0.25", "tasks.0.num_labels=2")
    assert [t.loss_weight for t in config.tasks] == [1.0, 0.25]
    with pytest.raises(ConfigError, match=r"2 task\(s\), no tasks.2 .*\(tasks.2.loss_weight\)$"):
        multitask_config(tmp_path, "tasks.2.loss_weight=1")
    with pytest.raises(ConfigError, match="unknown config key 'tasks.0.weight'"):
        multitask_config(tmp_path, "tasks.0.weight=1")
    with pytest.raises(ConfigError, match=r"\(tasks.1.loss_weight\)$"):
        multitask_config(tmp_path, "tasks.1.loss_weight=0")


def test_per_task_metrics_can_be_the_objective_and_unknown_ones_are_refused(tmp_path):
    config = multitask_config(tmp_path, "eval.metric_for_best_model=eval_aspect_f1")
    assert config.eval.metric_for_best_model == "val_aspect_f1"
    with pytest.raises(ConfigError, match="eval.metric_for_best_model"):
        multitask_config(tmp_path, "eval.metric_for_best_model=val_other_accuracy")


def test_num_labels_must_match_the_task_s_data(tmp_path):
    folder_tasks = [
        {"name": "sentiment", "path": str(SHIPPED_DATA / "sentiment"), "num_labels": 2},
        {"name": "aspect", "path": str(SHIPPED_DATA / "aspect"), "num_labels": 4},
    ]
    # a folder's classes (its files) are counted before any data is read
    with pytest.raises(DataError, match=r"holds 3 classes.*\(tasks.1.num_labels\)$"):
        prepare_data(multitask_config(tmp_path, "tasks=" + json.dumps(folder_tasks)))
    # a table's, once it is read
    table = tmp_path / "three.csv"
    table.write_text("text,label\n" + "".join(f"example {i},{'abc'[i % 3]}\n" for i in range(60)))
    table_tasks = [{"name": "letters", "path": str(table), "num_labels": 2}]
    with pytest.raises(DataError, match=r"has 3 classes.*\(tasks.0.num_labels\)$"):
        prepare_data(multitask_config(tmp_path, "tasks=" + json.dumps(table_tasks)))


def test_a_missing_task_path_is_named_by_its_key(tmp_path):
    config = multitask_config(
        tmp_path,
        "tasks=" + json.dumps([{"name": "a", "path": str(tmp_path / "nowhere"), "num_labels": 2}]),
    )
    with pytest.raises(DataError, match=r"nowhere does not exist.*\(tasks.0.path\)$"):
        prepare_data(config)


def test_every_micro_batch_holds_each_task_and_one_tokenizer_encodes_them(tmp_path):
    data = prepare_data(multitask_config(tmp_path))
    assert data.task_labels == {"sentiment": ["neg", "pos"], "aspect": ["cast", "craft", "story"]}
    batch = data.train_batch(5, 0)
    parts = split_batch(batch)
    assert list(parts) == ["sentiment", "aspect"]
    for part in parts.values():
        assert set(part) == {"input_ids", "attention_mask", "labels"}
        assert int(part["input_ids"][0, 0]) == data.tokenizer.cls_id
    assert data.num_tokens(batch) == sum(int(p["attention_mask"].sum()) for p in parts.values())
    # a pure function of the micro-batch index (what exact resume relies on)
    again = prepare_data(multitask_config(tmp_path)).train_batch(5, 0)
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    # validation batches are each one task's; max_eval_batches counts per task
    tasks = [list(split_batch(b)) for b in data.val_batches(0, 2)]
    assert tasks == [["sentiment"], ["sentiment"], ["aspect"], ["aspect"]]
    assert data.stats["sentiment_num_labels"] == 2 and data.stats["aspect_num_labels"] == 3


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The two shipped tasks, prepared once for the model tests (loss weights do not change it)."""
    return prepare_data(multitask_config(tmp_path_factory.mktemp("prepared")))


def model_and_batch(tmp_path, prepared, **weights):
    config = multitask_config(tmp_path, "model.dropout=0", **weights)
    torch.manual_seed(0)
    model = build_model(config, prepared.tokenizer.vocab_size, prepared.tokenizer.pad_id)
    return model, prepared.train_batch(0, 0)


def test_the_loss_is_the_weighted_sum_of_the_tasks_cross_entropies(tmp_path, prepared):
    model, batch = model_and_batch(tmp_path, prepared, sentiment_weight=2.0, aspect_weight=0.25)
    out = model(batch)
    parts = split_batch(batch)
    expected = {task: F.cross_entropy(out.logits[task], parts[task]["labels"]) for task in parts}
    assert out.logits["sentiment"].shape[-1] == 2 and out.logits["aspect"].shape[-1] == 3
    for task in parts:
        torch.testing.assert_close(out.task_losses[task], expected[task])
    torch.testing.assert_close(out.loss, 2.0 * expected["sentiment"] + 0.25 * expected["aspect"])
    # the same weights and batch with other loss weights: only the weighting changes
    other, _ = model_and_batch(tmp_path, prepared, sentiment_weight=1.0, aspect_weight=1.0)
    torch.testing.assert_close(other(batch).loss, expected["sentiment"] + expected["aspect"])


def test_one_encoder_is_shared_and_both_task_losses_reach_it(tmp_path, prepared):
    model, batch = model_and_batch(tmp_path, prepared, sentiment_weight=1.0, aspect_weight=0.5)
    assert isinstance(model, MultiTaskClassifier) and set(model.heads) == {"sentiment", "aspect"}
    encoder = list(model.encoder.parameters())
    heads = {task: list(head.parameters()) for task, head in model.heads.items()}
    # one set of encoder weights: every parameter is the encoder's or exactly one head's
    everything = {id(p) for p in model.parameters()}
    assert everything == {id(p) for p in encoder} | {id(p) for ps in heads.values() for p in ps}
    assert len(everything) == len(encoder) + sum(len(ps) for ps in heads.values())

    def gradients(sub_batch):
        model.zero_grad(set_to_none=True)
        model(sub_batch).loss.backward()
        return [None if p.grad is None else p.grad.clone() for p in model.parameters()]

    parts = split_batch(batch)
    only = {task: {k: v for k, v in batch.items() if k.startswith(f"{task}/")} for task in parts}
    sentiment, aspect, both = (
        gradients(only["sentiment"]),
        gradients(only["aspect"]),
        gradients(batch),
    )
    params = list(model.parameters())
    for index, param in enumerate(params):
        in_head = {task for task, ps in heads.items() if any(p is param for p in ps)}
        if in_head == {"sentiment"}:  # a head hears only its own task
            assert aspect[index] is None and sentiment[index] is not None
        elif in_head == {"aspect"}:
            assert sentiment[index] is None and aspect[index] is not None
    embeddings = next(
        i for i, p in enumerate(params) if p is model.encoder.embeddings.word_embeddings.weight
    )
    assert sentiment[embeddings].abs().sum() > 0 and aspect[embeddings].abs().sum() > 0
    for index in range(len(encoder)):  # encoder parameters come first in model.parameters()
        if sentiment[index] is None:
            assert aspect[index] is None and both[index] is None
            continue
        # the encoder's gradient is the sum of the tasks' gradients, each with its loss weight
        # (the aspect-only loss is 0.5 * its cross-entropy already)
        torch.testing.assert_close(both[index], sentiment[index] + aspect[index])


@pytest.mark.slow
def test_a_short_trial_records_each_task_s_metrics_and_their_mean(tmp_path):
    config = multitask_config(tmp_path)
    result = run_trial(config)
    assert result.status == "complete" and result.steps == 6
    records = history(tmp_path / "trial")
    evals = [r for r in records if r["type"] == "eval"]
    assert [r["step"] for r in evals] == [3, 6]
    for record in evals:
        for metric in ("loss", "accuracy", "f1"):
            per_task = [record[f"val_sentiment_{metric}"], record[f"val_aspect_{metric}"]]
            assert record[f"val_{metric}"] == pytest.approx(sum(per_task) / 2)
        assert 0 <= record["val_aspect_accuracy"] <= 1
    trains = [r for r in records if r["type"] == "train"]
    assert len(trains) == 3 and all(0 <= r["train_accuracy"] <= 1 for r in trains)
    for record in trains:  # each task's own cross-entropy; the loss weights them 1 and 0.5
        assert record["train_sentiment_loss"] > 0 and record["train_aspect_loss"] > 0
        weighted = record["train_sentiment_loss"] + 0.5 * record["train_aspect_loss"]
        assert record["loss"] == pytest.approx(weighted, rel=0.2)
    saved = json.loads((tmp_path / "trial" / "result.json").read_text())
    assert saved["objective"] == "val_accuracy"
    assert saved["final_metrics"] == {
        k: v for k, v in evals[-1].items() if k.startswith("val_") and k != "val_latency_ms"
    }
    assert saved["best_value"] == max(r["val_accuracy"] for r in evals)
    # the checkpoint holds every head and each task's class names
    state = load_checkpoint(tmp_path / "trial" / "checkpoints" / "last.pt")
    assert {"heads.sentiment.weight", "heads.aspect.weight"} <= set(state["model"])
    assert state["task_label_names"] == {
        "sentiment": ["neg", "pos"],
        "aspect": ["cast", "craft", "story"],
    }
    # the trained model evaluates from its checkpoint, but is no single transformers model
    best = tmp_path / "trial" / "checkpoints" / "best.pt"
    metrics = evaluate_checkpoint(best)
    assert {"val_sentiment_accuracy", "val_aspect_f1", "val_accuracy"} <= set(metrics)
    with pytest.raises(ConfigError, match=r"multitask model has a head per task.*\(task\)$"):
        export_pretrained(best, tmp_path / "exported")
    with pytest.raises(ConfigError, match=r"hpo quantize takes an lm or classify model"):
        quantize_checkpoint(best)
    assert not (best.parent / "quantized").exists()


@pytest.mark.slow
def test_a_resumed_trial_logs_the_uninterrupted_run_s_history(tmp_path, stop_at):
    overrides = ("train.max_steps=8", "eval.eval_steps=4", "model.dropout=0.1")
    run_trial(multitask_config(tmp_path, f"output_dir={tmp_path / 'whole'}", *overrides))
    split = multitask_config(tmp_path, f"output_dir={tmp_path / 'split'}", *overrides)
    assert run_trial(split, stop_at(4)).status == "pruned"
    resumed = run_trial(split, resume=True)
    assert resumed.status == "complete" and resumed.resumed_from_step == 4
    assert history(tmp_path / "split") == history(tmp_path / "whole")
    whole = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")["model"]
    again = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(whole[k], again[k]) for k in whole)


def small_tasks(tmp_path: Path) -> list[dict]:
    """Two small CSV tasks: 2 and 3 classes."""
    rows = {"two": "ab", "three": "xyz"}
    tasks = []
    for name, labels in rows.items():
        path = tmp_path / f"{name}.csv"
        lines = [f"words {i} {'ab'[i % 2]} {i % 7},{labels[i % len(labels)]}" for i in range(90)]
        path.write_text("text,label\n" + "\n".join(lines) + "\n")
        tasks.append({"name": name, "path": str(path), "num_labels": len(labels)})
    return tasks


def test_a_pretrained_encoder_is_shared_with_its_own_tokenizer(tmp_path):
    import transformers

    from runner.data.tokenizer import TextTokenizer

    tokenizer = TextTokenizer.train_char(["words 0123456789 ab"])
    saved = transformers.BertModel(
        transformers.BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
            pad_token_id=tokenizer.pad_id,
        )
    )
    saved.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    tasks = json.dumps(small_tasks(tmp_path))
    config = multitask_config(tmp_path, f"tasks={tasks}", f"model.pretrained={tmp_path / 'model'}")
    data = prepare_data(config)
    assert data.tokenizer.encode("words 12 ab") == tokenizer.encode("words 12 ab")
    model = build_model(config, data.tokenizer.vocab_size, data.tokenizer.pad_id)
    assert isinstance(model.encoder, transformers.BertModel)
    expected = saved.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.encoder.state_dict().items())
    out = model(data.train_batch(0, 0))
    assert out.logits["two"].shape[-1] == 2 and out.logits["three"].shape[-1] == 3
    assert torch.isfinite(out.loss)


def test_layer_wise_options_see_the_heads_on_top_of_the_shared_encoder(tmp_path, prepared):
    from runner.finetune import parameter_depths

    model, _ = model_and_batch(tmp_path, prepared)
    depths, blocks = parameter_depths(model)
    assert blocks == 1
    named = dict(model.named_parameters())
    assert depths[id(named["encoder.embeddings.word_embeddings.weight"])] == 0
    assert depths[id(named["encoder.encoder.layer.0.output.dense.weight"])] == 1
    assert depths[id(named["heads.sentiment.weight"])] == depths[id(named["heads.aspect.weight"])]
    assert depths[id(named["heads.aspect.weight"])] == 2
