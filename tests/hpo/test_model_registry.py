"""The best checkpoint of a real (tiny) study logged as an MLflow transformers model and
registered: it loads back from the registry and predicts what the checkpoint itself predicts;
the champion alias moves only to a better version."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec
from hpo.objective import RunnerObjective
from hpo.space import space_from_dict
from hpo.tracking.model_registry import CHAMPION, REGISTERED_TAG, log_best_model
from runner.errors import UserInputError
from runner.export import load_trained_model
from runner.generate import generate

mlflow = pytest.importorskip("mlflow")

WORDS = "the quick brown fox jumps over a lazy dog while seven wizards judge".split()


def tiny_study(base: Path, task: str) -> Path:
    """runs/<study> of a real one-trial random search that trains a tiny lm or classifier for
    4 steps; made once per test session (under base) and shared by the modules that need it."""
    study_dir = base / f"study-{task}" / "runs" / task
    if (study_dir / "best" / "best.pt").is_file():
        return study_dir
    root = study_dir.parents[1]
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    if task == "lm":
        (root / "corpus.txt").write_text(
            "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(60))
        )
        data = {
            "path": str(root / "corpus.txt"),
            "tokenizer": "char",
            "block_size": 16,
            "min_doc_chars": 1,
        }
    else:
        (root / "labelled").mkdir(exist_ok=True)
        for label, lead in (("pos", "good fine"), ("neg", "bad awful")):
            (root / "labelled" / f"{label}.txt").write_text(
                "\n".join(
                    f"{lead} {' '.join(rng.choice(WORDS) for _ in range(4))}" for _ in range(60)
                )
            )
        data = {
            "path": str(root / "labelled"),
            "tokenizer": "char",
            "max_length": 24,
            "max_tokens_per_batch": 256,
        }
    experiment = {
        "task": task,
        "seed": 0,
        "output_dir": str(root / "unused"),
        "data": data,
        "model": {"n_layer": 1, "n_head": 2, "n_embd": 16},
        "train": {"max_steps": 4, "learning_rate": 1e-2, "logging_steps": 2, "warmup_steps": 1},
        "eval": {"eval_steps": 4, "max_eval_batches": 1, "sample_tokens": 0},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(experiment))
    raw = {
        "objective": "val_loss",
        "budget": {"trials": 1},
        "driver": {"seed": 0},
        "params": {"train.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2}},
    }
    space = space_from_dict(raw, source=f"{task}.yaml", driver="random")
    study = StudySpec.for_space(space, runs=root / "runs", quiet=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPO_CACHE_DIR", str(base / "hpo-cache"))
        result = get_driver("random").run(space, study, RunnerObjective(root / "tiny.yaml"))
    assert result.best is not None, result.first_failure
    return study_dir


def sqlite_store(base: Path, folder: Path) -> tuple:
    """(MlflowClient, experiment id) on a SQLite store in folder (the registry needs a database),
    artifacts in folder/artifacts. The empty database is made once per session and copied:
    creating one runs MLflow's migrations, seconds of CPU each time."""
    from mlflow import MlflowClient

    template = base / "mlflow-template.db"
    if not template.is_file():
        MlflowClient(f"sqlite:///{base / 'mlflow-making.db'}").search_experiments()
        (base / "mlflow-making.db").rename(template)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, folder / "mlflow.db")
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment("tiny", artifact_location=str(folder / "artifacts"))
    return client, experiment


