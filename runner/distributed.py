"""One trial on several processes: DistributedDataParallel under torchrun, else a world of one.

torchrun (started by `hpo train --nproc N`, or by hpo.launch for a search trial with
train.nproc > 1) runs run_trial once per process with RANK, WORLD_SIZE and LOCAL_RANK set.
Without them run_trial gets a World of one and behaves exactly as it always did. With them:

- Config: every rank trains with rank 0's config, broadcast when the ranks join. Rank 0 holds
  the trial's sampled params; the others may pass None (hpo.launch) or their own copy
  (`hpo train`: the same YAML and overrides), which rank 0's replaces with a warning if it differs.
- Data: the global batch is per_device_train_batch_size * N. Micro-batch counter i of the data
  counts per-device micro-batches; rank r takes train_batch(i + r) and i advances by N, so one
  optimizer step sees exactly the batches of one process with gradient_accumulation_steps * N
  (and, for lm, of one process with per_device_train_batch_size * N: the same rows). Resuming
  with another N continues at the same data position, though not bit-exactly.
- Gradients: DDP averages them in backward, once per optimizer step (not while accumulating),
  so clipping, the non-finite guard, the optimizer and the weights agree on every rank.
- Metrics: the logged loss is the mean over ranks (of equal-size lm shards: the global batch's
  mean), tokens are summed over ranks, MFU is against N devices' peak.
- Decisions: non-finite steps, early stopping and the reporter's stop are decided on values
  every rank holds (all-reduced, or broadcast from rank 0), so all ranks stop together.
- Rank 0 alone evaluates (the others wait for its metrics), writes generation samples,
  metrics.jsonl, config.yaml, checkpoints and result.json, and reports; other ranks get a
  NullReporter and log only warnings.
- RNG: rank r seeds with seed + r (DDP copies rank 0's initial weights, so ranks differ only in
  dropout masks); a checkpoint holds every rank's RNG state under `rank_rng`, and on resume each
  rank restores its own.
- Devices: gloo on CPU; on CUDA rank r trains on cuda:LOCAL_RANK over nccl (choose the GPUs
  with CUDA_VISIBLE_DEVICES). One machine; Ctrl-C makes torchrun stop every rank at once, so
  resume from the last checkpoint (train.save_steps / eval.eval_steps) rather than an
  interrupted one.

Example (two CPU processes):
    $ torchrun --standalone --nproc_per_node 2 -m hpo.cli train -o train.nproc=2
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from runner.checkpoint import capture_rng_state
from runner.config import TrialConfig, config_from_dict, config_to_dict, flatten
from runner.errors import ConfigError
from runner.precision import resolve_device

log_to_console = logging.getLogger("runner")
T = TypeVar("T")


@dataclass
class World:
    """The processes that train one trial together, as this process sees them."""

    device: torch.device
    rank: int = 0
    size: int = 1
    owns_process_group: bool = False
    ddp: nn.parallel.DistributedDataParallel | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0: the one that evaluates, writes files and reports."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model to train: DDP around `model` in a world of several, `model` itself in one.

        DDP copies rank 0's weights to the others here and averages gradients in backward.
        """
        if self.size == 1:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        return self.ddp

    def sync_gradients(self, now: bool) -> None:
        """Whether the next backward averages gradients over ranks (only the last micro-batch's)."""
        if self.ddp is not None:
            # what DDP.no_sync() toggles; set directly so the loop needs no extra block
            self.ddp.require_backward_grad_sync = now

    def step_totals(
        self, loss_sum: torch.Tensor, grad_norm: torch.Tensor, tokens: int
    ) -> tuple[float, float, int]:
        """(loss, grad norm, tokens) of one step, with one host sync.

        Under DDP: the mean loss over ranks and every rank's tokens; the grad norm is this
        rank's, the same on all since DDP averaged the gradients.
        """
        if self.size == 1:
            loss, norm = torch.stack([loss_sum, grad_norm.float()]).tolist()
            return loss, norm, tokens
        packed = torch.stack(
            [
                loss_sum.detach().double(),
                torch.tensor(float(tokens), dtype=torch.float64, device=loss_sum.device),
            ]
        )
        dist.all_reduce(packed)  # a NaN on any rank makes the sum NaN: every rank skips the step
        loss, total_tokens, norm = torch.cat(
            [packed, grad_norm.detach().double().reshape(1)]
        ).tolist()
        return loss / self.size, norm, int(total_tokens)

    def any_rank(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true when it is true on any rank (a collective: every rank calls it).

        The end of every step asks it whether to stop (a signal on any rank, a failed write on
        rank 0), so that all ranks stop at the same step.
        """
        if self.size == 1:
            return tuple(bool(flag) for flag in flags)
        packed = torch.tensor([float(flag) for flag in flags], dtype=torch.float64)
        dist.all_reduce(packed)  # a CPU tensor: gloo, also when the gradients go over nccl
        return tuple(bool(total > 0) for total in packed.tolist())

    def from_main(self, value: T) -> T:
        """Rank 0's `value` on every rank (a collective: every rank calls it)."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def main_first(self, function: Callable[..., T], *args: Any) -> T:
        """function(*args) on rank 0, then on the others (e.g. they read what it cached)."""
        if self.size == 1:
            return function(*args)
        if self.is_main:
            value = function(*args)
            dist.barrier()
            return value
        dist.barrier()
        return function(*args)

    def gather_rng_states(self) -> dict[str, Any]:
        """{"rank_rng": [state of rank 0, 1, ...]} on rank 0, {} elsewhere and in a world of one.

        A collective: every rank calls it before rank 0 writes a checkpoint.
        """
        if self.size == 1:
            return {}
        states = [None] * self.size if self.is_main else None
        dist.gather_object(capture_rng_state(), states, dst=0)
        return {"rank_rng": states} if self.is_main else {}

    def own_rng_state(self, saved: dict[str, Any]) -> dict[str, Any]:
        """This rank's RNG state in a checkpoint (rank 0's when it was written by another world)."""
        states = saved.get("rank_rng") or []
        return states[self.rank] if len(states) == self.size else saved["rng"]

    def leave(self) -> None:
        """Leave the process group if joining created it."""
        if self.owns_process_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_process_group = False


def join_world(config: TrialConfig | None) -> tuple[World, TrialConfig]:
    """This process's World and the config to train with (rank 0's, under torchrun).

    Under torchrun it joins (or reuses) the process group: gloo for CPU tensors, plus nccl for
    CUDA ones when there is a GPU. Ranks other than 0 may pass config=None. Raises ConfigError
    when train.nproc and the number of processes disagree, or the GPUs do not suffice.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        if config is None:
            raise ValueError(
                "join_world: only ranks other than 0 of a torchrun world may pass None"
            )
        if config.train.nproc > 1:
            raise ConfigError(
                f"train.nproc={config.train.nproc}: run_trial alone is one process; start the "
                f"trial with `hpo train` (it launches torchrun) or `torchrun --nproc_per_node "
                f"{config.train.nproc}`"
            )
        return World(device=resolve_device(config.train)), config

    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
        torch.cuda.set_device(local_rank)  # before nccl starts, so each rank talks from its GPU
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    world = World(device=torch.device("cpu"), rank=rank, size=size, owns_process_group=owns)
    if not world.is_main:
        log_to_console.setLevel(logging.WARNING)  # one console: rank 0's
    config = _config_of_rank_0(world, config)
    if config.train.nproc != size:
        raise ConfigError(
            f"train.nproc={config.train.nproc} but torchrun started {size} processes; set "
            f"train.nproc={size} or start torchrun with --nproc_per_node {config.train.nproc}"
        )
    world.device = _device_of_rank(config, local_rank, size)
    return world, config


def _config_of_rank_0(world: World, config: TrialConfig | None) -> TrialConfig:
    mine = config_to_dict(config) if config is not None else None
    theirs = world.from_main(mine)
    if theirs is None:
        raise ValueError("join_world: rank 0 must pass the trial's config")
    if world.is_main or mine == theirs:
        return config
    if mine is not None:
        mine_flat, theirs_flat = flatten(mine), flatten(theirs)
        log_to_console.warning(
            "rank %d: config differs from rank 0's in %s; training with rank 0's",
            world.rank,
            ", ".join(sorted(k for k in theirs_flat if mine_flat.get(k) != theirs_flat[k])),
        )
    return config_from_dict(theirs, source="rank 0's config")


def _device_of_rank(config: TrialConfig, local_rank: int, size: int) -> torch.device:
    device = resolve_device(config.train)
    if device.type != "cuda":
        return device
    if device.index is not None:
        raise ConfigError(
            f"train.device: {config.train.device} is one GPU, but each of train.nproc={size} "
            "processes needs its own; use cuda or auto (rank r trains on the r-th GPU of "
            "CUDA_VISIBLE_DEVICES)"
        )
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(
            f"train.nproc={size} needs {size} GPUs on this machine but {count} are visible "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
            "lower train.nproc or make more GPUs visible"
        )
    return torch.device("cuda", local_rank)


class DiscardedLog:
    """The metrics log of ranks other than 0: rank 0 writes metrics.jsonl for all."""

    kinds: frozenset[str] = frozenset()

    def write(self, kind: str, step: int, **fields: Any) -> None:
        pass

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
