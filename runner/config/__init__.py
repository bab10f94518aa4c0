"""The trial configuration: frozen, typed, documented dataclasses loaded from YAML.

Names follow transformers.TrainingArguments where an equivalent exists
(learning_rate, weight_decay, warmup_ratio, lr_scheduler_type, max_grad_norm, ...)
so that users of the HF Trainer recognise them.

Example:
    >>> cfg = load_config("experiments/lm_tiny.yaml", overrides=["train.learning_rate=3e-4"])
    >>> cfg.train.learning_rate
    0.0003

One module per noun: the sections (data, model, train, evaluation: eval and monitor) and
trial (TrialConfig); loading (files, overrides, paths) over typed (values to dataclasses),
keys (the dotted keys) and hf_names (transformers' spellings, report_to); validation over
data_validation and limits (the model's shape and memory). Each field declares
its kind (its annotation) and range (runner.schema.Allowed, in its metadata): typed checks
both as a value is read; validation holds the rules between fields. Every public name is
re-exported here: import them from runner.config.
"""

from runner.config.data import CleanConfig, DataConfig
from runner.config.data_validation import CLEAN_EXTRA_INSTALL, MIN_BPE_VOCAB_SIZE
from runner.config.evaluation import EvalConfig, MonitorConfig
from runner.config.hf_names import (
    OPTIM_ALIASES,
    REPORT_TO_CHOICES,
    canonical_metric,
    read_transformers_names,
    report_destinations,
)
from runner.config.keys import TASK_ITEM_KEY, check_key, config_keys
from runner.config.limits import (
    FP32_BYTES,
    estimated_parameters,
    physical_memory_bytes,
)
from runner.config.loading import (
    PATH_KEYS,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    describe_config,
    flatten,
    load_config,
    merge_experiment,
    resolve_paths,
    save_config,
    set_dotted,
)
from runner.config.model import ModelConfig
from runner.config.train import TrainConfig
from runner.config.trial import REPORTED_METRICS, TrialConfig, reported_metrics
from runner.config.validation import validate
from runner.task_config import TaskConfig

__all__ = [
    "CLEAN_EXTRA_INSTALL",
    "FP32_BYTES",
    "MIN_BPE_VOCAB_SIZE",
    "OPTIM_ALIASES",
    "PATH_KEYS",
    "REPORTED_METRICS",
    "REPORT_TO_CHOICES",
    "TASK_ITEM_KEY",
    "CleanConfig",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "MonitorConfig",
    "TaskConfig",
    "TrainConfig",
    "TrialConfig",
    "apply_overrides",
    "canonical_metric",
    "check_key",
    "config_from_dict",
    "config_keys",
    "config_to_dict",
    "describe_config",
    "estimated_parameters",
    "flatten",
    "load_config",
    "merge_experiment",
    "physical_memory_bytes",
    "read_transformers_names",
    "reported_metrics",
    "report_destinations",
    "resolve_paths",
    "save_config",
    "set_dotted",
    "validate",
]
