"""The best model of a study as ONNX, checked against PyTorch, and logged beside the MLflow model.

The graph maps input_ids (lm) or input_ids and attention_mask (classify), int64 of shape
[batch, sequence], to logits: [batch, sequence, vocab] for an lm, [batch, labels] for a
classifier. Batch and sequence are dynamic (sequence up to the model's context). The export
uses torch.onnx's dynamo exporter (the TorchScript one cannot translate transformers 5's
attention masks). It is accepted only if ONNX Runtime, on inputs of other shapes than the one
traced, gives logits within |onnx - torch| <= atol + rtol * |torch| (default 1e-4 both) of
PyTorch's; otherwise export_onnx removes the file and raises OnnxMismatchError, which says by
how much they differ. check_onnx checks an existing file again.

Example:
    >>> export_study_onnx("runs/lr_wd")        # `hpo export lr_wd --onnx`
    {'path': 'runs/lr_wd/best/model.onnx', 'max_abs_diff': 2.4e-07, 'logged_to': '3f2a...', ...}

Over 300 lines because an export is accepted only once it is checked: export_onnx and
check_onnx share the model loading, the inputs of other shapes and the comparison with PyTorch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner.errors import UserInputError

ATOL = RTOL = 1e-4
ARTIFACT_DIR = "onnx"  # in the study's parent run, beside its logged model


class OnnxMismatchError(RuntimeError):
    """ONNX Runtime's outputs differ from PyTorch's by more than the tolerance."""


def export_study_onnx(
    study_dir: str | Path,
    out_path: str | Path | None = None,
    *,
    atol: float = ATOL,
    rtol: float = RTOL,
    log: bool = True,
) -> dict[str, Any]:
    """Export runs/<study>/best/ to ONNX (default best/model.onnx), check it, and log it to the
    study's MLflow run (named in runs/<study>/mlflow.json) when there is one and `log` is set.

    Returns export_onnx's report plus logged_to: the run id, or None.
    """
    study_dir = Path(study_dir)
    link_path = study_dir / "mlflow.json"
    link = _read_link(link_path) if log and link_path.is_file() else None  # checked first
    report = export_onnx(study_dir, out_path, atol=atol, rtol=rtol)
    report["logged_to"] = None
    if link is not None:
        from hpo.tracking.mlflow_store import open_client

        client, _ = open_client(link["tracking_uri"])
        log_onnx(client, link["parent_run_id"], report["path"], report)
        report["logged_to"] = link["parent_run_id"]
    return report


def export_onnx(
    source: str | Path,
    out_path: str | Path | None = None,
    *,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> dict[str, Any]:
    """Write the model of a checkpoint (or of a study folder's best/best.pt) as ONNX and check
    it with ONNX Runtime; returns what was written and checked (max_abs_diff among them)."""
    import torch

    from runner.export import load_trained_model

    _check_tolerance("atol", atol)
    _check_tolerance("rtol", rtol)
    checkpoint = _checkpoint_of(Path(source))
    out = Path(out_path) if out_path else checkpoint.with_name("model.onnx")
    _check_out(out)
    model, tokenizer, config = load_trained_model(checkpoint, "hpo export --onnx")
    out.parent.mkdir(parents=True, exist_ok=True)  # only once the checkpoint has loaded
    task = config.task
    context = config.data.block_size if task == "lm" else config.data.max_length
    names = ["input_ids"] if task == "lm" else ["input_ids", "attention_mask"]
    wrapper = _logits_module(model, task).eval()
    example = _inputs(task, tokenizer, batch=2, length=min(8, context), seed=0)
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=1, max=context)
    for stale in (out, out.with_name(out.name + ".data")):
        stale.unlink(missing_ok=True)
    with warnings.catch_warnings(), exporter_output_held():
        warnings.simplefilter("ignore")  # deprecations inside torch.export and transformers
        torch.onnx.export(
            wrapper,
            tuple(example[n] for n in names),
            str(out),
            input_names=names,
            output_names=["logits"],
            dynamo=True,
            verbose=False,
            dynamic_shapes={n: {0: batch, 1: sequence} for n in names},
            external_data=_parameter_bytes(model) > 1_500_000_000,
        )  # protobuf caps a file at 2 GB
    try:
        worst, shapes = _check(out, wrapper, task, tokenizer, names, context, atol, rtol)
    except OnnxMismatchError:
        for path in _files(out):
            path.unlink(missing_ok=True)
        raise
    return {
        "path": str(out),
        "checkpoint": str(checkpoint),
        "task": task,
        "inputs": names,
        "outputs": ["logits"],
        "dynamic_axes": {"0": "batch", "1": "sequence"},
        "max_sequence": context,
        "opset": _opset(out),
        "checked_shapes": [list(s) for s in shapes],
        "max_abs_diff": worst,
        "atol": atol,
        "rtol": rtol,
        "files": [p.name for p in _files(out)],
    }


def log_onnx(
    client: Any, run_id: str, onnx_path: str | Path, report: dict[str, Any] | None = None
) -> str:
    """Log the .onnx file (and its external data, if any) and the check report under onnx/ in
    the run; tag the run's registered model version (hpo.onnx) with where it is. The URI."""
    from hpo.tracking.model_registry import REGISTERED_TAG

    onnx_path = Path(onnx_path)
    for path in _files(onnx_path):
        client.log_artifact(run_id, str(path), ARTIFACT_DIR)
    if report is not None:
        client.log_dict(run_id, report, f"{ARTIFACT_DIR}/check.json")
    run = client.get_run(run_id)
    uri = f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_DIR}/{onnx_path.name}"
    registered = run.data.tags.get(REGISTERED_TAG)
    if registered:
        name, _, version = registered.rpartition("/")
        client.set_model_version_tag(name, version, "hpo.onnx", uri)
    return uri


