"""GPU check: tokens/s and MFU of a GPT-2-124M-sized model, bare PyTorch loop against the runner.

One table, in under 5 minutes on one GPU:

    bare bf16          autocast bf16, AdamW(fused), random tokens already on the GPU
    bare fp16+scaler   autocast fp16 with torch.amp.GradScaler (unscale before clip)
    bare bf16+compile  the bf16 row with torch.compile (compile time excluded: warmup steps)
    bare bf16 DDP xN   DDP over NCCL on every GPU (only with 2+ GPUs); tokens/s of all ranks,
                       MFU against N GPUs' peak
    runner bf16        run_trial on a generated corpus (random words; BPE trained to up to
                       50,304 ids), the same sizes, its own metrics.jsonl's tokens_per_sec/mfu

Everything is generated here: no corpus, no download. Model: GPT-2 small (12 layers, 12
heads, 768 wide, 1024 positions, vocab 50,304, tied): 124M parameters; the runner row's
vocabulary is what BPE reaches on the generated text (its parameter count is printed).
MFU = tokens/s x (6 N + 12 L d T) / the GPU's dense bf16 peak (runner.throughput).
Without a CUDA GPU it prints one line and exits with status 1.

    PYTHONPATH=. .venv/bin/python bench/gpu_check.py            # on a GPU machine
    PYTHONPATH=. .venv/bin/python bench/gpu_check.py --smoke    # the same code on CPU, tiny
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

GPT2_SMALL = {"n_layer": 12, "n_head": 12, "n_embd": 768, "vocab": 50304, "block": 1024}
TINY = {"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab": 512, "block": 64}


def build(sizes: dict, device: torch.device):
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=sizes["vocab"],
        n_positions=sizes["block"],
        n_embd=sizes["n_embd"],
        n_layer=sizes["n_layer"],
        n_head=sizes["n_head"],
        bos_token_id=None,
        eos_token_id=None,
        use_cache=False,
    )
    return transformers.GPT2LMHeadModel(config).to(device).train()


def bare_loop(sizes, device, precision, compile_model, steps, warmup, batch, rank=0, world=1):
    """Tokens/s of this process over the steps after warmup."""
    model = build(sizes, device)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=3e-4, fused=device.type == "cuda")
    forward = torch.compile(model) if compile_model else model
    if world > 1:
        forward = torch.nn.parallel.DistributedDataParallel(forward, device_ids=[device.index])
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    generator = torch.Generator(device=device).manual_seed(1 + rank)
    shape = (batch, sizes["block"])
    ids = torch.randint(0, sizes["vocab"], shape, device=device, generator=generator)
    started = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype):
            logits = forward(input_ids=ids).logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return steps * batch * sizes["block"] / (time.perf_counter() - started), model


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ddp_worker(rank, world, sizes, steps, warmup, batch, port, queue):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl", rank=rank, world_size=world)
    device = torch.device("cuda", rank)
    torch.cuda.set_device(device)
    rate, _ = bare_loop(sizes, device, "bf16", False, steps, warmup, batch, rank, world)
    total = torch.tensor([rate], device=device)
    dist.all_reduce(total)
    if rank == 0:
        queue.put(total.item())
    dist.destroy_process_group()


def ddp_row(sizes, steps, warmup, batch, world):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.start_processes(
        _ddp_worker,
        args=(world, sizes, steps, warmup, batch, port, queue),
        nprocs=world,
        start_method="spawn",
    )
    return queue.get()


def runner_row(sizes, device, steps, warmup, batch, precision, folder: Path):
    """run_trial on generated text; tokens/s and MFU from its metrics.jsonl after warmup."""
    from runner import run_trial
    from runner.config import config_from_dict
    from runner.metrics_log import read_metrics

    rng = random.Random(0)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(40_000)
    ]
    tokens_needed = (steps + warmup + 2) * batch * sizes["block"] * 1.3
    docs = [
        " ".join(rng.choice(words) for _ in range(200)) for _ in range(int(tokens_needed // 150))
    ]
    corpus = folder / "corpus.txt"
    corpus.write_text("\n\n".join(docs))
    log_every = max(1, warmup)
    config = config_from_dict(
        {
            "task": "lm",
            "output_dir": str(folder / "trial"),
            "data": {
                "path": str(corpus),
                "vocab_size": sizes["vocab"],
                "block_size": sizes["block"],
                "max_chars": 0,
                "cache_dir": str(folder / "cache"),
                "val_fraction": 0.02,
            },
            "model": {k: sizes[k] for k in ("n_layer", "n_head", "n_embd")},
            "train": {
                "max_steps": warmup + steps,
                "per_device_train_batch_size": batch,
                "precision": precision,
                "device": str(device),
                "logging_steps": log_every,
                "weight_decay": 0.0,
            },
            "eval": {"eval_steps": warmup + steps, "max_eval_batches": 1, "sample_tokens": 0},
        }
    )
    result = run_trial(config)
    if result.status != "complete":
        raise SystemExit(f"gpu_check: the runner row failed: {result.reason}")
    records = read_metrics(folder / "trial" / "metrics.jsonl", "train")[1:]  # first: warmup
    data = read_metrics(folder / "trial" / "metrics.jsonl", "data")[0]
    rate = statistics.median(r["tokens_per_sec"] for r in records)
    mfu = statistics.median(r["mfu"] for r in records) if "mfu" in records[0] else None
    return rate, mfu, data["vocab_size"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile)")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step per GPU")
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU: checks the code")
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        print(
            f"gpu_check: no CUDA GPU on this machine (torch {torch.__version__}); "
            "nothing measured, run it where one is",
            file=sys.stderr,
        )
        return 1
    from runner.throughput import flops_per_token, peak_flops

    device = torch.device("cpu") if args.smoke else torch.device("cuda", 0)
    sizes = TINY if args.smoke else GPT2_SMALL
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    rows = []

    def mfu_of(rate, model, gpus=1):
        peak = peak_flops(device)
        per_token = flops_per_token(model, sizes["n_layer"], sizes["n_embd"], sizes["block"])
        return rate * per_token / (peak * gpus) if peak else None

    model = None
    for name, precision, compiled in (
        ("bare bf16", "bf16", False),
        ("bare fp16+scaler", "fp16", False),
        ("bare bf16+compile", "bf16", True),
    ):
        if compiled and args.no_compile:
            continue
        rate, model = bare_loop(
            sizes, device, precision, compiled, args.steps, args.warmup, args.batch
        )
        params = sum(p.numel() for p in model.parameters())
        rows.append((name, params, rate, mfu_of(rate, model)))
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if gpus >= 2:
        reference = build(sizes, torch.device("cpu"))  # for the FLOPs per token only
        rate = ddp_row(sizes, args.steps, args.warmup, args.batch, gpus)
        rows.append((f"bare bf16 DDP x{gpus}", rows[0][1], rate, mfu_of(rate, reference, gpus)))
    with tempfile.TemporaryDirectory() as folder:
        rate, mfu, vocab = runner_row(
            sizes, device, args.steps, args.warmup, args.batch, "bf16", Path(folder)
        )
    runner_params = rows[0][1] - (sizes["vocab"] - vocab) * sizes["n_embd"]
    rows.append(("runner bf16", runner_params, rate, mfu))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke)"
    print(
        f"gpu_check on {name}, torch {torch.__version__}: batch {args.batch} x "
        f"{sizes['block']} tokens, {args.steps} timed steps after {args.warmup}"
    )
    print(f"{'row':22s} {'params':>12s} {'tokens/s':>12s} {'MFU':>7s}")
    for row, params, rate, mfu in rows:
        mfu_text = f"{mfu:7.1%}" if mfu is not None else "      -"
        print(f"{row:22s} {params:12,d} {rate:12,.0f} {mfu_text}")
    print(
        f"runner / bare bf16 tokens/s: {rows[-1][2] / rows[0][2]:.3f}; "
        f"total {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
