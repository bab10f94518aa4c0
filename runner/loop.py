"""run_trial: one training trial, start to finish. Reads top to bottom.

run_trial sets the trial up (runner.trial_setup), opens its files (runner.trial_output), then
runs steps (runner.train_step) until runner.stopping's decision ends it, evaluating and saving
on the way, and finally writes result.json.

Example:
    >>> from runner import load_config, run_trial
    >>> result = run_trial(load_config("experiments/lm_tiny.yaml"))
    >>> result.status, result.best_metrics["val_loss"]
"""

from __future__ import annotations

import dataclasses
import signal
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from runner.config import TrialConfig
from runner.data.loader import train_batches
from runner.distributed import join_world
from runner.evaluate import evaluate
from runner.files import StorageError
from runner.plots import write_train_plots
from runner.reporting import NullReporter, Reporter
from runner.result import TrialResult
from runner.samples import write_samples
from runner.stopping import Stop, StopSignals, decide_stop
from runner.throughput import peak_flops
from runner.train_step import StepResult, count_step, train_record, train_step
from runner.trial_output import TrialOutput
from runner.trial_setup import Trial, describe_trial, flops_per_token_of, set_up_trial


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
    # under torchrun: join the other ranks; all train with rank 0's config
    world, config = join_world(config)
    reporter = (reporter or NullReporter()) if world.is_main else NullReporter()
    trial = set_up_trial(config, world, resume)  # raises on bad input, before any training
    output = TrialOutput(trial)  # only rank 0 writes files
    describe_trial(trial)
    loop = _Loop(trial, output, reporter, flops_per_token_of(trial), peak_flops(trial.device))
    stop = loop.run()
    return _tear_down(trial, output, stop, started)