EXPORTER_LOGGERS = ("torch", "onnxscript", "onnx_ir", "onnx")


@contextlib.contextmanager
def exporter_output_held() -> Iterator[None]:
    """Hold what the exporter prints (about 80 lines: torch's registration notices, onnxscript's
    optimizer passes) in a temporary file; it reaches stderr only when the export fails.

    Three ways in, three ways held: its loggers below ERROR are off (their handlers hold their
    own handles to the streams), Python's sys.stdout and sys.stderr go to the file, and so do
    file descriptors 1 and 2 (C++ code and print()s of libraries that hold the descriptors).
    """
    levels = {name: logging.getLogger(name).level for name in EXPORTER_LOGGERS}
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as held:
        text = open(held.fileno(), "w", buffering=1, closefd=False)  # noqa: SIM115
        os.dup2(held.fileno(), 1)
        os.dup2(held.fileno(), 2)
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        failed = True
        try:
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield
            failed = False
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            text.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if failed:  # what the exporter said is what tells why
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", "replace")[-20000:])
                sys.stderr.flush()
            text.close()


def _check_tolerance(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserInputError(f"--{name} {value!r}: expected a finite number > 0 (--{name})")
    if value <= 0:
        raise UserInputError(f"--{name} {value!r}: expected a finite number > 0 (--{name})")


def _check_out(out: Path) -> None:
    """Refuse an output path that cannot be an ONNX file, before any work."""
    if out.suffix != ".onnx":
        raise UserInputError(f"{out}: an ONNX file's name ends in .onnx (--out)")
    if out.is_dir():
        raise UserInputError(f"{out}: is a folder; name the .onnx file to write (--out)")
    for parent in out.parents:  # the first existing ancestor must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise UserInputError(f"{parent}: not a folder, so {out} cannot be written (--out)")
            break


def _read_link(path: Path) -> dict[str, str]:
    """The study's mlflow.json (tracking_uri, parent_run_id); a UserInputError when damaged."""
    try:
        link = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserInputError(
            f"{path}: damaged ({type(err).__name__}); pass --no-track to export without logging"
        ) from None
    if not isinstance(link, dict) or not all(
        isinstance(link.get(key), str) for key in ("tracking_uri", "parent_run_id")
    ):
        raise UserInputError(
            f"{path}: expected tracking_uri and parent_run_id; pass --no-track to export "
            "without logging (tracking_uri)"
        )
    return link


def _checkpoint_of(source: Path) -> Path:
    if source.is_dir():
        checkpoint = source / "best" / "best.pt"
        if not checkpoint.is_file():
            raise UserInputError(
                f"{source}: no best checkpoint ({checkpoint} not found); export "
                "a study that has a complete trial, or pass a checkpoint file"
            )
        return checkpoint
    if not source.is_file():
        raise UserInputError(f"{source}: neither a study folder nor a checkpoint file")
    return source


def _logits_module(model: Any, task: str) -> Any:
    import torch

    class LogitsOf(torch.nn.Module):
        """The model with plain tensors in and logits out: what the ONNX graph holds."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
            if task == "lm":
                return self.model(input_ids=input_ids).logits
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return LogitsOf()


def _inputs(task: str, tokenizer: Any, batch: int, length: int, seed: int) -> dict[str, Any]:
    """Random token ids of shape [batch, length]; classify: [cls] ids [sep], rows padded to
    different lengths, with the attention mask the runner would give them."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, tokenizer.vocab_size, (batch, length), generator=generator)
    if task == "lm":
        return {"input_ids": ids}
    mask = torch.ones_like(ids)
    for row in range(batch):
        used = max(2, length - row * max(1, length // (batch + 1)))  # the first row is full
        ids[row, 0], ids[row, used - 1] = tokenizer.cls_id, tokenizer.sep_id
        ids[row, used:], mask[row, used:] = tokenizer.pad_id, 0
    return {"input_ids": ids, "attention_mask": mask}


def check_onnx(
    onnx_path: str | Path, checkpoint: str | Path, *, atol: float = ATOL, rtol: float = RTOL
) -> float:
    """Run an exported file with ONNX Runtime on inputs of two shapes and compare its logits
    with the checkpoint's in PyTorch; the largest |onnx - torch|, or OnnxMismatchError."""
    from runner.export import load_trained_model

    model, tokenizer, config = load_trained_model(checkpoint, "hpo export --onnx")
    task = config.task
    context = config.data.block_size if task == "lm" else config.data.max_length
    names = ["input_ids"] if task == "lm" else ["input_ids", "attention_mask"]
    wrapper = _logits_module(model, task).eval()
    return _check(Path(onnx_path), wrapper, task, tokenizer, names, context, atol, rtol)[0]


def _check(
    path: Path,
    wrapper: Any,
    task: str,
    tokenizer: Any,
    names: list[str],
    context: int,
    atol: float,
    rtol: float,
) -> tuple[float, list[tuple[int, int]]]:
    import numpy as np
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shapes = [(1, max(2, context // 2)), (3, context)]  # not the traced shape: the axes are dynamic
    worst = 0.0
    for seed, (batch, length) in enumerate(shapes, start=1):
        inputs = _inputs(task, tokenizer, batch, length, seed)
        with torch.inference_mode():
            expected = wrapper(*(inputs[n] for n in names)).float().numpy()
        (got,) = session.run(["logits"], {n: inputs[n].numpy() for n in names})
        diff = np.abs(got - expected) if got.shape == expected.shape else np.array([np.inf])
        worst = max(worst, float(diff.max()))
        if not np.all(diff <= atol + rtol * np.abs(expected)):
            raise OnnxMismatchError(
                f"{path}: ONNX Runtime's logits differ from PyTorch's by up to {diff.max():.3g} "
                f"on inputs of shape {[batch, length]} (shapes {got.shape} vs {expected.shape}), "
                f"beyond atol {atol:g} + rtol {rtol:g} * |logits|. Check the onnxruntime "
                "version, or pass a larger atol if the difference is expected"
            )
    return worst, shapes


def _parameter_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _files(onnx_path: Path) -> list[Path]:
    data = onnx_path.with_name(onnx_path.name + ".data")
    return [onnx_path, data] if data.is_file() else [onnx_path]


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
