"""Runner overhead: run_trial against a bare PyTorch loop and transformers.Trainer, in one process.

Every contender trains the same model (runner.model.build_model, same seed) on the same data
(runner.data.prepare_data, called once), with the same batches, steps, precision, AdamW
hyperparameters, warmup + cosine schedule and gradient clipping. Only the code around the
step differs:

    bare        hand-written: lr_at -> train_batch -> forward_loss -> backward ->
                clip_grad_norm_ -> step -> zero_grad -> loss.item() (one host sync per step);
                optimizer from runner.optim.build_optimizer, the runner's own
    runner      run_trial(config): the same step plus GradScaler calls (disabled unless fp16),
                the anomaly monitor, grad-norm and loss .item(), metrics.jsonl every
                logging_steps; its evaluation, checkpoints and samples come after the last step
    trainer     transformers.Trainer, its own defaults where the runner has none (optimizer:
                --trainer-optim, adamw_torch_fused by default as in TrainingArguments); no
                evaluation, no saving, no progress bar; the runner's batches in the same order
    bare_fused  (optional) bare with AdamW(fused=True): what the optimizer kernel alone costs
    runner_fused  (optional) runner with AdamW(fused=True) on every device, not only CUDA

The contenders run in lockstep, each in its own thread: one optimizer step of the first, then
one of the second, ... (A1 B1 C1 A2 B2 C2 ...), so a burst of load from another process lands
on all of them alike. A step's time is the period between the starts of two consecutive
optimizer steps of one contender: everything its loop does per step, data and logging
included. The first --warmup steps are left out. Rounds repeat this with the order rotated.
A ratio a/b is the median, over the steps of all rounds, of a's step k / b's step k (taken
back to back, so under the same load); "mean step" and "whole call" ratios are medians of
per-round ratios.

    .venv/bin/python bench/runner_overhead.py                      # lm_tiny on CPU, ~2 min
    .venv/bin/python bench/runner_overhead.py --device cuda --precision bf16
    .venv/bin/python bench/runner_overhead.py --gpt2-small         # CUDA: tokens/s and MFU
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import threading
import time
from collections.abc import Callable

import torch
import transformers

import runner.loop
import runner.trial_setup
from runner.config import TrialConfig, load_config
from runner.data import prepare_data
from runner.loss import forward_loss
from runner.model import build_model
from runner.optim import build_optimizer, decay_groups
from runner.precision import enable_fast_matmul, resolve_device, resolve_precision
from runner.schedule import lr_at, warmup_steps
from runner.seeding import seed_everything
from runner.throughput import flops_per_token, peak_flops

CONTENDERS = ("bare", "runner", "trainer", "bare_fused", "runner_fused")
_PREPARE_DATA, _BUILD_OPTIMIZER = (
    runner.trial_setup.prepare_data,
    runner.trial_setup.build_optimizer,
)
Tick = Callable[[], None]  # called by a contender at the start of every optimizer step

# ----------------------------------------------------------------------------- contenders


def run_bare(
    config: TrialConfig, data, tick: Tick, fused: bool = False, step_log: list | None = None
) -> None:
    """The reference: the least code that trains this model the way the runner does.

    step_log, when given, receives the host time of each optimizer.step() call.
    """
    t = config.train
    device = resolve_device(t)
    precision = resolve_precision(t, device)
    seed_everything(config.seed)
    enable_fast_matmul(device)
    model = _build(config, data).to(device).train()
    optimizer = (fused_adamw if fused else build_optimizer)(model, t, device)
    forward_model = torch.compile(model) if t.torch_compile else model
    params = list(model.parameters())
    for step in range(t.max_steps):
        tick()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, t)
        for micro in range(t.gradient_accumulation_steps):
            batch = data.train_batch(
                step * t.gradient_accumulation_steps + micro, t.per_device_train_batch_size
            )
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with precision.autocast():
                loss, _ = forward_loss(forward_model, batch, config.task)
                loss = loss / t.gradient_accumulation_steps
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
        started = time.perf_counter()
        optimizer.step()
        if step_log is not None:
            step_log.append(time.perf_counter() - started)
        optimizer.zero_grad(set_to_none=True)
        loss.item()


def run_runner(config: TrialConfig, data, tick: Tick, fused: bool = False) -> None:
    """run_trial as a search runs it, handed the prepared data so that each step start is seen.

    fused=True swaps runner.optim.build_optimizer for fused_adamw inside run_trial. The swaps
    are safe in lockstep: run_trial looks both up before its first step, within its own turn.
    """
    runner.trial_setup.prepare_data = lambda _config: _TickingData(data, config.train, tick)
    runner.trial_setup.build_optimizer = fused_adamw if fused else _BUILD_OPTIMIZER
    try:
        result = runner.loop.run_trial(config)
    finally:
        runner.trial_setup.prepare_data, runner.trial_setup.build_optimizer = (
            _PREPARE_DATA,
            _BUILD_OPTIMIZER,
        )
    if result.status != "complete":
        raise RuntimeError(f"run_trial ended {result.status}: {result.reason}")


def run_trainer(config: TrialConfig, data, tick: Tick, optim: str) -> None:
    """transformers.Trainer on the same model init and the same batches, in the same order."""
    t = config.train
    device = resolve_device(t)
    seed_everything(config.seed)
    model = _build(config, data)
    args = transformers.TrainingArguments(
        output_dir=config.output_dir,
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        adam_beta1=t.adam_beta1,
        adam_beta2=t.adam_beta2,
        adam_epsilon=t.adam_epsilon,
        optim=optim,
        warmup_steps=warmup_steps(t),
        lr_scheduler_type={
            "cosine": "cosine_with_min_lr",
            "linear": "linear",
            "constant": "constant_with_warmup",
        }[t.lr_scheduler_type],
        lr_scheduler_kwargs={"min_lr_rate": t.min_lr_ratio}
        if t.lr_scheduler_type == "cosine"
        else None,
        max_grad_norm=t.max_grad_norm,
        bf16=resolve_precision(t, device).name == "bf16",
        torch_compile=t.torch_compile,
        logging_steps=t.logging_steps,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=device.type == "cpu",
        seed=config.seed,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=_OrderedBlocks(data, t),
        callbacks=[_TickAtStepBegin(tick)],
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # no log lines on stdout
    trainer.train()


def fused_adamw(model: torch.nn.Module, t, device: torch.device) -> torch.optim.Optimizer:
    """build_optimizer's AdamW and param groups with fused=True on every device, CPU included."""
    return torch.optim.AdamW(
        decay_groups(model, t.weight_decay),
        lr=t.learning_rate,
        betas=(t.adam_beta1, t.adam_beta2),
        eps=t.adam_epsilon,
        fused=True,
    )


