"""eval and monitor: evaluation, the best checkpoint, early stopping and samples; anomaly events."""

from __future__ import annotations

from dataclasses import dataclass

from runner.config.common import documented


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation, the best checkpoint, early stopping and generation samples."""

    eval_steps: int = documented(
        100, "evaluate every N optimizer steps, and always at the end", above=0
    )
    max_eval_batches: int = documented(
        20, "validation batches per evaluation (the same fixed set every time; 0: all)", low=0
    )
    metric_for_best_model: str = documented(
        "val_loss",
        "the objective metric: best checkpoint and early stopping follow it (transformers' "
        "eval_* names are read as val_*: eval_loss is val_loss)",
    )
    load_best_model_at_end: bool = documented(
        True,
        "transformers' name for what the runner always does: the trial's model (result.json's "
        "best_checkpoint, what hpo promotes and exports) is the best evaluation's "
        "checkpoints/best.pt; false is refused (checkpoints/last.pt holds the last weights)",
    )
    greater_is_better: bool | None = documented(
        None, "direction of the objective (None: from the metric name; loss/perplexity lower)"
    )
    early_stopping_patience: int = documented(
        0, "stop after N evaluations without improvement (0: off)", low=0
    )
    early_stopping_threshold: float = documented(
        0.0, "minimum improvement that resets the patience"
    )
    sample_tokens: int = documented(
        64, "lm: tokens generated per sample at each evaluation (0: no samples)", low=0
    )
    sample_temperature: float = documented(
        0.8, "lm: temperature of the top-k/top-p sample", above=0
    )
    sample_top_k: int = documented(50, "lm: top-k of the sample (0: off)", low=0)
    sample_top_p: float = documented(0.95, "lm: nucleus (top-p) of the sample", above=0, high=1)


@dataclass(frozen=True)
class MonitorConfig:
    """Anomaly events written to metrics.jsonl and counted in result.json."""

    grad_norm_explode: float = documented(
        100.0, "pre-clip gradient norm above this is an 'explode' event"
    )
    grad_norm_vanish: float = documented(
        1e-6, "pre-clip gradient norm below this is a 'vanish' event"
    )
    loss_spike_factor: float = documented(
        2.0, "loss above this times its moving average is a 'loss_spike' event"
    )
    loss_ema_beta: float = documented(0.9, "smoothing of the loss moving average")
    layer_grad_norm_steps: int = documented(
        0, "log per-layer gradient norms every N steps (0: off)"
    )
