"""The trial configuration: frozen, typed, documented dataclasses loaded from YAML.

Names follow transformers.TrainingArguments where an equivalent exists
(learning_rate, weight_decay, warmup_ratio, lr_scheduler_type, max_grad_norm, ...)
so that users of the HF Trainer recognise them.

Example:
    >>> cfg = load_config("experiments/lm_tiny.yaml", overrides=["train.learning_rate=3e-4"])
    >>> cfg.train.learning_rate
    0.0003
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from runner.direction import lower_is_better
from runner.errors import ConfigError
from runner.files import atomic_write_text
from runner.task_config import KEYS as TASK_KEYS
from runner.task_config import TaskConfig, build_tasks, task_metrics, validate_tasks
from runner.yaml_io import excerpt, load_yaml_file, load_yaml_text


def _f(default: Any, doc: str) -> Any:
    """A dataclass field with its one-line documentation attached."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class CleanConfig:
    """Optional cleaning steps, in this order (runner/data/clean.py); each is counted in the data record."""

    html: bool = _f(False, "convert HTML to its visible text (html.parser; script/style dropped)")
    unicode_normalization: Literal["none", "NFC", "NFKC", "NFD", "NFKD"] = _f(
        "none", "unicodedata normalization form applied to every document"
    )
    min_chars: int = _f(0, "drop documents (lm) or examples (classify) shorter than this (0: off)")
    max_chars: int = _f(0, "drop documents or examples longer than this (0: off)")
    max_non_alpha_fraction: float = _f(
        1.0,
        "drop documents whose non-space characters are more than this fraction non-letters (1: off)",
    )
    language: str | None = _f(
        None, "keep only documents langdetect identifies as this code, e.g. en (needs hpo[clean])"
    )
    dedup: Literal["none", "exact", "near"] = _f(
        "none",
        "drop later duplicates: exact (same text) or near (exact, then MinHash Jaccard of character "
        "5-grams >= near_duplicate_threshold; needs hpo[clean])",
    )
    near_duplicate_threshold: float = _f(
        0.9, "dedup near: estimated Jaccard similarity at or above which a document is a duplicate"
    )

    @property
    def enabled(self) -> bool:
        """Whether any step is on (near_duplicate_threshold alone changes nothing)."""
        return (
            self.html
            or self.unicode_normalization != "none"
            or self.min_chars > 0
            or self.max_chars > 0
            or self.max_non_alpha_fraction < 1
            or self.language is not None
            or self.dedup != "none"
        )


@dataclass(frozen=True)
class DataConfig:
    """Where the examples come from and how they are tokenized."""

    path: str | None = _f(
        None,
        "lm: text file or folder (None: the Python standard library's source); classify: CSV/TSV file or folder of one file per class",
    )
    tokenizer: Literal["bpe", "char"] = _f(
        "bpe", "byte-level BPE trained on the training split, or one token per character"
    )
    vocab_size: int = _f(2048, "BPE vocabulary size (ignored for char)")
    block_size: int = _f(128, "lm: tokens per packed training block")
    max_length: int = _f(128, "classify: examples are truncated to this many tokens")
    max_tokens_per_batch: int = _f(
        4096, "classify: padded tokens per batch; batches are built by length"
    )
    val_fraction: float = _f(
        0.1, "fraction of the data held out for validation, split deterministically by seed"
    )
    packing_strategy: Literal["wrapped", "documents"] = _f(
        "wrapped",
        "lm: wrapped (TRL's name): documents concatenated and cut into blocks, attention crosses "
        "documents; documents: the same blocks, but position ids restart at each document, so "
        "attention stays within it (block-diagonal causal mask), and the target across a "
        "boundary is ignored",
    )
    add_bos_token: bool = _f(
        False,
        "lm: start each document with a begin-of-document token (the tokenizer's <cls>, or a "
        "pretrained tokenizer's bos), so its first token is predicted too",
    )
    max_chars: int = _f(3_000_000, "lm: read at most this many characters of the corpus (0: all)")
    min_doc_chars: int = _f(16, "lm cleaning: drop documents shorter than this")
    max_doc_chars: int = _f(1_000_000, "lm cleaning: drop documents longer than this")
    text_column: str = _f("text", "classify CSV/TSV: column holding the text")
    label_column: str = _f("label", "classify CSV/TSV: column holding the label")
    augment_copies: int = _f(
        0,
        "classify, EDA augmentation: this many augmented copies of each training example are "
        "added (0: none); validation data is never augmented",
    )
    augment_synonym_replacement: float = _f(
        0.0, "EDA: each word with a synonym (shipped list) is replaced with this probability"
    )
    augment_random_insertion: float = _f(
        0.0, "EDA: about this fraction of the words: synonyms inserted at random positions"
    )
    augment_random_swap: float = _f(
        0.0, "EDA: about this fraction of the words: swaps of two random words"
    )
    augment_random_deletion: float = _f(
        0.0, "EDA: each word is deleted with this probability (one always stays)"
    )
    cache_dir: str | None = _f(None, "tokenized-data cache (None: $HPO_CACHE_DIR or ~/.cache/hpo)")
    clean: CleanConfig = field(default_factory=CleanConfig, metadata={"doc": "data.clean"})