def _build(config: TrialConfig, data) -> torch.nn.Module:
    return build_model(
        config, data.tokenizer.vocab_size, data.tokenizer.pad_id, len(data.label_names)
    )


class _TickingData:
    """The prepared data; fetching an optimizer step's first micro-batch marks the step's start."""

    def __init__(self, data, t, tick: Tick) -> None:
        self._data, self._accumulation, self._tick = data, t.gradient_accumulation_steps, tick

    def train_batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        if index % self._accumulation == 0:
            self._tick()
        return self._data.train_batch(index, batch_size)

    def __getattr__(self, name: str):
        return getattr(self._data, name)


class _OrderedBlocks(torch.utils.data.IterableDataset):
    """The runner's train batches, row by row, in the runner's order; labels are the inputs."""

    def __init__(self, data, t) -> None:
        self._data, self._batch = data, t.per_device_train_batch_size
        self._count = t.max_steps * t.gradient_accumulation_steps

    def __iter__(self):
        for index in range(self._count):
            for row in self._data.train_batch(index, self._batch)["input_ids"]:
                yield {"input_ids": row, "labels": row}


class _TickAtStepBegin(transformers.TrainerCallback):
    def __init__(self, tick: Tick) -> None:
        self._tick = tick

    def on_step_begin(self, args, state, control, **kwargs):
        self._tick()


# ----------------------------------------------------------------------------- lockstep


