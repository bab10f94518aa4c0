"""transformers' names in a config (TrainingArguments' values, eval_* metrics) read as the
runner's, and train.report_to, transformers' list of where to report."""

from __future__ import annotations

from typing import Any

from runner.config.common import deep_copy
from runner.errors import ConfigError
from runner.schema import Allowed, checked, failing
from runner.yaml_io import excerpt

# transformers.TrainingArguments values read as the runner's own, so that a config written for
# the HF Trainer loads here. They are rewritten before typing: the saved config.yaml holds the
# runner's names, and an -o override or a search-space value may use either.
OPTIM_ALIASES = {"adamw_torch": "adamw", "adamw_torch_fused": "adamw"}
REPORT_TO_CHOICES = ("mlflow", "tensorboard", "none", "all")
REPORT_TO = Allowed(choices=REPORT_TO_CHOICES)  # each name of its comma-separated list


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
    tree = deep_copy(tree)
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
            for name in train["report_to"].split(","):
                checked(name.strip(), REPORT_TO, "train.report_to", failing(source))
    if isinstance(ev, dict) and isinstance(ev.get("metric_for_best_model"), str):
        ev["metric_for_best_model"] = canonical_metric(ev["metric_for_best_model"])
    return tree
