"""run_trial: one training trial, start to finish. Reads top to bottom.

Example:
    >>> from runner import load_config, run_trial
    >>> result = run_trial(load_config("experiments/lm_tiny.yaml"))
    >>> result.status, result.best_metrics["val_loss"]
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from runner.activations import ActivationStats
from runner.batch_size import find_batch_size
from runner.checkpoint import (
    RESUME_KEYS,
    capture_rng_state,
    load_checkpoint,
    reading_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from runner.config import TrialConfig, config_to_dict, report_destinations, save_config
from runner.data import prepare_data
from runner.data.loader import train_batches
from runner.distributed import DiscardedLog, join_world
from runner.errors import CheckpointError
from runner.evaluate import evaluate
from runner.files import StorageError, storage_error
from runner.finetune import GradualUnfreezing
from runner.loss import classification_hits, forward_loss
from runner.metrics_log import MetricsLog
from runner.model import build_model, check_pretrained_dir
from runner.monitor import AnomalyMonitor, warn_without_nvml
from runner.multitask import task_cross_entropies
from runner.optim import build_optimizer
from runner.plots import write_train_plots
from runner.precision import enable_fast_matmul, resolve_precision, unscale_and_clip
from runner.reporting import NullReporter, Reporter
from runner.result import TrialResult
from runner.samples import restart_samples, write_samples
from runner.schedule import lr_at
from runner.seeding import seed_everything
from runner.state import TrialState
from runner.throughput import flops_per_token, peak_flops, peak_memory_mb

log_to_console = logging.getLogger("runner")
T = TypeVar("T")


def run_trial(
    config: TrialConfig | None, reporter: Reporter | None = None, *, resume: bool = False
) -> TrialResult:
    """Train one model as `config` says, reporting to `reporter`; returns how it went.

    With resume=True it continues from output_dir/checkpoints/last.pt and ends exactly as an
    uninterrupted run would: the same weights and the same metrics.jsonl (see
    runner.metrics_log for the wall-clock fields that differ). User errors raise
    runner.errors.UserInputError before training. A file that cannot be written (disk full,
    ...) ends the trial "failed" with a one-line reason naming the file, and writes nothing
    after it, so the last checkpoint and the records up to its step stay consistent.
    Under torchrun every process calls it and they train as one (see runner.distributed):
    ranks other than 0 may pass config=None to take rank 0's; only rank 0 reports and writes.
    """
    started = time.perf_counter()
    # -- under torchrun: join the other ranks; all train with rank 0's config ----------------
    world, config = join_world(config)
    reporter = (reporter or NullReporter()) if world.is_main else NullReporter()
    out = Path(config.output_dir)
    last_path, best_path = out / "checkpoints" / "last.pt", out / "checkpoints" / "best.pt"
    t, ev = config.train, config.eval

    # -- everything that can reject the input, before any training ------------------------
    check_pretrained_dir(config)
    device = world.device  # train.device; under torchrun on CUDA, cuda:LOCAL_RANK
    precision = resolve_precision(t, device)
    saved = (
        load_checkpoint(last_path, expected_config=config, require=RESUME_KEYS) if resume else None
    )
    if saved is not None and saved["config"]["task"] != config.task:
        raise CheckpointError(f"{last_path}: checkpoint is for task {saved['config']['task']!r}")
    data = world.main_first(prepare_data, config)  # rank 0 fills the data cache first

    # -- model, optimizer, precision --------------------------------------------------------
    seed_everything(config.seed + world.rank)  # DDP copies rank 0's weights; dropout differs
    enable_fast_matmul(device)
    num_labels = len(data.label_names)
    model = build_model(config, data.tokenizer.vocab_size, data.tokenizer.pad_id, num_labels)
    model.to(device).train()
    optimizer = build_optimizer(model, t, device)
    batch_size, accumulation = t.per_device_train_batch_size, t.gradient_accumulation_steps
    chosen = None
    if t.auto_find_batch_size and (device.type == "cuda" or t.cpu_memory_budget_mb > 0):
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
    val_batches = data.val_batches(batch_size, ev.max_eval_batches)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)
    monitor = AnomalyMonitor(config.monitor)
    state = TrialState(greater_is_better=config.objective_greater_is_better)
    if saved is not None:
        with reading_checkpoint(last_path):  # a forged or foreign last.pt: one line, no traceback
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scaler.load_state_dict(saved["scaler"])
            monitor.load_state_dict(saved["monitor"])
            state.load_state_dict(saved["trial"])
            restore_rng_state(world.own_rng_state(saved))
    resumed_from = state.step if saved is not None else None
    forward_model = torch.compile(model) if t.torch_compile else model
    train_model = world.wrap(forward_model)  # DDP under torchrun: gradients averaged in backward
    params = [p for p in model.parameters() if p.requires_grad]
    # gradual unfreezing sets requires_grad per step; `params` (for clipping) keeps them all
    unfreezing = (
        GradualUnfreezing(model, t.unfreeze_every_steps) if t.unfreeze_every_steps else None
    )
    # only rank 0 writes files: metrics.jsonl, config.yaml, checkpoints, samples, result.json;
    # a resumed run first cuts metrics.jsonl and samples.jsonl back to its checkpoint's step
    writes = _Writes()
    log = DiscardedLog()
    if world.is_main:
        log = writes.run(MetricsLog, out / "metrics.jsonl", resumed_from) or log
        writes.run(restart_samples, out / "samples.jsonl", resumed_from)
        writes.run(save_config, config, out / "config.yaml")
    if "data" not in log.kinds:  # once per trial: a resumed run keeps the first run's record
        writes.run(log.write, "data", state.step, **data.stats)
    board = None
    if world.is_main and "tensorboard" in report_destinations(t.report_to):
        from runner.tensorboard_log import TensorBoardLog

        board = writes.run(TensorBoardLog, out / "tensorboard")

    def emit(kind: str, step: int, **fields: Any) -> None:
        """A record in metrics.jsonl, and in TensorBoard with report_to: tensorboard."""
        writes.run(log.write, kind, step, **fields)
        if board is not None:
            writes.run(board.write, kind, step, **fields)

    activations = ActivationStats(model) if t.log_activations else None
    warn_without_nvml(device)
    log_to_console.info("data: %s", _describe_stats(data.stats))
    log_to_console.info(
        "model: %.2fM parameters on %s, precision %s",
        sum(p.numel() for p in params) / 1e6,
        device,
        precision.name,
    )

    seq_len = config.data.block_size if config.task == "lm" else config.data.max_length
    n_layer = model.config.num_hidden_layers
    n_embd = model.config.hidden_size
    flops_token = flops_per_token(model, n_layer, n_embd, seq_len)
    peak = peak_flops(device)

    def bank_window_time() -> None:
        nonlocal window_start
        now = time.perf_counter()
        state.window_seconds += now - window_start
        window_start = now

    def checkpoint(path: Path) -> None:
        rank_rng = world.gather_rng_states()  # every rank calls it; {} in a world of one
        bank_window_time()
        if not world.is_main:
            return
        writes.run(log.sync)  # the records up to this step are on disk before the checkpoint is
        writes.run(
            save_checkpoint,
            path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "monitor": monitor.state_dict(),
                "trial": state.state_dict(),
                "rng": capture_rng_state(),
                **rank_rng,
                "schedule": {"step": state.step, "lr": lr_at(min(state.step, t.max_steps - 1), t)},
                "config": config_to_dict(config),
                "tokenizer": data.tokenizer.to_json(),
                "label_names": list(data.label_names),
                **({"task_label_names": data.task_labels} if config.task == "multitask" else {}),
            },
        )

    def evaluate_and_save() -> dict[str, float]:
        # rank 0 alone evaluates; the others take its metrics, so they decide alike
        latencies: list[float] = []
        metrics = world.from_main(
            evaluate(forward_model, val_batches, config.task, precision, num_labels, latencies)
            if world.is_main
            else None
        )
        latency = {"val_latency_ms": statistics.median(latencies) * 1000} if latencies else {}
        emit("eval", state.step, **metrics, **latency)
        improved = state.record_eval(
            state.step, metrics, ev.metric_for_best_model, ev.early_stopping_threshold
        )
        # samples before the checkpoints: a run killed after last.pt has every record of its step
        if config.task == "lm" and ev.sample_tokens > 0 and world.is_main:
            writes.run(
                write_samples, out / "samples.jsonl", state.step, model, data.tokenizer, ev, config
            )
        if improved:
            checkpoint(best_path)
        checkpoint(last_path)
        reporter.report(state.step, metrics)
        return metrics

    # Ctrl-C or SIGTERM finishes the current step, writes the last checkpoint and ends
    # "interrupted"; a failed write ends the trial "failed" at the end of its step. All ranks
    # agree on both at the end of every step, so they stop together.
    interrupted = _InterruptFlag()
    (write_failed,) = world.any_rank(writes.error is not None)  # config.yaml, metrics.jsonl, ...

    # -- the loop -------------------------------------------------------------------------
    status, reason = "complete", None
    # this rank's micro-batches: index micro_index + rank, then every world.size-th
    batches = train_batches(data, state.micro_index + world.rank, world.size, batch_size, t)
    window_start = time.perf_counter()  # the train-metric window's clock since its last banking
    with interrupted:
        while state.step < t.max_steps and not write_failed:
            lr = lr_at(state.step, t)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)  # layer-wise lr decay
            if unfreezing is not None and unfreezing.apply(state.step):
                log_to_console.info(
                    "unfreezing: depth %d and above train from step %d",
                    unfreezing.lowest_trainable,
                    state.step,
                )
            step_start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            # classify train accuracy: [correct, counted] summed on the device, read once a step
            accuracy_counts = torch.zeros(2, dtype=torch.long, device=device)
            task_losses = torch.zeros(len(config.tasks), device=device)  # multitask, per task
            tokens = 0
            logging_step = (state.step + 1) % t.logging_steps == 0 or state.step + 1 == t.max_steps
            recording = (
                activations.recording()
                if activations is not None and logging_step
                else contextlib.nullcontext()
            )
            for micro in range(accumulation):
                world.sync_gradients(micro == accumulation - 1)
                # rank r of N takes micro-batch index + r: together one global micro-batch
                batch = next(batches)  # micro-batch index state.micro_index + world.rank
                state.micro_index += world.size
                tokens += data.num_tokens(batch)
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                with precision.autocast(), recording:
                    loss, logits = forward_loss(
                        train_model, batch, config.task, t.label_smoothing_factor, t.ignore_index
                    )
                    loss = loss / accumulation
                scaler.scale(loss).backward()
                loss_sum += loss.detach()
                if config.task != "lm":  # classify, multitask (all tasks' examples)
                    accuracy_counts += classification_hits(logits, batch, t.ignore_index)
                if config.task == "multitask":
                    task_losses += (
                        task_cross_entropies(logits, batch, t.ignore_index) / accumulation
                    )
            grad_norm = unscale_and_clip(scaler, optimizer, params, t.max_grad_norm)
            # one host sync for the numbers the guard and the log need; under DDP the loss is
            # the mean over ranks and tokens are all ranks'
            loss_value, grad_norm, tokens = world.step_totals(loss_sum, grad_norm, tokens)
            events = monitor.observe(loss_value, grad_norm)
            if math.isfinite(loss_value) and (math.isfinite(grad_norm) or scaler.is_enabled()):
                scaler.step(optimizer)  # GradScaler skips the step itself on fp16 overflow
                state.nonfinite_streak = 0
            else:
                state.nonfinite_streak += 1  # skip: never let a NaN reach the weights
            scaler.update()
            state.step += 1
            layer_steps = config.monitor.layer_grad_norm_steps
            if layer_steps and state.step % layer_steps == 0:
                writes.run(log.write, "layer_grad_norms", state.step, **_layer_grad_norms(model))
            optimizer.zero_grad(set_to_none=True)
            step_time = time.perf_counter() - step_start
            for event in events:
                writes.run(log.write, "event", state.step, **event)
            if state.nonfinite_streak >= t.max_nonfinite_steps:
                status = "failed"
                reason = (
                    f"{state.nonfinite_streak} consecutive non-finite steps "
                    f"(loss {loss_value}, grad norm {grad_norm}) at step {state.step}"
                )
                break

            right, examples = (  # rank 0's examples under DDP
                accuracy_counts.tolist() if config.task != "lm" else (0, 0)
            )
            if math.isfinite(loss_value):
                state.window_loss += loss_value * tokens
                state.epoch_loss += loss_value * tokens
            state.window_tokens += tokens
            state.window_correct += right
            state.window_examples += examples
            if config.task == "multitask":  # rank 0's, as train_accuracy
                state.add_task_losses(dict(zip(data.tasks, task_losses.tolist(), strict=True)))
            state.epoch_tokens += tokens
            state.epoch_correct += right
            state.epoch_examples += examples
            state.epoch_steps += 1
            finished_epochs = state.micro_index // per_epoch
            if finished_epochs > state.epoch:  # the epoch's last micro-batch was in this step
                state.epoch = finished_epochs - 1
                emit("epoch", state.step, **state.end_epoch())
            if state.step % t.logging_steps == 0 or state.step == t.max_steps:
                bank_window_time()
                tokens_per_sec = state.window_tokens / max(state.window_seconds, 1e-9)
                train = {
                    "loss": state.window_loss / max(state.window_tokens, 1),
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "tokens_per_sec": tokens_per_sec,
                    "step_time": step_time,
                    "peak_memory_mb": peak_memory_mb(device),
                }
                if peak:
                    train["mfu"] = tokens_per_sec * flops_token / (peak * world.size)
                if state.window_examples:
                    train["train_accuracy"] = state.window_correct / state.window_examples
                train.update(state.window_task_loss_means())  # multitask: train_<task>_loss
                emit("train", state.step, **train)
                if activations is not None and (stats := activations.summary()):
                    emit("activations", state.step, **stats)
                reporter.report(state.step, train)
                state.reset_window()
                window_start = time.perf_counter()

            at_eval = state.step % ev.eval_steps == 0 or state.step == t.max_steps
            if at_eval:
                evaluate_and_save()
                if (
                    ev.early_stopping_patience
                    and state.evals_without_improvement >= ev.early_stopping_patience
                ):
                    reason = (
                        f"early stopping: no improvement of {ev.metric_for_best_model} in "
                        f"{state.evals_without_improvement} evaluations"
                    )
                    break
                if world.from_main(reporter.should_stop()):  # rank 0's reporter decides
                    status, reason = "pruned", f"stopped by the reporter at step {state.step}"
                    break
            elif t.save_steps and state.step % t.save_steps == 0:
                checkpoint(last_path)
            interrupted.raised, write_failed = world.any_rank(
                interrupted.raised, writes.error is not None
            )
            if write_failed:
                break
            if interrupted.raised:
                checkpoint(last_path)
                status, reason = (
                    "interrupted",
                    f"interrupted ({interrupted.name}) at step {state.step}; resume with --resume",
                )
                break

    del batches  # stops DataLoader workers, if any
    log.close()
    if board is not None:
        board.close()
    if world.is_main:
        writes.run(write_train_plots, out)  # lr.png, grad_norm.png
    world.leave()
    if write_failed or writes.error is not None:  # also a failure at the last step's writes
        status = "failed"
        reason = (
            f"{writes.error} at step {state.step}"
            if writes.error is not None
            else "rank 0 could not write the trial's files"
        )
    result = TrialResult(
        status=status,
        objective=ev.metric_for_best_model,
        greater_is_better=config.objective_greater_is_better,
        best_value=state.best_value,
        best_step=state.best_step,
        best_metrics=state.best_metrics,
        final_metrics=state.last_eval,
        steps=state.step,
        reason=reason,
        best_checkpoint=str(best_path) if best_path.exists() else None,
        last_checkpoint=str(last_path) if last_path.exists() else None,
        events=dict(monitor.counts),
        wall_seconds=time.perf_counter() - started,
        resumed_from_step=resumed_from,
        batch_size=chosen,
    )
    if world.is_main:
        try:
            result.save(out / "result.json")
        except StorageError as err:  # the caller still learns why from the result it gets
            also = f"{result.reason}; " if result.status == "failed" and result.reason else ""
            result = dataclasses.replace(result, status="failed", reason=f"{also}{err}")
    return result


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


def _layer_grad_norms(model: torch.nn.Module) -> dict[str, float]:
    """Gradient norm per top-level block (e.g. transformer.h.3), for spotting a layer that blows up."""
    squares: dict[str, float] = {}
    for name, param in model.named_parameters():
        if param.grad is None:
            continue
        parts = name.split(".")
        key = ".".join(parts[:3]) if len(parts) > 3 and parts[2].isdigit() else ".".join(parts[:2])
        squares[key] = squares.get(key, 0.0) + param.grad.float().pow(2).sum().item()
    return {k: math.sqrt(v) for k, v in squares.items()}


class _Writes:
    """Rank 0's file writes during a trial: the first that fails stops every later one.

    After a failed write nothing more is written (no checkpoint after a lost metrics record),
    so last.pt and the records up to its step stay consistent and `--resume` continues from it.
    """

    def __init__(self) -> None:
        self.error: StorageError | None = None

    def run(self, write: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """write(*args, **kwargs) unless an earlier write failed; None when this one fails."""
        if self.error is not None:
            return None
        try:
            return write(*args, **kwargs)
        except OSError as err:  # StorageError, or a plain OSError such as mkdir's
            self.error = storage_error(err, err.filename or "the trial's folder")
            return None


class _InterruptFlag:
    """Turns the first SIGINT or SIGTERM into a flag checked between steps; a second signal
    interrupts at once (KeyboardInterrupt)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.raised = False
        self.name = "Ctrl-C"  # the signal that raised the flag, for the trial's reason
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _InterruptFlag:
        for signum in self.SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. inside a Ray actor): leave it alone
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True
        self.name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
