"""Int8 dynamic quantization of a trained model's Linear layers, measured against fp32.

Dynamic quantization stores each Linear weight as int8 (one scale per tensor) and quantizes
the activations on the fly at each call; it needs no calibration data and runs on the CPU
only (fbgemm/x86 or qnnpack kernels). It uses torch.ao.quantization.quantize_dynamic: torch
2.13 marks it deprecated in favour of torchao's quantize_, but torchao is not installed here
and the torch.ao API still works, so its DeprecationWarnings are silenced around the calls.

What is quantized:
- every torch.nn.Linear (BERT's projections, pooler and classifier head);
- GPT-2's transformers Conv1D layers, which are Linear layers with a transposed weight: they
  are turned into nn.Linear first (same outputs), or an lm would have nothing to quantize;
- except a Linear whose weight is shared with another module (GPT-2's lm_head, tied to the
  token embedding): quantizing it would store the matrix twice, fp32 and int8, and grow the
  model. The report lists what was quantized and what was skipped.

The quantized model is saved as a torch.save file that loads with weights_only=True (state
dict, config, tokenizer, label names); load_quantized rebuilds the fp32 model from the config,
applies the same conversion and quantization, and loads the int8 weights into it.

Example:
    >>> report = quantize_checkpoint("runs/lm_tiny/checkpoints/best.pt")
    >>> report["int8"]["size_mb"] < report["fp32"]["size_mb"]
    True
"""

from __future__ import annotations

import contextlib
import copy
import io
import statistics
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runner.errors import UserInputError

FORMAT = "hpo-int8-dynamic"
VERSION = 1
MODEL_FILE = "model.pt"
REPORT_FILE = "quantize.json"
LATENCY_BATCHES = 20  # timed forward passes per model (after one warm-up pass)


class QuantizeError(UserInputError):
    """The model cannot be quantized (nothing to quantize) or the file is no quantized model."""


