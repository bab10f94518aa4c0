"""validate: the rules between fields, section by section (each field's own type and range is
declared on it and checked as it is read: runner.config.typed)."""

from __future__ import annotations

import re

from runner.config.common import Need, findable
from runner.config.data_validation import check_data
from runner.config.hf_names import report_destinations
from runner.config.limits import check_model
from runner.config.trial import TrialConfig, reported_metrics
from runner.errors import ConfigError
from runner.yaml_io import excerpt


def validate(config: TrialConfig, source: str) -> None:
    """The rules between fields that their declarations (runner.config.typed checks each field
    against its annotation and range) cannot express; raises ConfigError "SOURCE: what (KEY)".

    The checks run in a fixed order, and the first that fails is the error reported.
    """

    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {message} ({key})")

    for check in (
        _check_training,
        _check_running,
        check_data,
        check_model,
        _check_report_to,
        _check_eval,
    ):
        check(config, need)


def _check_training(config: TrialConfig, need: Need) -> None:
    """auto_find_batch_size, the labels ignored, and gradual unfreezing."""
    t, m = config.train, config.model
    need(
        not (t.auto_find_batch_size and config.task != "lm"),
        "train.auto_find_batch_size",
        f"lm only: {config.task} batches are sized by data.max_tokens_per_batch",
    )
    need(
        t.ignore_index < 0,
        "train.ignore_index",
        f"must be negative so that no class or token id is ignored, got {t.ignore_index}",
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


def _check_running(config: TrialConfig, need: Need) -> None:
    """train's data loading workers and device."""
    t = config.train
    need(
        t.dataloader_prefetch_factor is None or t.dataloader_num_workers > 0,
        "train.dataloader_prefetch_factor",
        "needs train.dataloader_num_workers > 0",
    )
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