@dataclass(frozen=True)
class ModelConfig:
    """The network: a small GPT-2 decoder (lm) or BERT encoder (classify), or a local pretrained one."""

    pretrained: str | None = _f(
        None,
        "local directory saved with save_pretrained (model and tokenizer); nothing is downloaded",
    )
    n_layer: int = _f(2, "transformer blocks")
    n_head: int = _f(4, "attention heads per block")
    n_embd: int = _f(128, "hidden size")
    dropout: float = _f(0.0, "dropout on embeddings, attention and residuals")
    tie_word_embeddings: bool = _f(
        True,
        "lm built from config: the output layer shares the input embedding's weights (GPT-2's)",
    )
    gradient_checkpointing: bool = _f(
        False, "recompute activations in backward to save memory on large models"
    )
    init: Literal["default", "xavier", "normal"] = _f(
        "default",
        "weights of a model built from config: default (transformers' own), xavier (Xavier-"
        "uniform Linear weights, zero biases) or normal (N(0, 0.02) Linear and embedding weights, "
        "zero biases); a pretrained model keeps its weights",
    )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, precision and checkpointing."""

    max_steps: int = _f(300, "optimizer steps in the trial")
    num_train_epochs: float = _f(
        0.0,
        "passes over the training data (transformers' name; may be fractional): when > 0 it "
        "sets the trial's steps to ceil(epochs * micro-batches per epoch / accumulation / "
        "processes), replacing max_steps",
    )
    per_device_train_batch_size: int = _f(
        32, "lm: blocks per micro-batch (classify uses data.max_tokens_per_batch)"
    )
    gradient_accumulation_steps: int = _f(1, "micro-batches accumulated per optimizer step")
    auto_find_batch_size: bool = _f(
        False,
        "before training, halve per_device_train_batch_size until a step fits in memory (CUDA: "
        "no out-of-memory error; CPU: within cpu_memory_budget_mb), multiplying "
        "gradient_accumulation_steps so the effective batch is unchanged; the choice is in "
        "result.json",
    )
    cpu_memory_budget_mb: float = _f(
        0.0,
        "auto_find_batch_size on CPU: a step's measured tensor memory (saved activations + "
        "weights + gradients + optimizer state) must fit in this many MB (0: no budget)",
    )
    optim: Literal["adamw", "sgd"] = _f(
        "adamw",
        "optimizer: AdamW with decoupled weight decay (fused kernel), or SGD with momentum; "
        "transformers' adamw_torch and adamw_torch_fused are read as adamw",
    )
    learning_rate: float = _f(1e-3, "peak learning rate, reached after warmup")
    weight_decay: float = _f(
        0.0, "decoupled weight decay; never applied to biases, norms or embeddings"
    )
    adam_beta1: float = _f(0.9, "AdamW beta1")
    adam_beta2: float = _f(0.99, "AdamW beta2")
    adam_epsilon: float = _f(1e-8, "AdamW epsilon")
    sgd_momentum: float = _f(0.9, "SGD momentum (optim: sgd only)")
    layerwise_lr_decay: float = _f(
        1.0,
        "fine-tuning: each transformer block's lr is this times the one above it (the head at "
        "the scheduled lr, the embeddings lowest); 1: one lr for all",
    )
    unfreeze_every_steps: int = _f(
        0,
        "fine-tuning, gradual unfreezing: train only the head at first and unfreeze one more "
        "block from the top every N steps, the embeddings last (0: everything trains from step 0)",
    )
    lr_scheduler_type: Literal["cosine", "linear", "constant"] = _f("cosine", "decay after warmup")
    warmup_steps: int = _f(
        0, "linear warmup steps, a whole number (wins over warmup_ratio when > 0)"
    )
    warmup_ratio: float = _f(0.0, "linear warmup as a fraction of max_steps")
    min_lr_ratio: float = _f(0.1, "the decay ends at learning_rate * min_lr_ratio")
    max_grad_norm: float = _f(1.0, "clip the global gradient norm to this (0: no clipping)")
    label_smoothing_factor: float = _f(0.0, "label smoothing in the cross-entropy loss")
    ignore_index: int = _f(
        -100,
        "a label with this value takes no part in the training loss (PyTorch's and "
        "transformers' -100, for padded labels; the runner's own masks use -100 as well)",
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = _f(
        "auto", "auto: bf16 on CUDA with bf16, fp16 + GradScaler on older CUDA, fp32 on CPU"
    )
    torch_compile: bool = _f(False, "compile the model with torch.compile")
    device: str = _f("auto", "auto, cpu, cuda or cuda:N")
    nproc: int = _f(
        1,
        "processes (GPUs) the trial trains on, with DDP under torchrun; the global batch is "
        "per_device_train_batch_size * nproc (hpo train and hpo search start torchrun)",
    )
    dataloader_num_workers: int = _f(
        0,
        "worker processes building training batches ahead of the step (0: in the trial's process)",
    )
    dataloader_pin_memory: bool = _f(
        False, "page-locked batches for faster copies to a GPU (ignored without CUDA)"
    )
    dataloader_prefetch_factor: int | None = _f(
        None, "batches each worker builds ahead (None: torch's default, 2; needs workers)"
    )
    logging_steps: int = _f(10, "log train metrics every N optimizer steps")
    log_activations: bool = _f(
        False,
        "at each logging step, an 'activations' record: mean, std and fraction of zeros of "
        "each transformer block's output (forward hooks on that step's micro-batches only)",
    )
    report_to: str = _f(
        "mlflow",
        "transformers' report_to: mlflow, tensorboard, all, none, or a list of them; mlflow: "
        "hpo train/search log to MLflow when tracking is on; tensorboard: event files in "
        "output_dir/tensorboard (needs the tensorboard package)",
    )
    save_steps: int = _f(0, "write the last checkpoint every N steps (0: at each evaluation)")
    max_nonfinite_steps: int = _f(5, "this many consecutive NaN/Inf steps end the trial as failed")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation, the best checkpoint, early stopping and generation samples."""

    eval_steps: int = _f(100, "evaluate every N optimizer steps, and always at the end")
    max_eval_batches: int = _f(
        20, "validation batches per evaluation (the same fixed set every time; 0: all)"
    )
    metric_for_best_model: str = _f(
        "val_loss",
        "the objective metric: best checkpoint and early stopping follow it (transformers' "
        "eval_* names are read as val_*: eval_loss is val_loss)",
    )
    load_best_model_at_end: bool = _f(
        True,
        "transformers' name for what the runner always does: the trial's model (result.json's "
        "best_checkpoint, what hpo promotes and exports) is the best evaluation's "
        "checkpoints/best.pt; false is refused (checkpoints/last.pt holds the last weights)",
    )
    greater_is_better: bool | None = _f(
        None, "direction of the objective (None: from the metric name; loss/perplexity lower)"
    )
    early_stopping_patience: int = _f(0, "stop after N evaluations without improvement (0: off)")
    early_stopping_threshold: float = _f(0.0, "minimum improvement that resets the patience")
    sample_tokens: int = _f(
        64, "lm: tokens generated per sample at each evaluation (0: no samples)"
    )
    sample_temperature: float = _f(0.8, "lm: temperature of the top-k/top-p sample")
    sample_top_k: int = _f(50, "lm: top-k of the sample (0: off)")
    sample_top_p: float = _f(0.95, "lm: nucleus (top-p) of the sample")


