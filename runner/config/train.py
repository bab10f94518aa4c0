"""train: optimisation, precision, batches, data loading, logging and checkpointing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from runner.config.common import documented


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, precision and checkpointing."""

    max_steps: int = documented(300, "optimizer steps in the trial", above=0)
    num_train_epochs: float = documented(
        0.0,
        "passes over the training data (transformers' name; may be fractional): when > 0 it "
        "sets the trial's steps to ceil(epochs * micro-batches per epoch / accumulation / "
        "processes), replacing max_steps",
        low=0,
    )
    per_device_train_batch_size: int = documented(
        32,
        "lm: blocks per micro-batch (classify uses data.max_tokens_per_batch)",
        above=0,
        limit=65_536,
    )
    gradient_accumulation_steps: int = documented(
        1, "micro-batches accumulated per optimizer step", above=0, limit=65_536
    )
    auto_find_batch_size: bool = documented(
        False,
        "before training, halve per_device_train_batch_size until a step fits in memory (CUDA: "
        "no out-of-memory error; CPU: within cpu_memory_budget_mb), multiplying "
        "gradient_accumulation_steps so the effective batch is unchanged; the choice is in "
        "result.json",
    )
    cpu_memory_budget_mb: float = documented(
        0.0,
        "auto_find_batch_size on CPU: a step's measured tensor memory (saved activations + "
        "weights + gradients + optimizer state) must fit in this many MB (0: no budget)",
        low=0,
    )
    optim: Literal["adamw", "sgd"] = documented(
        "adamw",
        "optimizer: AdamW with decoupled weight decay (fused kernel), or SGD with momentum; "
        "transformers' adamw_torch and adamw_torch_fused are read as adamw",
    )
    learning_rate: float = documented(1e-3, "peak learning rate, reached after warmup", low=0)
    weight_decay: float = documented(
        0.0, "decoupled weight decay; never applied to biases, norms or embeddings", low=0
    )
    adam_beta1: float = documented(0.9, "AdamW beta1", low=0, below=1)
    adam_beta2: float = documented(0.99, "AdamW beta2", low=0, below=1)
    adam_epsilon: float = documented(1e-8, "AdamW epsilon", above=0)
    sgd_momentum: float = documented(0.9, "SGD momentum (optim: sgd only)", low=0, below=1)
    layerwise_lr_decay: float = documented(
        1.0,
        "fine-tuning: each transformer block's lr is this times the one above it (the head at "
        "the scheduled lr, the embeddings lowest); 1: one lr for all",
        above=0,
        high=1,
    )
    unfreeze_every_steps: int = documented(
        0,
        "fine-tuning, gradual unfreezing: train only the head at first and unfreeze one more "
        "block from the top every N steps, the embeddings last (0: everything trains from step 0)",
        low=0,
    )
    lr_scheduler_type: Literal["cosine", "linear", "constant"] = documented(
        "cosine", "decay after warmup"
    )
    warmup_steps: int = documented(
        0, "linear warmup steps, a whole number (wins over warmup_ratio when > 0)", low=0
    )
    warmup_ratio: float = documented(
        0.0, "linear warmup as a fraction of max_steps", low=0, below=1
    )
    min_lr_ratio: float = documented(
        0.1, "the decay ends at learning_rate * min_lr_ratio", low=0, high=1
    )
    max_grad_norm: float = documented(
        1.0, "clip the global gradient norm to this (0: no clipping)", low=0
    )
    label_smoothing_factor: float = documented(
        0.0, "label smoothing in the cross-entropy loss", low=0, below=1
    )
    ignore_index: int = documented(
        -100,
        "a label with this value takes no part in the training loss (PyTorch's and "
        "transformers' -100, for padded labels; the runner's own masks use -100 as well)",
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = documented(
        "auto", "auto: bf16 on CUDA with bf16, fp16 + GradScaler on older CUDA, fp32 on CPU"
    )
    torch_compile: bool = documented(False, "compile the model with torch.compile")
    device: str = documented("auto", "auto, cpu, cuda or cuda:N")
    nproc: int = documented(
        1,
        "processes (GPUs) the trial trains on, with DDP under torchrun; the global batch is "
        "per_device_train_batch_size * nproc (hpo train and hpo search start torchrun)",
        above=0,
        limit=1024,
    )
    dataloader_num_workers: int = documented(
        0,
        "worker processes building training batches ahead of the step (0: in the trial's process)",
        low=0,
        high=256,
    )
    dataloader_pin_memory: bool = documented(
        False, "page-locked batches for faster copies to a GPU (ignored without CUDA)"
    )
    dataloader_prefetch_factor: int | None = documented(
        None,
        "batches each worker builds ahead (None: torch's default, 2; needs workers)",
        above=0,
    )
    logging_steps: int = documented(10, "log train metrics every N optimizer steps", above=0)
    log_activations: bool = documented(
        False,
        "at each logging step, an 'activations' record: mean, std and fraction of zeros of "
        "each transformer block's output (forward hooks on that step's micro-batches only)",
    )
    report_to: str = documented(
        "mlflow",
        "transformers' report_to: mlflow, tensorboard, all, none, or a list of them; mlflow: "
        "hpo train/search log to MLflow when tracking is on; tensorboard: event files in "
        "output_dir/tensorboard (needs the tensorboard package)",
    )
    save_steps: int = documented(
        0, "write the last checkpoint every N steps (0: at each evaluation)", low=0
    )
    max_nonfinite_steps: int = documented(
        5, "this many consecutive NaN/Inf steps end the trial as failed", above=0
    )