class Lockstep:
    """Runs contenders in threads, one optimizer step at a time each, in turn.

    A contender's segments are the (wall, CPU) time it held the turn between two ticks: the
    first is its setup, the middle ones its steps, the last its final step and what follows.
    Only one contender runs at a time, so process CPU time is its own.
    """

    def __init__(self, names: list[str], cuda: bool) -> None:
        self.segments: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        self._live, self._turn, self._cuda = list(names), names[0], cuda
        self._cond = threading.Condition()
        self._since: dict[str, tuple[float, float]] = {}

    def run(self, jobs: dict[str, Callable[[Tick], None]]) -> None:
        """Run every job to the end; re-raises the first failure."""
        errors: list[BaseException] = []

        def body(name: str, job: Callable[[Tick], None]) -> None:
            self._take(name)
            try:
                job(lambda: self._tick(name))
            except BaseException as err:  # noqa: B036 - handed to the main thread below
                errors.append(err)
            finally:
                self._record(name)
                self._hand_over(name, leaving=True)

        if len(jobs) == 1:  # nobody to take turns with: stay in the main thread (torch.compile)
            body(*next(iter(jobs.items())))
        else:
            threads = [threading.Thread(target=body, args=job, daemon=True) for job in jobs.items()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]

    def _tick(self, name: str) -> None:
        self._record(name)
        self._hand_over(name)
        self._take(name)

    def _take(self, name: str) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._turn == name)
        self._since[name] = _now()

    def _record(self, name: str) -> None:
        if self._cuda:  # a turn ends once its GPU work has finished
            torch.cuda.synchronize()
        end, start = _now(), self._since[name]
        self.segments[name].append((end[0] - start[0], end[1] - start[1]))

    def _hand_over(self, name: str, leaving: bool = False) -> None:
        with self._cond:
            i = self._live.index(name)
            if leaving:
                self._live.remove(name)
                i -= 1
            if self._live:
                self._turn = self._live[(i + 1) % len(self._live)]
            self._cond.notify_all()


def _now() -> tuple[float, float]:
    # process CPU time is less hurt than wall time when other processes share the cores
    return time.perf_counter(), time.process_time()


def step_times(segments: list[tuple[float, float]], skip: int, clock: int = 0) -> list[float]:
    """The steps' times (wall: clock 0, CPU: clock 1), without setup, tail and `skip` first steps."""
    return [segment[clock] for segment in segments[1 + skip : -1]]


# ----------------------------------------------------------------------------- the comparison