@dataclass(frozen=True)
class MonitorConfig:
    """Anomaly events written to metrics.jsonl and counted in result.json."""

    grad_norm_explode: float = _f(100.0, "pre-clip gradient norm above this is an 'explode' event")
    grad_norm_vanish: float = _f(1e-6, "pre-clip gradient norm below this is a 'vanish' event")
    loss_spike_factor: float = _f(
        2.0, "loss above this times its moving average is a 'loss_spike' event"
    )
    loss_ema_beta: float = _f(0.9, "smoothing of the loss moving average")
    layer_grad_norm_steps: int = _f(0, "log per-layer gradient norms every N steps (0: off)")


@dataclass(frozen=True)
class TrialConfig:
    """One training trial, start to finish."""

    task: Literal["lm", "classify", "multitask"] = _f(
        "lm",
        "lm: causal language modelling; classify: sequence classification; multitask: several "
        "classification tasks (tasks) sharing one encoder",
    )
    name: str = _f("trial", "experiment name (MLflow experiment, default run folder)")
    seed: int = _f(0, "seeds data split, init, dropout and batch order")
    output_dir: str = _f("runs/train", "trial folder: metrics.jsonl, result.json, checkpoints/")
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": "data"})
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"doc": "model"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"doc": "train"})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"doc": "eval"})
    monitor: MonitorConfig = field(default_factory=MonitorConfig, metadata={"doc": "monitor"})
    tasks: tuple[TaskConfig, ...] = _f(
        (),
        "multitask: a list of {name, path, num_labels, loss_weight (1.0), text_column, "
        "label_column}, one per task (runner/task_config.py)",
    )

    @property
    def objective_greater_is_better(self) -> bool:
        """Whether a larger objective metric is better."""
        if self.eval.greater_is_better is not None:
            return self.eval.greater_is_better
        return not lower_is_better(self.eval.metric_for_best_model)