@dataclass
class _Loop:
    """The training loop and what it keeps besides the trial: the train-metric window's clock."""

    trial: Trial
    output: TrialOutput
    reporter: Reporter
    flops_per_token: float
    peak_flops: float | None
    interrupted: _InterruptFlag = field(default_factory=lambda: _InterruptFlag())
    window_start: float = 0.0  # the train-metric window's clock since its last banking

    def run(self) -> Stop:
        """Steps until the stop decision ends the trial (runner.stopping: the order it asks in)."""
        trial, state = self.trial, self.trial.state
        world, t = trial.world, trial.train
        # Ctrl-C or SIGTERM finishes the current step, writes the last checkpoint and ends
        # "interrupted"; a failed write ends the trial "failed" at the end of its step. All
        # ranks agree on both at the end of every step, so they stop together.
        (write_failed,) = world.any_rank(self.output.error is not None)  # config.yaml, ...
        stop = decide_stop(self._signals(end_of_step=True, write_failed=write_failed))
        # this rank's micro-batches: index micro_index + rank, then every world.size-th
        batches = train_batches(
            trial.data, state.micro_index + world.rank, world.size, trial.batches.size, t
        )
        self.window_start = time.perf_counter()
        with self.interrupted:
            while stop is None:
                step = train_step(trial, batches)
                self._record_step_events(step)
                stop = decide_stop(  # non-finite steps
                    self._signals(
                        nonfinite_streak=state.nonfinite_streak,
                        max_nonfinite_steps=t.max_nonfinite_steps,
                        loss=step.loss,
                        grad_norm=step.grad_norm,
                    )
                )
                if stop is None:
                    self._count_and_log(step)
                    stop = self._end_step()
        del batches  # stops DataLoader workers, if any
        return stop

    def _signals(self, **known: Any) -> StopSignals:
        """The stop decision's inputs: the step and budget, and what else the loop knows."""
        return StopSignals(
            step=self.trial.state.step, max_steps=self.trial.train.max_steps, **known
        )

    def _record_step_events(self, step: StepResult) -> None:
        if step.layer_grad_norms is not None:
            self.output.record("layer_grad_norms", self.trial.state.step, **step.layer_grad_norms)
        for event in step.events:
            self.output.record("event", self.trial.state.step, **event)

    def _count_and_log(self, step: StepResult) -> None:
        """The step into the train metrics: an epoch record when one ended, and the train record
        (and activations, and the reporter's report) every logging_steps steps."""
        state, t = self.trial.state, self.trial.train
        epoch = count_step(self.trial, step)
        if epoch is not None:  # the epoch's last micro-batch was in this step
            self.output.emit("epoch", state.step, **epoch)
        if state.step % t.logging_steps == 0 or state.step == t.max_steps:
            self._bank_window_time()
            train = train_record(self.trial, step, self.flops_per_token, self.peak_flops)
            self.output.emit("train", state.step, **train)
            activations = self.trial.activations
            if activations is not None and (stats := activations.summary()):
                self.output.emit("activations", state.step, **stats)
            self.reporter.report(state.step, train)
            state.reset_window()
            self.window_start = time.perf_counter()

    def _end_step(self) -> Stop | None:
        """Evaluate (or save) when due, then ask whether to stop: early stopping, the reporter,
        and the ranks' interrupt and write-failure flags, each only if the last said go on."""
        trial, state = self.trial, self.trial.state
        t, ev, world = trial.train, trial.config.eval, trial.world
        if state.step % ev.eval_steps == 0 or state.step == t.max_steps:
            self._evaluate_and_save()
            evaluated = {
                "evaluated": True,
                "evals_without_improvement": state.evals_without_improvement,
                "early_stopping_patience": ev.early_stopping_patience,
                "metric": ev.metric_for_best_model,
            }
            if stop := decide_stop(self._signals(**evaluated)):
                return stop  # early stopping: the reporter is not asked
            says_stop = world.from_main(self.reporter.should_stop())  # rank 0's reporter decides
            if stop := decide_stop(self._signals(reporter_says_stop=says_stop)):
                return stop
        elif t.save_steps and state.step % t.save_steps == 0:
            self._checkpoint(trial.last_path)
        flag = self.interrupted
        flag.raised, write_failed = world.any_rank(flag.raised, self.output.error is not None)
        stop = decide_stop(
            self._signals(
                end_of_step=True,
                write_failed=write_failed,
                interrupted=flag.raised,
                interrupt_name=flag.name,
            )
        )
        if stop is not None and stop.status == "interrupted":
            self._checkpoint(trial.last_path)
        return stop

    def _evaluate_and_save(self) -> None:
        """Evaluate; log, keep the best, sample, checkpoint, then report the metrics."""
        trial, output, state = self.trial, self.output, self.trial.state
        config, world, ev = trial.config, trial.world, trial.config.eval
        # rank 0 alone evaluates; the others take its metrics, so they decide alike
        latencies: list[float] = []
        metrics = world.from_main(
            evaluate(
                trial.forward_model,
                trial.val_batches,
                config.task,
                trial.precision,
                len(trial.data.label_names),
                latencies,
            )
            if world.is_main
            else None
        )
        latency = {"val_latency_ms": statistics.median(latencies) * 1000} if latencies else {}
        output.emit("eval", state.step, **metrics, **latency)
        improved = state.record_eval(
            state.step, metrics, ev.metric_for_best_model, ev.early_stopping_threshold
        )
        # samples before the checkpoints: a run killed after last.pt has every record of its step
        if config.task == "lm" and ev.sample_tokens > 0 and world.is_main:
            samples = trial.out / "samples.jsonl"
            output.run(
                write_samples, samples, state.step, trial.model, trial.data.tokenizer, ev, config
            )
        if improved:
            self._checkpoint(trial.best_path)
        self._checkpoint(trial.last_path)
        self.reporter.report(state.step, metrics)

    def _bank_window_time(self) -> None:
        now = time.perf_counter()
        self.trial.state.window_seconds += now - self.window_start
        self.window_start = now

    def _checkpoint(self, path) -> None:
        rank_rng = self.trial.world.gather_rng_states()  # every rank calls it; {} in a world of one
        self._bank_window_time()
        if self.trial.world.is_main:
            self.output.save_checkpoint(path, self.trial, rank_rng)


def _tear_down(trial: Trial, output: TrialOutput, stop: Stop, started: float) -> TrialResult:
    """Close the files, leave the world, and write result.json (rank 0)."""
    world, state = trial.world, trial.state
    output.close()
    if world.is_main:
        output.run(write_train_plots, trial.out)  # lr.png, grad_norm.png
    world.leave()
    if output.error is not None:  # also a failure at the last step's writes
        stop = Stop("failed", f"{output.error} at step {state.step}")
    result = TrialResult(
        status=stop.status,
        objective=trial.config.eval.metric_for_best_model,
        greater_is_better=trial.config.objective_greater_is_better,
        best_value=state.best_value,
        best_step=state.best_step,
        best_metrics=state.best_metrics,
        final_metrics=state.last_eval,
        steps=state.step,
        reason=stop.reason,
        best_checkpoint=str(trial.best_path) if trial.best_path.exists() else None,
        last_checkpoint=str(trial.last_path) if trial.last_path.exists() else None,
        events=dict(trial.monitor.counts),
        wall_seconds=time.perf_counter() - started,
        resumed_from_step=trial.resumed_from,
        batch_size=trial.batches.chosen,
    )
    if world.is_main:
        try:
            result.save(trial.out / "result.json")
        except StorageError as err:  # the caller still learns why from the result it gets
            also = f"{result.reason}; " if result.status == "failed" and result.reason else ""
            result = dataclasses.replace(result, status="failed", reason=f"{also}{err}")
    return result


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