@contextlib.contextmanager
def _quiet_torch_ao() -> Iterator[None]:
    """torch.ao.quantization warns that it is deprecated at every call; said once in the docs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message=".*TypedStorage is deprecated.*")  # packed int8
        yield


def linear_from_conv1d(model: nn.Module) -> nn.Module:
    """Replace transformers' Conv1D modules (GPT-2) with nn.Linear computing the same thing
    (Conv1D's weight is [in, out], Linear's [out, in]); in place, returns the model."""
    from transformers.pytorch_utils import Conv1D

    for name, module in list(model.named_modules()):
        if isinstance(module, Conv1D):
            linear = nn.Linear(module.weight.shape[0], module.weight.shape[1])
            with torch.no_grad():
                linear.weight.copy_(module.weight.t())
                linear.bias.copy_(module.bias)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, linear)
    return model


def quantizable_linears(model: nn.Module) -> tuple[list[str], list[str]]:
    """(names of the Linear modules to quantize, names of those skipped: weight tied to another
    module's)."""
    owners: dict[int, int] = {}
    for module in model.modules():
        for param in module.parameters(recurse=False):
            owners[id(param)] = owners.get(id(param), 0) + 1
    chosen, tied = [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            (tied if owners[id(module.weight)] > 1 else chosen).append(name)
    return chosen, tied


def quantize_model(model: nn.Module) -> tuple[nn.Module, list[str], list[str]]:
    """(int8 copy of model, quantized module names, skipped tied ones); `model` is unchanged.
    QuantizeError when it has no Linear layer to quantize."""
    quantized = linear_from_conv1d(copy.deepcopy(model)).eval()
    names, tied = quantizable_linears(quantized)
    if not names:
        kinds = sorted({type(m).__name__ for m in model.modules()} - {type(model).__name__})
        raise QuantizeError(
            f"{type(model).__name__}: no Linear layer to quantize"
            + (f" (tied to an embedding: {', '.join(tied)})" if tied else "")
            + f"; it holds {', '.join(kinds[:8]) or 'no modules'}"
        )
    return _apply(quantized, names), names, tied


def _apply(model: nn.Module, names: Sequence[str]) -> nn.Module:
    from torch.ao.quantization import quantize_dynamic

    with _quiet_torch_ao():
        return quantize_dynamic(model, set(names), dtype=torch.qint8, inplace=True)


def weights_bytes(model: nn.Module) -> int:
    """Bytes of the model's state dict as torch.save writes it (shared tensors counted once)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def save_quantized(
    path: str | Path, model: nn.Module, names: Sequence[str], checkpoint_state: dict[str, Any]
) -> None:
    """Write the int8 model with what rebuilds it (config, tokenizer, labels), atomically."""
    from runner.files import atomic_write

    state = {
        "format": FORMAT,
        "version": VERSION,
        "quantized": list(names),
        "config": checkpoint_state["config"],
        "tokenizer": checkpoint_state["tokenizer"],
        "label_names": list(checkpoint_state.get("label_names", [])),
        "model": model.state_dict(),
    }
    atomic_write(path, lambda handle: torch.save(state, handle))


def load_quantized(path: str | Path) -> tuple[nn.Module, Any, Any]:
    """(int8 model in eval mode, tokenizer, config) from a file save_quantized wrote."""
    from runner.config import config_from_dict
    from runner.data.tokenizer import TextTokenizer
    from runner.model import build_model

    path = Path(path)
    try:
        with _quiet_torch_ao():
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign or truncated files
        raise QuantizeError(
            f"{path}: not a readable quantized model ({type(err).__name__})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise QuantizeError(f"{path}: not a model written by `hpo quantize`")
    config = config_from_dict(state["config"], source=str(path))
    tokenizer = TextTokenizer.from_json(state["tokenizer"])
    labels = [str(label) for label in state["label_names"]]
    model = linear_from_conv1d(
        build_model(config, tokenizer.vocab_size, tokenizer.pad_id, len(labels))
    )
    model = _apply(model.eval(), state["quantized"])
    with _quiet_torch_ao():
        model.load_state_dict(state["model"])
    return model.eval(), tokenizer, config


@torch.inference_mode()
def median_batch_latencies(
    models: dict[str, nn.Module], batches: Sequence[dict[str, torch.Tensor]], task: str
) -> dict[str, float]:
    """Median seconds of one forward pass per batch of each model: LATENCY_BATCHES timed calls
    each, cycling through the batches, after one warm-up call each (the first call allocates
    and picks kernels). The models take turns batch by batch, so that a load on the machine
    that comes and goes weighs on both alike."""
    from runner.loss import forward_loss

    for model in models.values():
        forward_loss(model, batches[0], task)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for i in range(LATENCY_BATCHES):
        batch = batches[i % len(batches)]
        for name, model in models.items():
            start = time.perf_counter()
            forward_loss(model, batch, task)
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in seconds.items()}


def quantize_checkpoint(
    checkpoint: str | Path, out_dir: str | Path | None = None, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Quantize a runner checkpoint's model, save it to out_dir/model.pt (default: quantized/
    beside the checkpoint), measure both models on the validation set of the checkpoint's config
    (as `hpo evaluate` does; overrides change where the data is read), write out_dir/
    quantize.json and return that report."""
    from runner.checkpoint import MODEL_KEYS, load_checkpoint
    from runner.config import apply_overrides, config_from_dict, config_to_dict
    from runner.data import prepare_data
    from runner.evaluate import evaluate
    from runner.export import load_trained_model
    from runner.files import atomic_write_json
    from runner.precision import Precision

    checkpoint = Path(checkpoint)
    out = Path(out_dir) if out_dir is not None else default_out_dir(checkpoint)
    if out.exists() and not out.is_dir():
        raise QuantizeError(f"{out}: not a folder; name a folder to write the int8 model to")
    model, _, config = load_trained_model(checkpoint, "hpo quantize")  # or CheckpointError
    try:
        quantized, names, tied = quantize_model(model)  # before any data work
    except QuantizeError as err:
        raise QuantizeError(f"{checkpoint}: {err}") from None
    if overrides:
        raw = apply_overrides(config_to_dict(config), overrides, "override")
        config = config_from_dict(raw, source=str(checkpoint))
    data = prepare_data(config)
    batches = data.val_batches(config.train.per_device_train_batch_size, 0)
    if not batches:
        raise QuantizeError(f"{checkpoint}: its validation split is empty; nothing to measure")
    cpu = Precision("fp32", torch.device("cpu"), None, use_grad_scaler=False)  # int8 runs on CPU
    models = {"fp32": model, "int8": quantized}
    latency = median_batch_latencies(models, batches, config.task)
    measured = {
        label: {
            "size_mb": weights_bytes(net) / 1e6,
            **evaluate(net, batches, config.task, cpu, len(data.label_names)),
            "latency_ms": latency[label] * 1e3,
        }
        for label, net in models.items()
    }
    metric = config.eval.metric_for_best_model
    state = load_checkpoint(checkpoint, require=MODEL_KEYS)
    save_quantized(out / MODEL_FILE, quantized, names, state)
    fp32, int8 = measured["fp32"], measured["int8"]
    report = {
        "checkpoint": str(checkpoint),
        "path": str(out / MODEL_FILE),
        "method": "torch.ao.quantization.quantize_dynamic, qint8, Linear layers",
        "engine": torch.backends.quantized.engine,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "task": config.task,
        "metric": metric,
        "quantized_modules": names,
        "skipped_tied_modules": tied,
        "validation_batches": len(batches),
        "latency_calls": LATENCY_BATCHES,
        "fp32": fp32,
        "int8": int8,
        "size_ratio": int8["size_mb"] / fp32["size_mb"],
        "metric_change": int8[metric] - fp32[metric] if metric in fp32 else None,
        "latency_ratio": int8["latency_ms"] / fp32["latency_ms"],
    }
    atomic_write_json(out / REPORT_FILE, report)
    return report


def default_out_dir(checkpoint: Path) -> Path:
    """quantized/ beside best.pt; quantized-<stem>/ beside any other (last.pt), so quantizing
    both keeps both."""
    stem = checkpoint.stem
    return checkpoint.with_name("quantized" if stem == "best" else f"quantized-{stem}")