# ----------------------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrialConfig:
    """Read an experiment YAML file, apply `key=value` overrides and validate everything.

    The file is read strictly (runner.yaml_io: size, UTF-8, aliases, duplicate keys). An empty
    file is refused, never read as "all defaults": a config.yaml cut to 0 bytes by a crash would
    otherwise train silently with the built-in defaults.
    """
    path = Path(path)
    raw = load_yaml_file(path, "experiment file")
    if raw is None:
        raise ConfigError(f"{path}: empty file; not an experiment config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return config_from_dict(
        merge_experiment(raw, path.parent, overrides, str(path)), source=str(path)
    )


def config_from_dict(
    raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), source: str = "<config>"
) -> TrialConfig:
    """Build a validated TrialConfig from a nested dict plus `key=value` overrides."""
    merged = read_transformers_names(apply_overrides(raw, overrides, source), source)
    config = _build(TrialConfig, merged, prefix="", source=source)
    validate(config, source)
    return config


def apply_overrides(raw: dict[str, Any], overrides, source: str) -> dict[str, Any]:
    """Return a copy of `raw` with each dotted `key=value` set; values are parsed as YAML."""
    merged = _deep_copy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override '{item}': expected key=value, e.g. train.learning_rate=3e-4"
            )
        key, text = item.split("=", 1)
        source_of_value = f"-o {excerpt(key.strip(), 60)[1:-1]}"
        value = load_yaml_text(text, source_of_value) if text.strip() else None
        set_dotted(merged, key.strip(), value, "override")
    return merged


