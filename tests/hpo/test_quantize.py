"""`hpo quantize RUN`: int8 dynamic quantization of a trained model, its report against fp32,
the int8 model loaded back, MLflow logging, and what it refuses."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers
from test_model_registry import sqlite_store, tiny_study

from hpo.cli import main
from runner.errors import UserInputError
from runner.export import load_trained_model
from runner.quantize import QuantizeError, load_quantized, quantize_model

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def tracked_study(tmp_path_factory):
    """A copy of the tiny lm study (4 training steps) linked to a parent run and trial 0's
    child run in a SQLite MLflow store, as `hpo search` leaves them."""
    base, folder = tmp_path_factory.getbasetemp(), tmp_path_factory.mktemp("quantize")
    study_dir = shutil.copytree(tiny_study(base, "lm"), folder / "lm")
    client, experiment = sqlite_store(base, folder)
    parent = client.create_run(experiment).info.run_id
    child = client.create_run(
        experiment, tags={"mlflow.parentRunId": parent, "hpo.trial": "0"}
    ).info.run_id
    link = {"tracking_uri": client.tracking_uri, "experiment_id": experiment}
    (study_dir / "mlflow.json").write_text(json.dumps({**link, "parent_run_id": parent}))
    return study_dir, client, parent, child


@pytest.fixture(scope="module")
def study_quantized(tracked_study):
    """`hpo quantize STUDY` (the study's best), run through the CLI's main."""
    study_dir, *_ = tracked_study
    assert main(["quantize", str(study_dir)]) == 0
    folder = study_dir / "best" / "quantized"
    return json.loads((folder / "quantize.json").read_text())


@pytest.mark.slow
def test_report_compares_int8_with_fp32_on_size_metric_and_latency(study_quantized):
    report = study_quantized
    fp32, int8 = report["fp32"], report["int8"]
    assert report["metric"] == "val_loss" and report["task"] == "lm"
    # GPT-2's Conv1D projections are quantized; the lm_head tied to the embedding is not
    assert len(report["quantized_modules"]) == 4 and report["skipped_tied_modules"] == ["lm_head"]
    assert 0 < int8["size_mb"] < fp32["size_mb"] and report["size_ratio"] < 0.9
    assert abs(int8["val_loss"] - fp32["val_loss"]) < 0.02 * fp32["val_loss"]
    assert report["metric_change"] == pytest.approx(int8["val_loss"] - fp32["val_loss"])
    assert fp32["latency_ms"] > 0 and int8["latency_ms"] > 0
    assert set(fp32) == set(int8) == {"size_mb", "val_loss", "val_perplexity", "latency_ms"}


def test_int8_model_loads_back_and_gives_logits_close_to_fp32(tracked_study, study_quantized):
    study_dir, *_ = tracked_study
    fp32, tokenizer, _ = load_trained_model(study_dir / "best" / "best.pt")
    int8, _, config = load_quantized(study_quantized["path"])
    assert config.task == "lm"
    kinds = {m._get_name() for m in int8.modules()}  # the name its repr shows
    assert "DynamicQuantizedLinear" in kinds and "Conv1D" not in kinds
    ids = torch.tensor([tokenizer.encode("the quick brown")])  # within block_size 16
    with torch.inference_mode():
        expected, got = fp32(input_ids=ids).logits, int8(input_ids=ids).logits
    assert not torch.equal(got, expected)  # int8 weights, not the fp32 ones
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_study_result_is_logged_to_its_parent_run(tracked_study, study_quantized):
    _, client, parent, _ = tracked_study
    logged = {a.path for a in client.list_artifacts(parent, "quantized")}
    assert logged == {"quantized/model.pt", "quantized/quantize.json"}
    metrics = client.get_run(parent).data.metrics
    assert metrics["quantized.int8.size_mb"] < metrics["quantized.fp32.size_mb"]


@pytest.mark.slow
def test_trial_folder_is_quantized_beside_its_checkpoint_and_logged_to_its_child_run(
    tracked_study, capsys
):
    study_dir, client, _, child = tracked_study
    assert main(["quantize", str(study_dir / "trials" / "0")]) == 0
    out = capsys.readouterr().out
    assert "size (MB)" in out and "latency/batch (ms)" in out and f"logged to   {child}" in out
    folder = study_dir / "trials" / "0" / "checkpoints" / "quantized"
    assert json.loads((folder / "quantize.json").read_text())["checkpoint"].endswith("best.pt")
    assert {a.path for a in client.list_artifacts(child, "quantized")} == {
        "quantized/model.pt",
        "quantized/quantize.json",
    }


def test_a_model_without_an_untied_linear_layer_is_refused():
    # GPT-2 without blocks: its only Linear is the lm_head, tied to the token embedding
    config = transformers.GPT2Config(n_layer=0, n_embd=8, n_head=2, vocab_size=12)
    with pytest.raises(QuantizeError, match="no Linear layer to quantize.*tied.*lm_head"):
        quantize_model(transformers.GPT2LMHeadModel(config))
    with pytest.raises(QuantizeError, match="no Linear layer"):
        quantize_model(torch.nn.Sequential(torch.nn.Embedding(4, 2)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "missing: not found"),
        (lambda tmp: tmp, "no checkpoints/best.pt or last.pt"),
        (lambda tmp: _write(tmp / "best.pt", b"not a zip"), "not a readable runner checkpoint"),
    ],
)
def test_bad_sources_are_one_line_and_exit_2(tmp_path, capsys, make, message):
    assert main(["quantize", str(make(tmp_path)), "--no-track"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpo: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "quantized").exists()


def test_an_out_path_that_is_a_file_is_refused_before_any_work(tracked_study, tmp_path, capsys):
    study_dir, *_ = tracked_study
    _write(tmp_path / "taken", b"")
    argv = ["quantize", str(study_dir / "best" / "best.pt"), "--out", str(tmp_path / "taken")]
    assert main([*argv, "--no-track"]) == 2
    assert "taken: not a folder" in capsys.readouterr().err


def test_a_study_without_a_best_checkpoint_is_refused(tmp_path):
    from hpo.quantize_command import resolve_source

    (tmp_path / "study.yaml").write_text("study: s\n")
    with pytest.raises(UserInputError, match="no best checkpoint"):
        resolve_source(tmp_path)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path