def compare(args: argparse.Namespace) -> None:
    """Rounds of all contenders in lockstep; prints a table of medians and the goal ratios."""
    overrides = [
        f"train.max_steps={args.steps}",
        f"train.logging_steps={args.logging_steps}",
        f"train.device={args.device}",
        f"train.precision={args.precision}",
        f"eval.eval_steps={args.steps + 1}",
        *args.override,
    ]
    config = load_config(args.config, overrides)
    data = prepare_data(config)  # once: every contender trains on these blocks
    t = config.train
    tokens_per_step = (
        t.per_device_train_batch_size * t.gradient_accumulation_steps * config.data.block_size
    )
    contenders = args.contenders.split(",")
    if set(contenders) - set(CONTENDERS) or "bare" not in contenders:
        raise SystemExit(f"--contenders: choose from {', '.join(CONTENDERS)}, bare included")
    if "trainer" in contenders and importlib.util.find_spec("accelerate") is None:
        print(
            "trainer: skipped: transformers.Trainer needs accelerate>=1.1.0, which is not installed"
        )
        contenders.remove("trainer")
    cuda = resolve_device(t).type == "cuda"
    transformers.logging.set_verbosity_error()  # Trainer's notes on stderr, once per round
    print(
        f"{args.config}: {sum(p.numel() for p in _build(config, data).parameters()):,} params, "
        f"batch {t.per_device_train_batch_size}x{config.data.block_size} tokens, {t.max_steps} steps "
        f"(first {args.warmup} untimed), {args.rounds} rounds, {args.device}, {args.precision}; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}"
    )

    def one_round(names: list[str], steps: int, folder: str) -> Lockstep:
        cfg = load_config(
            args.config,
            [
                *overrides,
                f"train.max_steps={steps}",
                f"eval.eval_steps={steps + 1}",
                f"output_dir={folder}",
            ],
        )
        jobs = {
            "bare": lambda tick: run_bare(cfg, data, tick, step_log=optimizer_steps["bare"]),
            "bare_fused": lambda tick: run_bare(
                cfg, data, tick, fused=True, step_log=optimizer_steps["bare_fused"]
            ),
            "runner": lambda tick: run_runner(cfg, data, tick),
            "runner_fused": lambda tick: run_runner(cfg, data, tick, fused=True),
            "trainer": lambda tick: run_trainer(cfg, data, tick, args.trainer_optim),
        }
        lockstep = Lockstep(names, cuda)
        lockstep.run({n: jobs[n] for n in names})
        return lockstep

    # per contender and round: its step times (wall and CPU) and its whole call
    walls = {n: [] for n in contenders}
    optimizer_steps = {"bare": [], "bare_fused": []}  # host time of optimizer.step()
    cpus = {n: [] for n in contenders}
    wholes = {n: [] for n in contenders}
    with tempfile.TemporaryDirectory() as tmp:
        one_round(contenders, args.warmup + 2, f"{tmp}/warm")  # untimed: first-call costs
        for r in range(args.rounds):
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            lockstep = one_round(order, args.steps, f"{tmp}/{r}")
            for name, segments in lockstep.segments.items():
                walls[name].append(step_times(segments, args.warmup))
                cpus[name].append(step_times(segments, args.warmup, clock=1))
                wholes[name].append(sum(wall for wall, _ in segments))
            print(
                f"round {r + 1}/{args.rounds}: bare {statistics.median(walls['bare'][-1]) * 1e3:.1f}"
                " ms/step; "
                + ", ".join(
                    f"{n}/bare {paired(walls, n, 'bare', [r]):.3f}" for n in contenders[1:]
                ),
                flush=True,
            )
    rounds = list(range(args.rounds))

    def step(name: str) -> float:
        return statistics.median(statistics.median(times) for times in walls[name])

    def mean_ratio(a: str, b: str) -> float:
        pairs = zip(walls[a], walls[b], strict=True)
        return statistics.median(statistics.fmean(x) / statistics.fmean(y) for x, y in pairs)

    def whole_ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(wholes[a], wholes[b], strict=True))

    print(
        "\n| contender | median step (ms) | tokens/s | step / bare | CPU time / bare "
        "| mean step / bare | whole call (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in contenders:
        print(
            f"| {n} | {step(n) * 1e3:.1f} | {tokens_per_step / step(n):,.0f} "
            f"| {paired(walls, n, 'bare', rounds):.3f} | {paired(cpus, n, 'bare', rounds):.3f} "
            f"| {mean_ratio(n, 'bare'):.3f} | {statistics.median(wholes[n]):.2f} |"
        )
    print()
    for name in (n for n in contenders if n.startswith("runner")):
        for other, goal in (("bare", "<= 1.05"), ("trainer", "< 1")):
            if other in contenders:
                print(
                    f"{name}/{other}: step {paired(walls, name, other, rounds):.3f} (goal {goal}); "
                    f"CPU time {paired(cpus, name, other, rounds):.3f}, mean step "
                    f"{mean_ratio(name, other):.3f}, whole call {whole_ratio(name, other):.3f}"
                )
    print(
        "whole call: bare = model build + steps; runner = run_trial, with its final evaluation, "
        "checkpoints and samples; trainer = Trainer setup + train()"
    )
    if not cuda:
        print(
            "optimizer.step(), median: "
            + ", ".join(
                f"{n} {statistics.median(times) * 1e3:.2f} ms"
                for n, times in optimizer_steps.items()
                if times
            )
            + " (bare: runner.optim.build_optimizer, its CPU setting; bare_fused: fused=True)"
        )


def paired(times: dict[str, list[list[float]]], a: str, b: str, rounds: list[int]) -> float:
    """Median over steps of a's step k / b's step k: the two ran back to back, in one load."""
    return statistics.median(
        x / y for r in rounds for x, y in zip(times[a][r], times[b][r], strict=True)
    )


def gpt2_small(args: argparse.Namespace) -> None:
    """GPT-2 small shape on CUDA: bare and runner, eager and compiled, one after the other."""
    if not torch.cuda.is_available():
        print("gpt2_small: skipped: no CUDA device")
        return
    overrides = [
        f"train.max_steps={args.gpt2_steps}",
        f"data.max_chars={args.gpt2_max_chars}",
        f"eval.eval_steps={args.gpt2_steps + 1}",
        "eval.sample_tokens=0",
        "train.device=cuda",
        *args.override,
    ]
    config = load_config("experiments/gpt2_small.yaml", overrides)
    data = prepare_data(config)
    t = config.train
    device = resolve_device(t)
    tokens_per_step = (
        t.per_device_train_batch_size * t.gradient_accumulation_steps * config.data.block_size
    )
    model = _build(config, data)
    flops = flops_per_token(
        model, config.model.n_layer, config.model.n_embd, config.data.block_size
    )
    peak = peak_flops(device)
    print(
        f"gpt2_small on {torch.cuda.get_device_name(device)}: "
        f"{sum(p.numel() for p in model.parameters()):,} params (vocab {data.tokenizer.vocab_size}), "
        f"{tokens_per_step:,} tokens/step, {t.max_steps} steps (first {args.warmup} untimed), "
        f"{resolve_precision(t, device).name}, peak {(peak or 0) / 1e12:.0f} TFLOP/s dense bf16"
    )
    del model
    print("| contender | compiled | mean step (ms) | tokens/s | MFU |")
    print("| --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for compiled in (False, True):
            for name, job in (("bare", run_bare), ("runner", run_runner)):
                cfg = load_config(
                    "experiments/gpt2_small.yaml",
                    [
                        *overrides,
                        f"train.torch_compile={compiled}",
                        f"output_dir={tmp}/{name}{compiled}",
                    ],
                )
                lockstep = Lockstep([name], cuda=True)
                lockstep.run({name: lambda tick, job=job, cfg=cfg: job(cfg, data, tick)})
                step = statistics.fmean(step_times(lockstep.segments[name], args.warmup))
                mfu = (
                    f"{tokens_per_step / step * flops / peak:.1%}" if peak else "n/a (unknown GPU)"
                )
                print(
                    f"| {name} | {compiled} | {step * 1e3:.1f} | {tokens_per_step / step:,.0f} | {mfu} |",
                    flush=True,
                )
                torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/lm_tiny.yaml")
    parser.add_argument(
        "--steps", type=int, default=50, help="optimizer steps per contender and round"
    )
    parser.add_argument(
        "--warmup", type=int, default=10, help="first steps left out of the step times"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds, the contenders' order rotated"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16", "auto"])
    parser.add_argument(
        "--logging-steps", type=int, default=10, help="runner and trainer log every N steps"
    )
    parser.add_argument(
        "--contenders",
        default="bare,runner,trainer",
        help=f"comma-separated, from {', '.join(CONTENDERS)}; bare is the baseline",
    )
    parser.add_argument(
        "--trainer-optim",
        default="adamw_torch_fused",
        help="TrainingArguments.optim (its own default: adamw_torch_fused)",
    )
    parser.add_argument("-o", "--override", action="append", default=[], help="config key=value")
    parser.add_argument(
        "--gpt2-small", action="store_true", help="only the CUDA gpt2_small section"
    )
    parser.add_argument("--gpt2-steps", type=int, default=30)
    parser.add_argument(
        "--gpt2-max-chars",
        type=int,
        default=3_000_000,
        help="corpus characters for gpt2_small: tokenizing all of it is slow",
    )
    args = parser.parse_args()
    if args.warmup + 3 > min(args.steps, args.gpt2_steps):
        parser.error("--steps and --gpt2-steps must exceed --warmup by at least 3")
    if args.gpt2_small:
        gpt2_small(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