def copy_study(study_dir: Path, to: Path, name: str) -> Path:
    """The same trials under another study name (a second study, without training again)."""
    copy = shutil.copytree(study_dir, to / name)
    settings = yaml.safe_load((copy / "study.yaml").read_text())
    (copy / "study.yaml").write_text(yaml.safe_dump({**settings, "study": name}))
    return copy


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An MlflowClient on a SQLite store (the registry needs a database), also set as the global
    tracking URI that models:/ URIs resolve against. One per module: creating one takes seconds."""
    client, experiment = sqlite_store(
        tmp_path_factory.getbasetemp(), tmp_path_factory.mktemp("mlflow")
    )
    # get_tracking_uri() of an unset URI is the default resolved against the cwd: restoring
    # that would pin it for every later test, so an unset URI is restored as unset
    before = mlflow.get_tracking_uri() if mlflow.tracking.is_tracking_uri_set() else None
    env = os.environ.get("MLFLOW_TRACKING_URI")  # set_tracking_uri sets it too
    mlflow.set_tracking_uri(client.tracking_uri)
    yield client, experiment
    mlflow.set_tracking_uri(before)
    if env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = env


def parent_run(client, experiment: str, status: str = "FINISHED") -> str:
    run_id = client.create_run(experiment, run_name="study").info.run_id
    client.set_terminated(run_id, status)
    return run_id


@pytest.fixture(scope="module")
def lm_study(tmp_path_factory):
    return tiny_study(tmp_path_factory.getbasetemp(), "lm")


def test_registered_lm_is_a_transformers_model_that_continues_text_as_the_checkpoint_does(
    store, lm_study
):
    client, experiment = store
    run_id = parent_run(client, experiment, status="KILLED")
    version = log_best_model(client, run_id, lm_study)

    assert (version.name, str(version.version)) == ("tiny", "1")  # named after the experiment
    assert version.tags["hpo.study"] == "lm" and version.tags["hpo.trial"] == "0"
    assert (version.tags["hpo.metric"], version.tags["hpo.direction"]) == ("val_loss", "minimize")
    assert client.get_run(run_id).data.tags[REGISTERED_TAG] == "tiny/1"
    assert client.get_run(run_id).info.status == "KILLED"  # logging a model does not reopen it
    assert client.get_registered_model("tiny").aliases == {CHAMPION: 1}  # the first: champion
    logged_model = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged_model.experiment_id == experiment  # the run's, not the active one
    assert "best/config.yaml" in {a.path for a in client.list_artifacts(run_id, "best")}

    # MLflow's transformers flavor, tokenizer included: what a Hugging Face user loads
    info = mlflow.models.get_model_info(f"models:/tiny@{CHAMPION}")
    assert "transformers" in info.flavors
    parts = mlflow.transformers.load_model(f"models:/tiny@{CHAMPION}", return_type="components")
    net, tokenizer, config = load_trained_model(lm_study / "best" / "best.pt")
    assert parts["task"] == "text-generation"
    assert parts["tokenizer"]("the quick")["input_ids"] == tokenizer.encode("the quick")

    # the pipeline continues text greedily as the checkpoint does; the model's 16 positions
    # hold prompt and continuation (GPT-2 has no positions beyond block_size)
    pipe = mlflow.transformers.load_model(f"models:/tiny@{CHAMPION}")
    prompts = ["the q", "a la"]
    model = mlflow.pyfunc.load_model(f"models:/tiny@{CHAMPION}")
    answers = model.predict(prompts, params={"max_new_tokens": 5})
    for prompt, answer in zip(prompts, answers, strict=True):
        ids = generate(net, tokenizer.encode(prompt), 5, config.data.block_size, greedy=True)
        continued = pipe(prompt, max_new_tokens=5, do_sample=False, return_full_text=False)
        assert continued[0]["generated_text"] == tokenizer.decode(ids)
        # MLflow's pyfunc gives the whole text, its trailing spaces stripped
        assert answer == (prompt + tokenizer.decode(ids)).rstrip()


@pytest.mark.slow
def test_the_champion_alias_moves_only_to_a_version_that_beats_it(store, lm_study, tmp_path):
    client, experiment = store
    value = json.loads((lm_study / "best" / "trial.json").read_text())["value"]

    def study_with(name, value, direction="minimize"):
        copy = copy_study(lm_study, tmp_path, name)
        trial = json.loads((copy / "best" / "trial.json").read_text())
        (copy / "best" / "trial.json").write_text(json.dumps({**trial, "value": value}))
        settings = yaml.safe_load((copy / "study.yaml").read_text())
        settings["space"]["objective"]["direction"] = direction
        (copy / "study.yaml").write_text(yaml.safe_dump(settings))
        return copy

    def champion():
        return str(client.get_registered_model("lm-best").aliases.get(CHAMPION))

    def register(study_dir):
        return str(
            log_best_model(client, parent_run(client, experiment), study_dir, "lm-best").version
        )

    assert (register(lm_study), champion()) == ("1", "1")  # the first version: champion
    # a larger val_loss (the study minimizes it): registered, not promoted
    assert (register(study_with("worse", value + 1)), champion()) == ("2", "1")
    assert (register(study_with("better", value - 1)), champion()) == ("3", "3")
    # chosen on another direction: it cannot be compared, the champion stays
    assert (register(study_with("other", value - 5, "maximize")), champion()) == ("4", "3")


def test_each_study_adds_a_version_and_logging_a_study_again_returns_its_version(
    store, lm_study, tmp_path
):
    client, experiment = store
    first, second = parent_run(client, experiment), parent_run(client, experiment)
    other = copy_study(lm_study, tmp_path, "lm_again")

    v1 = log_best_model(client, first, lm_study, registered_name="lm-twice")
    v2 = log_best_model(client, second, other, registered_name="lm-twice")
    again = log_best_model(client, first, lm_study, registered_name="lm-twice")

    assert [str(v.version) for v in (v1, v2, again)] == ["1", "2", "1"]
    assert client.get_model_version("lm-twice", "2").tags["hpo.study"] == "lm_again"
    assert len(client.search_model_versions("name = 'lm-twice'")) == 2


def test_registered_classifier_predicts_the_label_the_checkpoint_gives(store, tmp_path_factory):
    import pandas as pd

    client, experiment = store
    study_dir = tiny_study(tmp_path_factory.getbasetemp(), "classify")
    version = log_best_model(client, parent_run(client, experiment), study_dir, "sentiment")
    model = mlflow.pyfunc.load_model(f"models:/sentiment/{version.version}")
    texts = ["good fine fox", "bad awful dog jumps over the lazy fox"]  # the second is cut
    out = model.predict(pd.DataFrame({"text": texts}))

    net, tokenizer, config = load_trained_model(study_dir / "best" / "best.pt")
    longest = config.data.max_length - 2  # as the runner encodes: [cls] tokens [sep]
    for text, label, score in zip(texts, out["label"], out["score"], strict=True):
        ids = torch.tensor(
            [[tokenizer.cls_id, *tokenizer.encode(text)[:longest], tokenizer.sep_id]]
        )
        with torch.inference_mode():
            probs = net(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.softmax(-1)[0]
        assert label == net.config.id2label[int(probs.argmax())]
        assert score == pytest.approx(float(probs.max()), abs=1e-5)


def test_a_study_without_a_best_checkpoint_is_a_user_error_naming_the_file(store, tmp_path):
    client, experiment = store
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="best.pt"):
        log_best_model(client, parent_run(client, experiment), tmp_path / "empty")


def test_a_command_studys_checkpoint_folder_is_registered_as_artifacts(store, tmp_path):
    """Command trials: no model the runner loads, so the script's own files are registered."""
    import shlex
    import sys

    from hpo.validation import check_search

    client, experiment = store
    script = Path(__file__).with_name("command_script.py")
    raw = {
        "command": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} --lr {{lr}} "
        "--steps 2 --checkpoint best",
        "budget": {"trials": 1},
        "params": {"lr": 1e-3},
    }
    space = space_from_dict(raw, source="cmd.yaml", driver="random")
    study = StudySpec.for_space(space, name="cmd", runs=tmp_path / "runs", quiet=True)
    get_driver("random").run(space, study, check_search(space, track=False), None)

    run_id = parent_run(client, experiment)
    version = log_best_model(client, run_id, study.dir, registered_name="cmd-best")
    assert version.tags["hpo.study"] == "cmd" and version.tags["hpo.trial"] == "0"
    assert client.get_run(run_id).data.tags[REGISTERED_TAG] == "cmd-best/1"
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/cmd-best/{version.version}"))
    assert (folder / "model.txt").read_text() == "2 0.5\n"  # the script's file, step 2


def test_a_multitask_best_is_registered_under_the_experiments_name_as_its_files(
    store, lm_study, tmp_path
):
    """A multitask model has no transformers pipeline: best.pt and config.yaml are registered
    as artifacts, under the run's experiment name like any study's model (the loop over those
    two files once renamed the registered model "config.yaml")."""
    client, experiment = store
    copy = copy_study(lm_study, tmp_path, "multi")
    trained = yaml.safe_load((copy / "best" / "config.yaml").read_text())
    (copy / "best" / "config.yaml").write_text(yaml.safe_dump({**trained, "task": "multitask"}))

    version = log_best_model(client, parent_run(client, experiment), copy)
    assert version.name == client.get_experiment(experiment).name == "tiny"
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/tiny/{version.version}"))
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "config.yaml"]
    assert (folder / "best.pt").read_bytes() == (copy / "best" / "best.pt").read_bytes()
