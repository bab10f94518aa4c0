"""hpo.integrations.transformers.HpoCallback with a real transformers Trainer.

Fast: a tiny BERT (the example's, built in a temp folder) trains a few steps in this process,
in the environment a command trial gets (the channel's files in a temp folder): what the
callback writes to the channel, and where a prune mark stops training. Slow: the shipped
example searched end to end by `hpo search` (pruning, MLflow child runs, the promoted and
registered best checkpoint).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from hpo import command_client

transformers = pytest.importorskip("transformers")

from hpo.integrations.transformers import HpoCallback  # noqa: E402

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "experiments" / "examples" / "trainer_sequence_classification.py"


def load_example():
    spec = importlib.util.spec_from_file_location("trainer_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example's module and its tiny base model, built once for this module."""
    module = load_example()
    base = tmp_path_factory.mktemp("trainer") / "base_model"
    module.build_base_model(base)
    return module, base


@pytest.fixture
def trial_env(tmp_path, monkeypatch):
    """The environment of a command trial (hpo.command_trial sets the same variables), and a
    fresh channel: the client opens its files once per process."""
    trial = tmp_path / "trials" / "0"
    trial.mkdir(parents=True)
    env = {
        "HPO_TRIAL_DIR": str(trial),
        "HPO_TRIAL_NUMBER": "0",
        "HPO_STUDY": "s",
        "HPO_TRIAL_PARAMS": json.dumps({"learning_rate": 3e-3}),
        command_client.REPORT_FILE_ENV: str(trial / "reports.jsonl"),
        command_client.PRUNE_FILE_ENV: str(trial / "pruned"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(command_client, "_channel", command_client._Channel())
    return trial


def train(example, out: Path, callbacks, steps=8):
    module, base = example
    import torch

    torch.set_num_threads(1)
    tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(base)
    model = transformers.BertForSequenceClassification.from_pretrained(base)
    args = transformers.TrainingArguments(
        output_dir=str(out / "trainer"),
        learning_rate=3e-3,
        max_steps=steps,
        per_device_train_batch_size=8,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        report_to="none",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=module.Encoded(tokenizer, module.sentences(32, seed=1)),
        eval_dataset=module.Encoded(tokenizer, module.sentences(16, seed=2)),
        compute_metrics=module.accuracy,
        callbacks=callbacks,
    )
    trainer.train()
    return trainer


class PruneAt(transformers.TrainerCallback):
    """Stands for the search: creates the prune mark at the evaluation of `step`."""

    def __init__(self, mark: Path, step: int) -> None:
        self.mark, self.step = mark, step

    def on_evaluate(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.mark.touch()


def channel(trial: Path) -> list[dict]:
    return [json.loads(line) for line in (trial / "reports.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("mark_first", "stopped_at"),
    [(True, 4), (False, 5)],
    ids=["mark-before-the-evaluate-stops-there", "mark-after-it-stops-at-the-next-step"],
)
@pytest.mark.slow
def test_reports_with_trainers_names_and_a_prune_mark_stops_training(
    example, trial_env, mark_first, stopped_at
):
    hpo_callback = HpoCallback()
    prune = PruneAt(trial_env / "pruned", step=4)
    callbacks = [prune, hpo_callback] if mark_first else [hpo_callback, prune]
    trainer = train(example, trial_env, callbacks, steps=8)

    lines = channel(trial_env)
    reports = [line for line in lines if "step" in line]
    assert [r["step"] for r in reports] == [2, 4], "each evaluation, none after the pruning"
    for report in reports:
        assert {"eval_loss", "eval_accuracy", "epoch"} <= set(report)
        assert not any(name.endswith("_runtime") for name in report), "no timing figures"
    assert {"stops_itself": True} in lines, "the search is told the script stops itself"
    assert hpo_callback.pruned and trainer.state.global_step == stopped_at
    named = [line["checkpoint"] for line in lines if "checkpoint" in line]
    assert named and named[-1] == trainer.state.best_model_checkpoint
    assert (Path(named[-1]) / "model.safetensors").is_file()


def test_outside_a_trial_the_callback_does_nothing(monkeypatch, tmp_path):
    for name in (command_client.REPORT_FILE_ENV, command_client.PRUNE_FILE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(command_client, "_channel", command_client._Channel())
    monkeypatch.chdir(tmp_path)
    state = transformers.TrainerState(global_step=3, best_model_checkpoint=str(tmp_path))
    control = transformers.TrainerControl()
    callback = HpoCallback()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even hpo.report's "not in a command trial"
        callback.on_evaluate(None, state, control, metrics={"eval_loss": 0.5})
        callback.on_step_end(None, state, control)
        callback.on_save(None, state, control)
        callback.on_train_end(None, state, control)
    assert not control.should_training_stop and not callback.pruned
    assert list(tmp_path.iterdir()) == []


def test_import_hpo_and_its_integrations_package_import_no_transformers():
    code = (
        "import sys, hpo, hpo.integrations\n"
        "print([m for m in ('transformers', 'torch') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_the_example_searched_end_to_end_prunes_tracks_and_promotes(tmp_path):
    """hpo search on the shipped space, as the README runs it: a good learning rate first, a
    bad one second (enqueued), which the median pruner stops at its first evaluation."""
    mlflow = pytest.importorskip("mlflow")
    enqueue = tmp_path / "enqueue.yaml"
    enqueue.write_text(
        "- {learning_rate: 0.005, weight_decay: 0.01}\n- {learning_rate: 0.0001, weight_decay: 0}\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    space = "experiments/examples/trainer_space.yaml"
    command = [sys.executable, "-m", "hpo", "search", "--space", space, "--trials", "2"]
    command += ["--runs", str(tmp_path / "runs"), "--enqueue", str(enqueue), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    study = tmp_path / "runs" / "trainer_space"
    good, bad = (json.loads((study / "trials" / n / "trial.json").read_text()) for n in "01")
    assert good["state"] == "complete" and good["steps"] == 40
    assert bad["state"] == "pruned" and bad["reason"] == "pruned at step 5"
    bad_lines = channel(study / "trials" / "1")
    assert {"stops_itself": True} in bad_lines
    assert [line["step"] for line in bad_lines if "step" in line] == [5], "stopped, not killed"
    assert "pruned: training stopped at step" in (study / "trials" / "1" / "output.log").read_text()

    good_lines = channel(study / "trials" / "0")
    accuracies = [line["eval_accuracy"] for line in good_lines if "step" in line]
    assert good["value"] == max(accuracies) > 0.5
    best = study / "best" / "best"  # Trainer's best checkpoint, loadable alone
    state = json.loads((best / "trainer_state.json").read_text())
    assert state["best_metric"] == good["value"]
    model = transformers.BertForSequenceClassification.from_pretrained(best)
    assert model.config.num_labels == 2
    transformers.PreTrainedTokenizerFast.from_pretrained(best)

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("trainer_space")
    children = client.search_runs([experiment.experiment_id], "tags.`hpo.trial` != ''")
    assert sorted(run.data.tags["hpo.trial"] for run in children) == ["0", "1"]
    history = client.get_metric_history(
        next(r for r in children if r.data.tags["hpo.trial"] == "0").info.run_id, "eval_accuracy"
    )
    assert [m.step for m in history] == list(range(5, 45, 5))
    version = client.get_model_version("trainer_space", "1")
    assert version.tags["hpo.trial"] == "0"