def set_dotted(tree: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set `a.b.c` in a nested dict, checking the key against TrialConfig's fields.

    `tasks.N.KEY` sets KEY of the experiment's N-th task (from 0), e.g. tasks.1.loss_weight,
    so that a search space can search a task's loss weight.
    """
    check_key(key, source)
    if (task_key := TASK_ITEM_KEY.fullmatch(key)) is not None:
        tasks, index = tree.get("tasks"), int(task_key.group(1))
        if not isinstance(tasks, list | tuple) or not (
            index < len(tasks) and isinstance(tasks[index], dict)
        ):
            count = len(tasks) if isinstance(tasks, list | tuple) else 0
            raise ConfigError(
                f"{source}: the experiment has {count} task(s), no tasks.{index} to set ({key})"
            )
        tree["tasks"] = [*tasks]  # a copy: the caller's tree keeps its own list
        tree["tasks"][index] = {**tasks[index], task_key.group(2): value}
        return
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


# tasks.N.KEY: a key of the experiment's N-th task (multitask), for -o and search spaces
TASK_ITEM_KEY = re.compile(r"tasks\.(\d{1,2})\.(\w+)")


def config_keys() -> list[str]:
    """Every dotted leaf key of TrialConfig, e.g. 'train.learning_rate'."""
    return list(_config_keys())


@functools.cache
def _config_keys() -> tuple[str, ...]:
    # cached: validating a search space checks every key of hundreds of points
    keys: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                keys.append(prefix + f.name)

    walk(TrialConfig, "")
    return tuple(keys)


def check_key(key: str, source: str) -> None:
    """Raise ConfigError naming `key` and suggesting the closest valid key when it is unknown."""
    valid = config_keys()
    if key in valid:
        return
    task_key = TASK_ITEM_KEY.fullmatch(key)
    if task_key is not None and task_key.group(2) in TASK_KEYS:
        return
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"{source}: unknown config key {excerpt(key)}{hint}")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict of the config, ready for yaml.safe_dump (tasks as a list)."""
    tree = dataclasses.asdict(config)
    if isinstance(tree.get("tasks"), tuple):
        tree["tasks"] = list(tree["tasks"])
    return tree


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {'a.b': value}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def save_config(config: TrialConfig, path: str | Path) -> None:
    """Write the resolved config as YAML that load_config reads back unchanged (atomically)."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def describe_config() -> str:
    """Every key with its default and one-line documentation (for `hpo train --help-config`)."""
    lines = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                lines.append(f"\n{prefix}{f.name}:  # {hints[f.name].__doc__.strip()}")
                walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                lines.append(f"  {prefix}{f.name} = {f.default!r}  # {f.metadata.get('doc', '')}")

    walk(TrialConfig, "")
    return "\n".join(lines).lstrip()


# ----------------------------------------------------------------------------- HF names

# transformers.TrainingArguments values read as the runner's own, so that a config written for
# the HF Trainer loads here. They are rewritten before typing: the saved config.yaml holds the
# runner's names, and an -o override or a search-space value may use either.
OPTIM_ALIASES = {"adamw_torch": "adamw", "adamw_torch_fused": "adamw"}
REPORT_TO_CHOICES = ("mlflow", "tensorboard", "none", "all")


def canonical_metric(name: str) -> str:
    """transformers' eval_* metric names as the runner's val_* (eval_loss -> val_loss)."""
    return "val_" + name[len("eval_") :] if name.startswith("eval_") else name


def report_destinations(report_to: str) -> set[str]:
    """train.report_to as a set of mlflow/tensorboard ('all': both, 'none': neither)."""
    names = {n.strip() for n in report_to.split(",") if n.strip()}
    if "all" in names:
        return {"mlflow", "tensorboard"}
    return names - {"none"}


def read_transformers_names(tree: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of `tree` with transformers' spellings of values turned into the runner's."""
    tree = _deep_copy(tree)
    train, ev = tree.get("train"), tree.get("eval")
    if isinstance(train, dict):
        if isinstance(train.get("optim"), str):
            train["optim"] = OPTIM_ALIASES.get(train["optim"], train["optim"])
        steps = train.get("warmup_steps")
        if isinstance(steps, float) and not steps.is_integer():
            # transformers once read warmup_steps < 1 as a ratio; here it is refused, not guessed
            raise ConfigError(
                f"{source}: warmup_steps is a whole number of steps, got {steps}; for a "
                f"fraction of the training steps write train.warmup_ratio: {steps} "
                "(train.warmup_steps)"
            )
        report_to = train.get("report_to")
        if isinstance(report_to, list | tuple):
            if not all(isinstance(n, str) for n in report_to):
                raise ConfigError(
                    f"{source}: expected names, got {excerpt(report_to)} (train.report_to)"
                )
            train["report_to"] = ",".join(report_to) or "none"
        if isinstance(train.get("report_to"), str):
            unknown = [
                n.strip()
                for n in train["report_to"].split(",")
                if n.strip() not in REPORT_TO_CHOICES
            ]
            if unknown:
                raise ConfigError(
                    f"{source}: unknown value {excerpt(unknown[0])}; choose from "
                    f"{', '.join(REPORT_TO_CHOICES)} (train.report_to)"
                )
    if isinstance(ev, dict) and isinstance(ev.get("metric_for_best_model"), str):
        ev["metric_for_best_model"] = canonical_metric(ev["metric_for_best_model"])
    return tree


# ----------------------------------------------------------------------------- paths

# Config keys that name files or folders a trial reads. Written in an experiment file they are
# relative to that file's folder; given on the command line (-o) relative to the current folder.
# output_dir is not among them: it is where results go, relative to the current folder.
PATH_KEYS = ("data.path", "data.cache_dir", "model.pretrained")  # and each tasks.N.path


def resolve_paths(tree: dict[str, Any], base_dir: str | Path) -> dict[str, Any]:
    """A copy of `tree` whose relative PATH_KEYS values are made absolute against base_dir."""
    resolved = _deep_copy(tree)
    for key in PATH_KEYS:
        section, name = key.split(".")
        node = resolved.get(section)
        value = node.get(name) if isinstance(node, dict) else None
        if isinstance(value, str) and value:
            node[name] = _absolute(value, base_dir)
    tasks = resolved.get("tasks")  # multitask: each task's path, as data.path
    if isinstance(tasks, list | tuple):
        resolved["tasks"] = [
            {**task, "path": _absolute(task["path"], base_dir)}
            if isinstance(task, dict) and isinstance(task.get("path"), str) and task["path"]
            else task
            for task in tasks
        ]
    return resolved


def _absolute(value: str, base_dir: str | Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (Path(base_dir) / path).resolve())


def merge_experiment(
    raw: dict[str, Any], experiment_dir: str | Path, overrides: Sequence[str], source: str
) -> dict[str, Any]:
    """An experiment file's dict with its paths resolved against its folder, then -o overrides
    applied and their paths resolved against the current folder (see PATH_KEYS)."""
    merged = apply_overrides(resolve_paths(raw, experiment_dir), overrides, source)
    return resolve_paths(merged, Path.cwd())


# ----------------------------------------------------------------------------- typing


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            check_key(f"{prefix}{key}", source)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        hint = hints[f.name]
        key = prefix + f.name
        if dataclasses.is_dataclass(hint):
            values[f.name] = _build(hint, raw[f.name] or {}, key + ".", source)
        else:
            values[f.name] = _coerce(raw[f.name], hint, key, source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check `value` against the annotation, converting only where YAML is ambiguous."""
    origin = get_origin(hint)
    if origin is tuple and get_args(hint)[0] is TaskConfig:
        return build_tasks(value, source, _coerce)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is Literal:
        choices = get_args(hint)
        if not any(value == c and type(value) is type(c) for c in choices):
            raise ConfigError(
                f"{source}: unknown value {excerpt(value)}; choose one of "
                f"{', '.join(map(str, choices))} ({key})"
            )
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        number = _as_float(value)
        if number is not None:
            return number
    elif hint is str:
        if isinstance(value, str):
            return value
    raise ConfigError(
        f"{source}: expected {getattr(hint, '__name__', hint)}, got {excerpt(value)} ({key})"
    )


def _as_float(value: Any) -> float | None:
    # YAML 1.1 reads `1e-5` (no dot) as a string: accept any numeric text as a number.
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value)
    except (ValueError, OverflowError):  # not a number, or an int beyond float's range
        return None
    return None


def _deep_copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


# ----------------------------------------------------------------------------- values


# Sane upper limits for sizes: far beyond what any trial of this runner trains (GPT-2 XL has
# 48 layers, 25 heads, 1600 dims, 1024 positions, a 50k vocabulary), low enough that a typo
# such as per_device_train_batch_size: 1000000000 is refused before a trial allocates memory.
SIZE_LIMITS = {
    "train.per_device_train_batch_size": 65_536,
    "train.gradient_accumulation_steps": 65_536,
    "train.nproc": 1024,
    "data.block_size": 131_072,
    "data.max_length": 131_072,
    "data.max_tokens_per_batch": 16_777_216,
    "data.vocab_size": 1_048_576,
    "model.n_layer": 1024,
    "model.n_head": 1024,
    "model.n_embd": 65_536,
}
SEED_LIMIT = 2**32  # seeds are 0 <= seed < 2**32: what numpy's and torch's generators take

# The metrics a trial of each task reports at each evaluation (runner.evaluate.evaluate).
REPORTED_METRICS = {
    "lm": ("val_loss", "val_perplexity"),
    "classify": ("val_loss", "val_accuracy", "val_f1"),
    # the means over tasks; each task's own val_<task>_<metric> too (reported_metrics)
    "multitask": ("val_loss", "val_accuracy", "val_f1"),
}


def reported_metrics(config: TrialConfig) -> tuple[str, ...]:
    """The metrics a trial of `config` reports at each evaluation."""
    return REPORTED_METRICS[config.task] + task_metrics(config)


FP32_BYTES = 4
# runner.data.tokenizer.MIN_BPE_VOCAB_SIZE (256 byte tokens + its 5 special tokens), here so
# that validating a config does not import the tokenizers library; a test keeps them equal
MIN_BPE_VOCAB_SIZE = 261


def check_seed(seed: object, what: str) -> None:
    """ConfigError unless seed is a whole number in [0, 2**32); `what` names where it came from."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(
            f"{what}: a seed must be a whole number in [0, 2**32), got {excerpt(seed)}"
        )


def estimated_parameters(config: TrialConfig) -> int:
    """About how many parameters a model built from config (not pretrained) has."""
    m, d = config.model, config.data
    positions = d.block_size if config.task == "lm" else d.max_length
    embeddings = d.vocab_size * m.n_embd * (1 if m.tie_word_embeddings else 2)
    return embeddings + positions * m.n_embd + m.n_layer * 12 * m.n_embd * m.n_embd


def physical_memory_bytes() -> int | None:
    """This machine's RAM, or None where os.sysconf does not tell."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


# The optional packages of data.clean and the extra that installs them (pyproject's [clean]).
CLEAN_EXTRA_INSTALL = "pip install 'hpo[clean]'"


def _validate_clean(c: CleanConfig, need: Any) -> None:
    """Ranges of data.clean, and its optional packages present before any data is read."""
    need(c.min_chars >= 0, "data.clean.min_chars", f"must be >= 0, got {c.min_chars}")
    need(
        c.max_chars == 0 or c.max_chars >= c.min_chars,
        "data.clean.max_chars",
        f"must be 0 (off) or >= data.clean.min_chars ({c.min_chars}), got {c.max_chars}",
    )
    need(
        0 <= c.max_non_alpha_fraction <= 1,
        "data.clean.max_non_alpha_fraction",
        f"must be in [0, 1], got {c.max_non_alpha_fraction}",
    )
    need(
        0 < c.near_duplicate_threshold <= 1,
        "data.clean.near_duplicate_threshold",
        f"must be in (0, 1], got {c.near_duplicate_threshold}",
    )
    # the packages are looked up, not imported, so validating stays cheap (hpo/extras.py does
    # the same for the commands' extras; runner imports nothing from hpo)
    if c.dedup == "near":
        need(
            _findable("datasketch"),
            "data.clean.dedup",
            f"dedup: near needs the clean extra (datasketch): {CLEAN_EXTRA_INSTALL}",
        )
    if c.language is not None:
        need(
            _findable("langdetect"),
            "data.clean.language",
            f"language: {excerpt(c.language)} needs the clean extra (langdetect): "
            f"{CLEAN_EXTRA_INSTALL}",
        )
        spec = importlib.util.find_spec("langdetect")
        assert spec is not None and spec.origin is not None
        known = sorted(p.name for p in (Path(spec.origin).parent / "profiles").iterdir())
        need(
            c.language in known,
            "data.clean.language",
            f"unknown language {excerpt(c.language)}; langdetect knows {', '.join(known)}",
        )


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a module without a spec
        return False


def validate(config: TrialConfig, source: str) -> None:
    """Range checks that types alone cannot express; raises ConfigError "SOURCE: what (KEY)"."""
    t, d, e, m = config.train, config.data, config.eval, config.model

    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {message} ({key})")

    need(
        0 <= config.seed < SEED_LIMIT,
        "seed",
        f"a seed must be a whole number in [0, 2**32), got {config.seed}",
    )
    for key, value in (
        ("train.learning_rate", t.learning_rate),
        ("train.weight_decay", t.weight_decay),
        ("train.max_grad_norm", t.max_grad_norm),
        ("model.dropout", m.dropout),
    ):
        need(math.isfinite(value), key, f"must be a finite number, got {value}")
        need(value >= 0, key, f"must be >= 0, got {value}")
    need(m.dropout < 1, "model.dropout", f"must be below 1, got {m.dropout}")
    for key, value in (
        ("train.adam_beta1", t.adam_beta1),
        ("train.adam_beta2", t.adam_beta2),
        ("train.sgd_momentum", t.sgd_momentum),
    ):
        need(0 <= value < 1, key, f"must be in [0, 1), got {value}")
    need(
        math.isfinite(t.adam_epsilon) and t.adam_epsilon > 0,
        "train.adam_epsilon",
        f"must be > 0, got {t.adam_epsilon}",
    )
    need(t.max_steps > 0, "train.max_steps", f"must be > 0, got {t.max_steps}")
    need(
        t.per_device_train_batch_size > 0,
        "train.per_device_train_batch_size",
        f"must be > 0, got {t.per_device_train_batch_size}",
    )
    need(
        t.gradient_accumulation_steps > 0,
        "train.gradient_accumulation_steps",
        f"must be > 0, got {t.gradient_accumulation_steps}",
    )
    need(
        math.isfinite(t.cpu_memory_budget_mb) and t.cpu_memory_budget_mb >= 0,
        "train.cpu_memory_budget_mb",
        f"must be >= 0, got {t.cpu_memory_budget_mb}",
    )
    need(
        not (t.auto_find_batch_size and config.task != "lm"),
        "train.auto_find_batch_size",
        f"lm only: {config.task} batches are sized by data.max_tokens_per_batch",
    )
    need(
        math.isfinite(t.num_train_epochs) and t.num_train_epochs >= 0,
        "train.num_train_epochs",
        f"must be >= 0, got {t.num_train_epochs}",
    )
    need(
        t.ignore_index < 0,
        "train.ignore_index",
        f"must be negative so that no class or token id is ignored, got {t.ignore_index}",
    )
    need(
        math.isfinite(t.layerwise_lr_decay) and 0 < t.layerwise_lr_decay <= 1,
        "train.layerwise_lr_decay",
        f"must be in (0, 1], got {t.layerwise_lr_decay}",
    )
    need(
        t.unfreeze_every_steps >= 0,
        "train.unfreeze_every_steps",
        f"must be >= 0, got {t.unfreeze_every_steps}",
    )
    need(
        not (t.unfreeze_every_steps and t.nproc > 1),
        "train.unfreeze_every_steps",
        "needs train.nproc=1: DDP cannot change which parameters train after it wraps the model",
    )
    need(
        not (t.unfreeze_every_steps and m.gradient_checkpointing),
        "train.unfreeze_every_steps",
        "not supported with model.gradient_checkpointing (frozen inputs to checkpointed blocks)",
    )
    need(t.warmup_steps >= 0, "train.warmup_steps", f"must be >= 0, got {t.warmup_steps}")
    need(0 <= t.warmup_ratio < 1, "train.warmup_ratio", f"must be in [0, 1), got {t.warmup_ratio}")
    need(0 <= t.min_lr_ratio <= 1, "train.min_lr_ratio", f"must be in [0, 1], got {t.min_lr_ratio}")
    need(
        0 <= t.label_smoothing_factor < 1,
        "train.label_smoothing_factor",
        f"must be in [0, 1), got {t.label_smoothing_factor}",
    )
    need(
        0 <= t.dataloader_num_workers <= 256,
        "train.dataloader_num_workers",
        f"must be in [0, 256], got {t.dataloader_num_workers}",
    )
    need(
        t.dataloader_prefetch_factor is None
        or (t.dataloader_prefetch_factor > 0 and t.dataloader_num_workers > 0),
        "train.dataloader_prefetch_factor",
        "must be > 0, and needs train.dataloader_num_workers > 0",
    )
    need(t.logging_steps > 0, "train.logging_steps", f"must be > 0, got {t.logging_steps}")
    need(t.save_steps >= 0, "train.save_steps", f"must be >= 0, got {t.save_steps}")
    need(t.max_nonfinite_steps > 0, "train.max_nonfinite_steps", "must be > 0")
    need(t.nproc > 0, "train.nproc", f"must be > 0, got {t.nproc}")
    need(
        re.fullmatch(r"auto|cpu|cuda(:\d{1,4})?", t.device) is not None,
        "train.device",
        f"unknown device {excerpt(t.device)}; use auto, cpu, cuda or cuda:N",
    )
    need(d.block_size > 1, "data.block_size", f"must be > 1, got {d.block_size}")
    need(d.max_length > 1, "data.max_length", f"must be > 1, got {d.max_length}")
    need(d.vocab_size >= 64, "data.vocab_size", f"must be >= 64, got {d.vocab_size}")
    need(
        d.tokenizer != "bpe" or m.pretrained is not None or d.vocab_size >= MIN_BPE_VOCAB_SIZE,
        "data.vocab_size",
        f"byte-level BPE needs at least {MIN_BPE_VOCAB_SIZE} (256 bytes + 5 special tokens), "
        f"got {d.vocab_size}; raise it or use data.tokenizer=char",
    )
    need(0 < d.val_fraction < 1, "data.val_fraction", f"must be in (0, 1), got {d.val_fraction}")
    need(d.max_chars >= 0, "data.max_chars", f"must be >= 0, got {d.max_chars}")
    need(d.min_doc_chars >= 0, "data.min_doc_chars", f"must be >= 0, got {d.min_doc_chars}")
    need(
        d.max_doc_chars >= d.min_doc_chars,
        "data.max_doc_chars",
        f"must be >= data.min_doc_chars ({d.min_doc_chars}), got {d.max_doc_chars}",
    )
    _validate_clean(d.clean, need)
    need(
        d.max_tokens_per_batch >= d.max_length,
        "data.max_tokens_per_batch",
        f"must be >= data.max_length ({d.max_length}) so the longest example fits",
    )
    augment_rates = {
        "data.augment_synonym_replacement": d.augment_synonym_replacement,
        "data.augment_random_insertion": d.augment_random_insertion,
        "data.augment_random_swap": d.augment_random_swap,
        "data.augment_random_deletion": d.augment_random_deletion,
    }
    for key, value in augment_rates.items():
        need(math.isfinite(value) and 0 <= value <= 1, key, f"must be in [0, 1], got {value}")
    need(
        0 <= d.augment_copies <= 64,
        "data.augment_copies",
        f"must be in [0, 64], got {d.augment_copies}",
    )
    validate_tasks(config, need)
    need(
        not d.augment_copies or config.task != "lm",
        "data.augment_copies",
        "EDA augmentation is for classify only",
    )
    need(
        not d.augment_copies or any(augment_rates.values()),
        "data.augment_copies",
        "set a rate above 0 for at least one data.augment_* operation",
    )
    need(m.n_layer > 0, "model.n_layer", f"must be > 0, got {m.n_layer}")
    need(m.n_head > 0, "model.n_head", f"must be > 0, got {m.n_head}")
    need(m.n_embd > 0, "model.n_embd", f"must be > 0, got {m.n_embd}")
    need(
        m.n_embd % m.n_head == 0,
        "model.n_embd",
        f"must be divisible by model.n_head ({m.n_head}), got {m.n_embd}",
    )
    for key, limit in SIZE_LIMITS.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        need(value <= limit, key, f"must be <= {limit:_} (a sane limit), got {value:_}")
    if m.pretrained is None:
        memory = physical_memory_bytes()
        weights = estimated_parameters(config) * FP32_BYTES
        need(
            memory is None or weights <= memory,
            "model.n_embd",
            f"the model would have about {weights // FP32_BYTES:_} parameters, "
            f"{weights / 2**30:.1f} GiB in fp32, more than this machine's "
            f"{(memory or 0) / 2**30:.1f} GiB of memory; make it smaller",
        )
    need(
        "tensorboard" not in report_destinations(t.report_to) or _findable("tensorboard"),
        "train.report_to",
        "tensorboard needs the tensorboard extra: pip install 'hpo[tensorboard]'",
    )
    measured = reported_metrics(config)
    need(
        e.metric_for_best_model in measured,
        "eval.metric_for_best_model",
        f"{e.metric_for_best_model[:60]!r} is not measured for task {config.task}; "
        f"choose one of {', '.join(measured)}",
    )
    need(
        e.load_best_model_at_end,
        "eval.load_best_model_at_end",
        "the runner always keeps the best evaluation's weights as the trial's model "
        "(checkpoints/best.pt); the last weights are in checkpoints/last.pt: remove the key",
    )
    need(e.eval_steps > 0, "eval.eval_steps", f"must be > 0, got {e.eval_steps}")
    need(
        e.max_eval_batches >= 0, "eval.max_eval_batches", f"must be >= 0, got {e.max_eval_batches}"
    )
    need(e.early_stopping_patience >= 0, "eval.early_stopping_patience", "must be >= 0")
    need(e.sample_tokens >= 0, "eval.sample_tokens", f"must be >= 0, got {e.sample_tokens}")
    need(e.sample_top_k >= 0, "eval.sample_top_k", f"must be >= 0, got {e.sample_top_k}")
    need(
        math.isfinite(e.sample_temperature) and e.sample_temperature > 0,
        "eval.sample_temperature",
        "must be > 0",
    )
    need(0 < e.sample_top_p <= 1, "eval.sample_top_p", "must be in (0, 1]")
