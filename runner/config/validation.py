"""validate: the range checks that types alone cannot express, section by section."""

from __future__ import annotations

import math
import re

from runner.config.common import Need, findable
from runner.config.data_validation import check_data
from runner.config.hf_names import report_destinations
from runner.config.limits import SEED_LIMIT, check_model
from runner.config.trial import TrialConfig, reported_metrics
from runner.errors import ConfigError
from runner.yaml_io import excerpt


def validate(config: TrialConfig, source: str) -> None:
    """Range checks that types alone cannot express; raises ConfigError "SOURCE: what (KEY)".

    The checks run in a fixed order, and the first that fails is the error reported.
    """

    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {message} ({key})")

    for check in (
        _check_seed,
        _check_optimizer,
        _check_batches_and_fine_tuning,
        _check_schedule_and_running,
        check_data,
        check_model,
        _check_report_to,
        _check_eval,
    ):
        check(config, need)


def _check_seed(config: TrialConfig, need: Need) -> None:
    need(
        0 <= config.seed < SEED_LIMIT,
        "seed",
        f"a seed must be a whole number in [0, 2**32), got {config.seed}",
    )


def _check_optimizer(config: TrialConfig, need: Need) -> None:
    """The optimizer's numbers (and model.dropout, a rate like them)."""
    t, m = config.train, config.model
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


def _check_batches_and_fine_tuning(config: TrialConfig, need: Need) -> None:
    """train's steps, batches, auto_find_batch_size, epochs, and the fine-tuning options."""
    t, m = config.train, config.model
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


def _check_schedule_and_running(config: TrialConfig, need: Need) -> None:
    """train's warmup and decay, label smoothing, data loading, logging, processes, device."""
    t = config.train
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


def _check_report_to(config: TrialConfig, need: Need) -> None:
    t = config.train
    need(
        "tensorboard" not in report_destinations(t.report_to) or findable("tensorboard"),
        "train.report_to",
        "tensorboard needs the tensorboard extra: pip install 'hpo[tensorboard]'",
    )


def _check_eval(config: TrialConfig, need: Need) -> None:
    e = config.eval
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
