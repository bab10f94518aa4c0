"""A trial's set-up, before its first step: input checks, data, model, optimizer, batch size,
precision, and the state restored from a checkpoint (run_trial's first part, runner.loop)."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from runner.activations import ActivationStats
from runner.batch_size import find_batch_size
from runner.checkpoint import RESUME_KEYS, load_checkpoint, reading_checkpoint, restore_rng_state
from runner.config import TrainConfig, TrialConfig
from runner.data import prepare_data
from runner.distributed import World
from runner.errors import CheckpointError
from runner.finetune import GradualUnfreezing
from runner.loss import forward_loss
from runner.model import build_model, check_pretrained_dir
from runner.monitor import AnomalyMonitor, warn_without_nvml
from runner.optim import build_optimizer
from runner.precision import Precision, enable_fast_matmul, resolve_precision
from runner.seeding import seed_everything
from runner.state import TrialState
from runner.throughput import flops_per_token

log_to_console = logging.getLogger("runner")


@dataclass
class BatchPlan:
    """The micro-batch size and accumulation a trial trains with, and its step budget."""

    size: int
    accumulation: int
    micro_batches_per_epoch: int
    train: TrainConfig  # config.train, with max_steps from num_train_epochs when that is set
    chosen: dict[str, Any] | None  # auto_find_batch_size's choice (TrialResult.batch_size)


@dataclass
class Trial:
    """What the training loop works with: built once, then changed only by training itself
    (the weights, the optimizer's, scaler's and monitor's state, and `state`)."""

    config: TrialConfig
    world: World
    precision: Precision
    data: Any  # runner.data's prepared data: batches, tokenizer, label names, stats
    model: torch.nn.Module
    forward_model: torch.nn.Module  # model, or torch.compile(model)
    train_model: torch.nn.Module  # forward_model, or its DDP wrapper under torchrun
    params: list[torch.Tensor]  # every trainable parameter (for clipping), frozen ones too
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    monitor: AnomalyMonitor
    state: TrialState
    batches: BatchPlan
    val_batches: Any
    unfreezing: GradualUnfreezing | None
    activations: ActivationStats | None
    resumed_from: int | None  # the checkpoint's step (None: a fresh run)

    @property
    def train(self) -> TrainConfig:
        return self.batches.train

    @property
    def device(self) -> torch.device:
        return self.world.device  # train.device; under torchrun on CUDA, cuda:LOCAL_RANK

    @property
    def out(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def last_path(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "checkpoints" / "best.pt"


def set_up_trial(config: TrialConfig, world: World, resume: bool) -> Trial:
    """Everything before the first step; user errors raise UserInputError before any training."""
    # -- everything that can reject the input, before any training ------------------------
    check_pretrained_dir(config)
    precision = resolve_precision(config.train, world.device)
    last_path = Path(config.output_dir) / "checkpoints" / "last.pt"
    saved = read_resume_checkpoint(last_path, config) if resume else None
    data = world.main_first(prepare_data, config)  # rank 0 fills the data cache first

    # -- model, optimizer, batch size, precision -------------------------------------------
    model, optimizer = _model_and_optimizer(config, world, data)
    plan = plan_batches(model, data, config, world, precision)
    val_batches = data.val_batches(plan.size, config.eval.max_eval_batches)
    scaler = torch.amp.GradScaler(world.device.type, enabled=precision.use_grad_scaler)
    monitor = AnomalyMonitor(config.monitor)
    state = TrialState(greater_is_better=config.objective_greater_is_better)
    if saved is not None:
        parts = {
            "model": model,
            "optimizer": optimizer,
            "scaler": scaler,
            "monitor": monitor,
            "trial": state,
        }
        _restore(saved, last_path, world, parts)
    forward_model = torch.compile(model) if plan.train.torch_compile else model
    train_model = world.wrap(forward_model)  # DDP under torchrun: gradients averaged in backward
    params = [p for p in model.parameters() if p.requires_grad]
    # gradual unfreezing sets requires_grad per step; `params` (for clipping) keeps them all
    every = plan.train.unfreeze_every_steps
    unfreezing = GradualUnfreezing(model, every) if every else None
    return Trial(
        config=config,
        world=world,
        precision=precision,
        data=data,
        model=model,
        forward_model=forward_model,
        train_model=train_model,
        params=params,
        optimizer=optimizer,
        scaler=scaler,
        monitor=monitor,
        state=state,
        batches=plan,
        val_batches=val_batches,
        unfreezing=unfreezing,
        activations=ActivationStats(model) if plan.train.log_activations else None,
        resumed_from=state.step if saved is not None else None,
    )


def _model_and_optimizer(
    config: TrialConfig, world: World, data
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The model on its device in train mode, and its optimizer; seeded first."""
    seed_everything(config.seed + world.rank)  # DDP copies rank 0's weights; dropout differs
    enable_fast_matmul(world.device)
    model = build_model(config, data.tokenizer.vocab_size, data.tokenizer.pad_id, num_labels(data))
    model.to(world.device).train()
    return model, build_optimizer(model, config.train, world.device)


def _restore(saved: dict[str, Any], last_path: Path, world: World, parts: dict[str, Any]) -> None:
    """Each part's state from last.pt (in the order given), then this rank's RNG state."""
    with reading_checkpoint(last_path):  # a forged or foreign last.pt: one line, no traceback
        for key, part in parts.items():
            part.load_state_dict(saved[key])
        restore_rng_state(world.own_rng_state(saved))


def read_resume_checkpoint(last_path: Path, config: TrialConfig) -> dict[str, Any]:
    """last.pt for resume=True; CheckpointError when it is another task's."""
    saved = load_checkpoint(last_path, expected_config=config, require=RESUME_KEYS)
    if saved["config"]["task"] != config.task:
        raise CheckpointError(f"{last_path}: checkpoint is for task {saved['config']['task']!r}")
    return saved


def num_labels(data) -> int:
    return len(data.label_names)


def plan_batches(model, data, config: TrialConfig, world: World, precision) -> BatchPlan:
    """train's micro-batch size and accumulation (or auto_find_batch_size's), and max_steps."""
    t = config.train
    batch_size, accumulation = t.per_device_train_batch_size, t.gradient_accumulation_steps
    chosen = None
    if t.auto_find_batch_size and (world.device.type == "cuda" or t.cpu_memory_budget_mb > 0):
        chosen = world.from_main(  # rank 0 searches; every rank trains with its choice
            _find_batch_size(model, data, config, precision) if world.is_main else None
        )
        batch_size, accumulation = (
            chosen["per_device_train_batch_size"],
            chosen["gradient_accumulation_steps"],
        )
        log_to_console.info("auto_find_batch_size: %s", chosen)
    per_epoch = micro_batches_per_epoch(data, batch_size)
    if t.num_train_epochs > 0:  # transformers' num_train_epochs: the steps those epochs take
        micro_per_step = accumulation * world.size
        t = dataclasses.replace(
            t, max_steps=max(1, math.ceil(t.num_train_epochs * per_epoch / micro_per_step))
        )
        log_to_console.info(
            "num_train_epochs %g: %d steps (%d micro-batches per epoch)",
            t.num_train_epochs,
            t.max_steps,
            per_epoch,
        )
    return BatchPlan(batch_size, accumulation, per_epoch, t, chosen)


def micro_batches_per_epoch(data, batch_size: int) -> int:
    """Micro-batches in one pass over the training data (classify: its length batches)."""
    per_epoch = getattr(data, "batches_per_epoch", None)
    if per_epoch is None:
        per_epoch = math.ceil(len(data.train_blocks) / batch_size)
    return max(int(per_epoch), 1)


def _find_batch_size(model, data, config: TrialConfig, precision) -> dict[str, Any]:
    """train.auto_find_batch_size (runner.batch_size), probing with micro-batch 0."""
    t = config.train

    def forward_at(size: int) -> torch.Tensor:
        batch = {k: v.to(precision.device) for k, v in data.train_batch(0, size).items()}
        with precision.autocast():
            return forward_loss(model, batch, config.task, t.label_smoothing_factor)[0]

    choice = find_batch_size(
        model,
        precision.device,
        t.per_device_train_batch_size,
        t.gradient_accumulation_steps,
        t.cpu_memory_budget_mb,
        forward_at,
    )
    return dataclasses.asdict(choice)


def flops_per_token_of(trial: Trial) -> float:
    """Training FLOPs per token of the trial's model at its sequence length (for MFU)."""
    config = trial.config
    seq_len = config.data.block_size if config.task == "lm" else config.data.max_length
    model_config = trial.model.config
    n_layer, n_embd = model_config.num_hidden_layers, model_config.hidden_size
    return flops_per_token(trial.model, n_layer, n_embd, seq_len)


def describe_trial(trial: Trial) -> None:
    """The console's lines on a trial about to train: its data and model."""
    warn_without_nvml(trial.device)
    log_to_console.info("data: %s", _describe_stats(trial.data.stats))
    log_to_console.info(
        "model: %.2fM parameters on %s, precision %s",
        sum(p.numel() for p in trial.params) / 1e6,
        trial.device,
        trial.precision.name,
    )


def _describe_stats(stats: dict) -> str:
    lengths = "  ".join(f"{k} {v:,.0f}" for k, v in stats.items() if "_p" in k)
    counts = "  ".join(
        f"{k} {v:,}"
        for k, v in stats.items()
        if isinstance(v, int) and not isinstance(v, bool) and "_p" not in k
    )
    cleaning = stats.get("cleaning")
    removed = (
        "  |  clean: " + "  ".join(f"{k} {v:,}" for k, v in cleaning.items())
        if isinstance(cleaning, dict)
        else ""
    )
    return f"{counts}  |  {lengths}{removed}" + ("  (cached)" if stats.get("from_cache") else "")
