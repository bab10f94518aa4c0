"""Multi-task fine-tuning (`task: multitask`): one shared encoder, a classification head per task.

The encoder is the backbone a `task: classify` experiment builds (BERT from the config's
sizes, with its pooler) or the base model of a local pretrained folder
(transformers.AutoModel); each task's head is dropout and a Linear layer on the pooled
output (the pooler's, or the first token's hidden state where the model has no pooler), as in
BertForSequenceClassification. The training loss of a micro-batch, which holds a batch of every
task (runner.data.multitask), is the weighted sum of the tasks' mean cross-entropies:

    loss = sum over tasks t of tasks[t].loss_weight * CE_t

Evaluation reports, per task, val_<task>_loss, val_<task>_accuracy and val_<task>_f1 (the
names transformers' Trainer gives an evaluation of several datasets, eval_<name>_<metric>,
with the runner's val_ prefix), and val_loss, val_accuracy, val_f1 as their plain mean over
tasks: the objective a search optimizes, unweighted so that trials with different loss
weights are compared on the same scale.

Example:
    >>> model = build_multitask_model(config, vocab_size=4096, pad_id=0)
    >>> out = model(data.train_batch(0, 0))  # out.loss, out.logits["sentiment"], out.task_losses
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import transformers
from torch import nn

from runner.classification_metrics import macro_f1
from runner.config import TrialConfig
from runner.data.multitask import split_batch
from runner.encoder import bert_config, load_pretrained_encoder
from runner.loss import IGNORE_INDEX, ignoring
from runner.precision import Precision
from runner.task_config import TASK_METRICS


@dataclass
class MultiTaskOutput:
    """What MultiTaskClassifier returns: the weighted loss, and per task its loss and logits."""

    loss: torch.Tensor
    task_losses: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]


class MultiTaskClassifier(nn.Module):
    """A shared encoder and one classification head per task (see the module doc)."""

    def __init__(
        self,
        encoder: transformers.PreTrainedModel,
        num_labels: Mapping[str, int],
        loss_weights: Mapping[str, float],
        dropout: float,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # the loop reads num_hidden_layers and hidden_size here
        self.dropout = nn.Dropout(dropout)
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, n) for name, n in num_labels.items()})
        self.loss_weights = dict(loss_weights)  # settings, not weights: not in the state_dict

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The encoder's summary of each example: its pooler's output, else the first token's."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state[:, 0]

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        label_smoothing: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
    ) -> MultiTaskOutput:
        """Logits of every task in `batch` ("<task>/input_ids", ...) and, where labels are
        given, the loss: the sum of each task's mean cross-entropy times its loss weight."""
        logits: dict[str, torch.Tensor] = {}
        task_losses: dict[str, torch.Tensor] = {}
        for task, part in split_batch(batch).items():
            pooled = self.pooled(part["input_ids"], part["attention_mask"])
            logits[task] = self.heads[task](self.dropout(pooled))
            if "labels" in part:
                task_losses[task] = F.cross_entropy(
                    logits[task].float(),  # the softmax in full precision under autocast
                    ignoring(part["labels"], ignore_index),
                    ignore_index=IGNORE_INDEX,
                    label_smoothing=label_smoothing,
                )
        loss = sum(
            (self.loss_weights[task] * value for task, value in task_losses.items()),
            start=torch.zeros((), device=next(self.parameters()).device),
        )
        return MultiTaskOutput(loss, task_losses, logits)


def build_multitask_model(config: TrialConfig, vocab_size: int, pad_id: int) -> MultiTaskClassifier:
    """The shared encoder (from config sizes or model.pretrained) with a head per task."""
    m = config.model
    if m.pretrained:
        encoder = load_pretrained_encoder(m.pretrained)
        dropout = getattr(encoder.config, "hidden_dropout_prob", m.dropout)
    else:
        encoder = transformers.BertModel(bert_config(config, vocab_size, pad_id))
        dropout = m.dropout
    return MultiTaskClassifier(
        encoder,
        {t.name: t.num_labels for t in config.tasks},
        {t.name: t.loss_weight for t in config.tasks},
        dropout,
    )


def task_cross_entropies(
    logits: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Each task's plain mean cross-entropy in a batch (no weight, no label smoothing: the
    train_<task>_loss the loop logs, comparable with val_<task>_loss), detached, in batch order."""
    parts = split_batch(batch)
    return torch.stack(
        [
            F.cross_entropy(logits[task].detach().float(), ignoring(part["labels"], ignore_index))
            for task, part in parts.items()
        ]
    )


@torch.inference_mode()
def evaluate_tasks(
    model: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    precision: Precision,
    latencies: list[float] | None = None,
) -> dict[str, float]:
    """val_<task>_{loss,accuracy,f1} per task and val_{loss,accuracy,f1}, their mean over tasks.

    Each task's loss is its unweighted mean cross-entropy over its validation examples.
    """
    was_training = model.training
    model.eval()
    totals: dict[str, list[float]] = {}  # task -> [loss * examples, examples]
    predicted: dict[str, list[torch.Tensor]] = {}
    truth: dict[str, list[torch.Tensor]] = {}
    num_labels: dict[str, int] = {}
    for batch in batches:
        batch = {k: v.to(precision.device, non_blocking=True) for k, v in batch.items()}
        started = time.perf_counter()
        with precision.autocast():
            out = model(batch)
        if latencies is not None:
            if precision.device.type == "cuda":
                torch.cuda.synchronize(precision.device)
            latencies.append(time.perf_counter() - started)
        for task, part in split_batch(batch).items():
            labels = part["labels"]
            loss = F.cross_entropy(out.logits[task].float(), labels)
            total = totals.setdefault(task, [0.0, 0])
            total[0] += loss.item() * len(labels)
            total[1] += len(labels)
            num_labels[task] = out.logits[task].shape[-1]
            predicted.setdefault(task, []).append(out.logits[task].argmax(-1).cpu())
            truth.setdefault(task, []).append(labels.cpu())
    model.train(was_training)
    metrics: dict[str, float] = {}
    for task, (loss_sum, examples) in totals.items():
        guess, labels = torch.cat(predicted[task]), torch.cat(truth[task])
        metrics[f"val_{task}_loss"] = loss_sum / max(examples, 1)
        metrics[f"val_{task}_accuracy"] = (guess == labels).float().mean().item()
        metrics[f"val_{task}_f1"] = macro_f1(guess, labels, num_labels[task])
    for name in TASK_METRICS:
        values = [metrics[f"val_{task}_{name}"] for task in totals]
        metrics[f"val_{name}"] = sum(values) / len(values)
    return metrics
