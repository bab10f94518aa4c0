"""A transformers Trainer fine-tuning script, searched by `hpo search` (README: transformers Trainer).

It stands for the usual fine-tuning script: a pretrained BERT, a sentiment data set, Trainer
with evaluation every few steps and load_best_model_at_end. hpo asks one line of it,
`callbacks=[HpoCallback()]`: each evaluation is reported (eval_loss, eval_accuracy), a pruned
trial stops training, and Trainer's best checkpoint becomes the trial's (promoted to the
study's best/ and registered with MLflow for the best trial).

So that it runs anywhere in seconds, with no download: the "pretrained" model is a tiny BERT
(hidden size 32, 2 layers) that the script builds and saves first with a word-level tokenizer
(the tokenizers library, wrapped in PreTrainedTokenizerFast), then loads with from_pretrained
as a real script loads bert-base-uncased; the data are short movie-review-like sentences
generated from a fixed seed (rt-polarity-like: positive and negative words among neutral ones).

    hpo search --space experiments/examples/trainer_space.yaml
    python experiments/examples/trainer_sequence_classification.py --learning-rate 3e-3  # by hand

The learning rate and weight decay come from the command line (the space's command fills
them), else from HPO_TRIAL_PARAMS; everything is written under HPO_TRIAL_DIR (else
./trainer_example). With HPO_RESUME=1 (hpo search --resume after a Ctrl-C) Trainer resumes
from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
)

from hpo.integrations.transformers import HpoCallback

POSITIVE = "good great fine moving brilliant charming funny superb warm clever".split()
NEGATIVE = "bad awful dull boring weak clumsy tedious bland lame messy".split()
NEUTRAL = "the film movie story plot cast was is and a with an its this script ending".split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
MAX_LENGTH = 16


def parse_args() -> argparse.Namespace:
    params = json.loads(os.environ.get("HPO_TRIAL_PARAMS", "{}"))  # the trial's, as JSON
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning-rate", type=float, default=params.get("learning_rate", 3e-3))
    parser.add_argument("--weight-decay", type=float, default=params.get("weight_decay", 0.0))
    parser.add_argument("--steps", type=int, default=40, help="training steps")
    parser.add_argument("--eval-steps", type=int, default=5, help="evaluate every N steps")
    parser.add_argument("--examples", type=int, default=256, help="training sentences")
    parser.add_argument(
        "--base-model", help="the pretrained model's folder (default: built under the output)"
    )
    return parser.parse_args()


def sentences(count: int, seed: int) -> list[tuple[str, int]]:
    """Sentences with their label (1 positive): three words of their sentiment, one of the other
    (so a single word does not decide), among neutral ones."""
    rng = random.Random(seed)
    data = []
    for index in range(count):
        label = index % 2
        ours, theirs = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
        words = [rng.choice(ours) for _ in range(3)] + [rng.choice(theirs)]
        words += [rng.choice(NEUTRAL) for _ in range(rng.randint(2, 6))]
        rng.shuffle(words)
        data.append((" ".join(words), label))
    return data


def build_base_model(folder: Path) -> None:
    """The tiny "pretrained" BERT and its tokenizer, saved as from_pretrained reads them."""
    vocab = {word: i for i, word in enumerate(SPECIAL + sorted(set(POSITIVE + NEGATIVE + NEUTRAL)))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=MAX_LENGTH,
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    torch.manual_seed(0)  # the same "pretrained" weights in every trial
    staging = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    BertForSequenceClassification(config).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        os.rename(staging, folder)  # whole, or not at all (trials may share the folder)
    except OSError:
        if not (folder / "config.json").is_file():
            raise


class Encoded(torch.utils.data.Dataset):
    """Tokenized sentences, padded to MAX_LENGTH, as Trainer's default collator takes them."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, data: list[tuple[str, int]]) -> None:
        texts, self.labels = [text for text, _ in data], [label for _, label in data]
        self.encoded = tokenizer(
            texts, padding="max_length", truncation=True, max_length=MAX_LENGTH
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, object]:
        item = {key: values[index] for key, values in self.encoded.items()}
        return {**item, "labels": self.labels[index]}


def accuracy(prediction) -> dict[str, float]:
    """compute_metrics: Trainer reports it as eval_accuracy."""
    return {
        "accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())
    }


def main() -> None:
    args = parse_args()
    transformers.utils.logging.disable_progress_bar()  # output.log: the evaluations, not bars
    if not torch.cuda.is_available():
        torch.set_num_threads(1)  # a model this small trains fastest on one CPU thread
    out = Path(os.environ.get("HPO_TRIAL_DIR", "trainer_example")).resolve()
    base = Path(args.base_model) if args.base_model else out / "base_model"
    if not (base / "config.json").is_file():
        build_base_model(base)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(base)
    model = BertForSequenceClassification.from_pretrained(base)

    training = TrainingArguments(
        output_dir=str(out / "trainer"),
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        max_steps=args.steps,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        eval_strategy="steps",
        eval_steps=args.eval_steps,
        save_strategy="steps",
        save_steps=args.eval_steps,
        save_total_limit=1,  # Trainer keeps the best checkpoint besides the last
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",  # eval_accuracy, the space's objective
        report_to="none",  # hpo tracks the trial in MLflow; Trainer's own run would duplicate it
        logging_strategy="no",
        disable_tqdm=True,
        seed=0,
        use_cpu=not torch.cuda.is_available(),
    )
    callback = HpoCallback()
    trainer = Trainer(
        model=model,
        args=training,
        train_dataset=Encoded(tokenizer, sentences(args.examples, seed=1)),
        eval_dataset=Encoded(tokenizer, sentences(64, seed=2)),
        processing_class=tokenizer,  # saved with each checkpoint: the promoted best/ loads alone
        compute_metrics=accuracy,
        callbacks=[callback],
    )
    resume = os.environ.get("HPO_RESUME") == "1" and any(
        Path(training.output_dir).glob("checkpoint-*")
    )
    trainer.train(resume_from_checkpoint=True if resume else None)
    if callback.pruned:  # hpo records the trial pruned: nothing more to do
        print(f"pruned: training stopped at step {trainer.state.global_step}")
        return
    print(
        f"done: best checkpoint {trainer.state.best_model_checkpoint}, "
        f"eval_accuracy {trainer.state.best_metric}"
    )


if __name__ == "__main__":
    main()
