"""`hpo export STUDY --onnx`: the best model as ONNX, checked against PyTorch with ONNX Runtime,
and logged beside the registered model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from test_model_registry import sqlite_store, tiny_study

from hpo.export_onnx import OnnxMismatchError, check_onnx, export_onnx, export_study_onnx
from hpo.tracking.model_registry import log_best_model
from runner.errors import UserInputError
from runner.export import load_trained_model

ort = pytest.importorskip("onnxruntime")
mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def lm_export(tmp_path_factory):
    """A tiny lm study linked to its run in a SQLite store, its model registered, then exported
    with export_study_onnx (what `hpo export STUDY --onnx` calls)."""
    base, folder = tmp_path_factory.getbasetemp(), tmp_path_factory.mktemp("onnx")
    study_dir = shutil.copytree(tiny_study(base, "lm"), folder / "lm")
    client, experiment = sqlite_store(base, folder)
    run_id = client.create_run(experiment).info.run_id
    (study_dir / "mlflow.json").write_text(
        json.dumps(
            {
                "tracking_uri": client.tracking_uri,
                "experiment_id": experiment,
                "parent_run_id": run_id,
            }
        )
    )
    version = log_best_model(client, run_id, study_dir)
    report = export_study_onnx(study_dir)
    return study_dir, client, run_id, version, report


@pytest.mark.slow
def test_lm_onnx_gives_pytorchs_logits_for_other_batch_and_sequence_sizes(lm_export):
    study_dir, *_, report = lm_export
    assert report["path"] == str(study_dir / "best" / "model.onnx")
    assert report["max_abs_diff"] <= 1e-4 and report["inputs"] == ["input_ids"]
    session = ort.InferenceSession(report["path"], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids"]
    model, tokenizer, _ = load_trained_model(study_dir / "best" / "best.pt")
    for text in ("t", "the quick brown", "a lazy dog jumps"):  # 1 to 16 tokens, one at a time
        ids = torch.tensor([tokenizer.encode(text)])
        (got,) = session.run(["logits"], {"input_ids": ids.numpy()})
        with torch.inference_mode():
            expected = model(input_ids=ids).logits.numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_onnx_file_is_logged_in_the_study_run_and_named_on_the_registered_version(lm_export):
    _, client, run_id, version, report = lm_export
    assert report["logged_to"] == run_id
    logged = {a.path for a in client.list_artifacts(run_id, "onnx")}
    assert logged == {"onnx/model.onnx", "onnx/check.json"}
    tag = client.get_model_version(version.name, version.version).tags["hpo.onnx"]
    assert tag.endswith("/onnx/model.onnx")


@pytest.mark.slow
def test_classifier_onnx_takes_an_attention_mask_and_gives_one_row_of_logits_per_text(
    tmp_path_factory, tmp_path
):
    checkpoint = tiny_study(tmp_path_factory.getbasetemp(), "classify") / "best" / "best.pt"
    report = export_onnx(checkpoint, tmp_path / "classifier.onnx")
    assert report["inputs"] == ["input_ids", "attention_mask"] and report["max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(report["path"], providers=["CPUExecutionProvider"])
    model, tokenizer, _ = load_trained_model(checkpoint)
    rows = [[tokenizer.cls_id, *tokenizer.encode(t), tokenizer.sep_id] for t in ("good", "bad dog")]
    ids = torch.full((2, max(map(len, rows))), tokenizer.pad_id)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
    (got,) = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask).logits.numpy()
    assert got.shape == (2, model.config.num_labels)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_outputs_beyond_the_tolerance_are_an_error_that_says_by_how_much(lm_export, monkeypatch):
    study_dir, *_, report = lm_export
    run = ort.InferenceSession.run

    def off_by_a_thousandth(self, names, feeds, *args):
        return [out + 1e-3 for out in run(self, names, feeds, *args)]

    monkeypatch.setattr(ort.InferenceSession, "run", off_by_a_thousandth)
    with pytest.raises(OnnxMismatchError, match=r"differ from PyTorch's by up to 0\.001"):
        check_onnx(report["path"], study_dir / "best" / "best.pt")
    assert check_onnx(report["path"], study_dir / "best" / "best.pt", atol=2e-3) > 9e-4


def test_exporting_a_folder_without_a_best_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match="no best checkpoint"):
        export_onnx(tmp_path, tmp_path / "model.onnx")


@pytest.mark.slow
def test_hpo_export_prints_one_line_per_artifact_and_none_of_the_exporters_chatter(
    lm_export, tmp_path, capfd
):
    from hpo.cli import main

    study_dir = lm_export[0]
    out = tmp_path / "again.onnx"
    assert main(["export", str(study_dir), "--onnx", "--no-track", "--out", str(out)]) == 0
    said = capfd.readouterr()  # at the file-descriptor level: torch's and onnxscript's too
    assert said.out.splitlines() == [
        f"onnx        {out}",
        said.out.splitlines()[1],
    ], said.out
    assert said.out.splitlines()[1].startswith("max |diff|  ")
    assert said.err == "", said.err
