"""Whether a lower value of a metric is better, when nothing says which way it goes.

A space's `objective.direction` and the experiment's `eval.greater_is_better` always win; this
rule only fills in what they leave out (a space that names its metric without a direction,
an experiment without greater_is_better, a logged metric that is not an objective). One rule
for the runner, the space parser and the tracker, so that they cannot disagree about a metric:
the names transformers and the articles use for falling metrics.
"""

from __future__ import annotations

FALLING_WORDS = ("loss", "perplexity", "error")


def lower_is_better(metric: str) -> bool:
    """val_loss, eval_perplexity, error_rate: lower is better; accuracy, f1, bleu: higher."""
    return any(word in metric for word in FALLING_WORDS)
