"""`hpo search` end to end: the README's main job on the default experiment, for each driver."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpo.cli import main

ROOT = Path(__file__).parents[2]
SPACE = "experiments/spaces/lr_wd.yaml"
# the same without a pruner: a study whose trials must all complete (tests/spaces/lr_wd.yaml)
UNPRUNED_SPACE = "tests/spaces/lr_wd.yaml"
# the default experiment shrunk so a trial takes about a second
SMALL = [
    "-o",
    "model.n_layer=1",
    "-o",
    "model.n_embd=32",
    "-o",
    "model.n_head=2",
    "-o",
    "data.max_chars=200000",
    "-o",
    "eval.max_eval_batches=2",
    "-o",
    "eval.sample_tokens=0",
    "-o",
    "eval.eval_steps=4",
]


@pytest.fixture(autouse=True)
def in_project(monkeypatch):
    monkeypatch.chdir(ROOT)


def search(tmp_path, *args: str, space: str = SPACE) -> int:
    # MLflow tracking has its own tests (tests/hpo/test_tracking*.py); here it would only add time
    return main(
        ["search", "--space", space, "--runs", str(tmp_path), "--quiet", "--no-track", *args]
    )


@pytest.mark.parametrize(
    "driver", ["optuna", "random", "bo", pytest.param("ray", marks=pytest.mark.service)]
)
@pytest.mark.slow
def test_search_on_the_default_experiment_writes_the_study_layout(driver, tmp_path, capsys):
    assert (
        search(
            tmp_path,
            "--driver",
            driver,
            "--study",
            "s",
            "--trials",
            "3",
            "--max-steps",
            "8",
            *SMALL,
            space=UNPRUNED_SPACE,
        )
        == 0
    )
    study = tmp_path / "s"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["driver"] == driver and summary["n_trials"]["complete"] == 3
    assert summary["objective"] == {"metric": "val_loss", "direction": "minimize"}
    assert set(summary["best_params"]) == {"train.learning_rate", "train.weight_decay"}
    assert summary["total_steps"] == 24 and summary["wall_seconds"] > 0
    best = summary["best_trial"]
    trial_result = json.loads((study / "trials" / str(best) / "result.json").read_text())
    assert summary["best_value"] == trial_result["best_value"]
    # best/ holds the winner's best checkpoint (its best evaluation, not its last) and config
    assert (study / "best" / "best.pt").exists()
    config = yaml.safe_load((study / "best" / "config.yaml").read_text())
    assert config["train"]["learning_rate"] == summary["best_params"]["train.learning_rate"]
    assert config["train"]["max_steps"] == 8
    history = (study / "history.csv").read_text().splitlines()
    assert history[0] == "trial,state,value,best_so_far" and len(history) == 4
    assert float(history[-1].split(",")[-1]) == summary["best_value"]
    best_params = yaml.safe_load((study / "best_params.yaml").read_text())
    assert best_params["train"]["weight_decay"] == summary["best_params"]["train.weight_decay"]
    capsys.readouterr()
    assert main(["best", "s", "--runs", str(tmp_path)]) == 0
    assert f"best trial {best}" in capsys.readouterr().out
    assert main(["status", "s", "--runs", str(tmp_path)]) == 0
    assert "complete    3" in capsys.readouterr().out


@pytest.mark.slow
def test_the_winner_retrains_from_its_best_config(tmp_path):
    assert search(tmp_path, "--study", "w", "--trials", "2", "--max-steps", "4", *SMALL) == 0
    out = tmp_path / "retrained"
    assert (
        main(
            [
                "train",
                "--quiet",
                "--config",
                str(tmp_path / "w" / "best" / "config.yaml"),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads((out / "result.json").read_text())["steps"] == 4


@pytest.mark.slow
def test_parallel_trials_each_run_in_their_own_process(tmp_path):
    assert (
        search(
            tmp_path, "--study", "p", "--trials", "4", "--parallel", "2", "--max-steps", "4", *SMALL
        )
        == 0
    )
    trials = sorted((tmp_path / "p" / "trials").iterdir())
    assert len(trials) == 4
    assert all((t / "output.log").exists() for t in trials), "worker output goes to the trial"


def test_a_plain_function_objective_is_searched_instead_of_the_runner(tmp_path):
    assert (
        search(
            tmp_path,
            "--study",
            "f",
            "--trials",
            "12",
            "--objective",
            "tests.hpo.search_objectives:quadratic",
        )
        == 0
    )
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert summary["best_value"] < 0.3


def test_every_trial_failing_exits_non_zero_with_the_first_reason(tmp_path, capsys):
    code = search(
        tmp_path,
        "--study",
        "x",
        "--trials",
        "2",
        "--objective",
        "tests.hpo.search_objectives:always_fails",
    )
    assert code == 1
    assert "every trial failed; the first: " in capsys.readouterr().err


def test_a_bad_space_is_one_line_exit_2_and_starts_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"experiment: {ROOT / 'experiments/lm_tiny.yaml'}\n"
        "objective: {metric: val_loss, direction: minimize}\n"
        "params:\n  train.learnig_rate: {type: float, low: 1e-5, high: 1e-2, log: true}\n"
    )
    assert main(["search", "--space", str(bad), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.learnig_rate" in err[0] and "train.learning_rate" in err[0]
    assert not (tmp_path / "runs").exists()


def test_hpo_help_answers_without_importing_torch():
    code = (
        "import sys; from hpo.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'optuna' not in sys.modules, 'heavy import'"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.slow
def test_median_pruner_stops_real_trials_with_worse_learning_curves(tmp_path):
    space = tmp_path / "prune.yaml"
    space.write_text(
        f"experiment: {ROOT / 'experiments/lm_tiny.yaml'}\n"
        "objective: {metric: val_loss, direction: minimize}\n"
        "driver: {seed: 0, optuna: {sampler: random, pruner: median, pruner_startup_trials: 2}}\n"
        "params:\n  train.learning_rate: {type: float, low: 1e-6, high: 1e-2, log: true}\n"
    )
    # two good runs set the median; then learning rates far too small to learn in 12 steps
    enqueue = tmp_path / "enqueue.yaml"
    enqueue.write_text(
        "- {train.learning_rate: 5.0e-3}\n- {train.learning_rate: 4.0e-3}\n"
        "- {train.learning_rate: 1.0e-6}\n- {train.learning_rate: 2.0e-6}\n"
    )
    assert (
        main(
            [
                "search",
                "--space",
                str(space),
                "--runs",
                str(tmp_path),
                "--quiet",
                "--no-track",
                "--study",
                "pr",
                "--trials",
                "4",
                "--max-steps",
                "12",
                "--enqueue",
                str(enqueue),
                *SMALL,
            ]
        )
        == 0
    )
    trials = {
        n: json.loads((tmp_path / "pr" / "trials" / str(n) / "trial.json").read_text())
        for n in range(4)
    }
    assert [trials[n]["state"] for n in range(4)] == ["complete", "complete", "pruned", "pruned"]
    for n in (2, 3):
        result = json.loads((tmp_path / "pr" / "trials" / str(n) / "result.json").read_text())
        assert result["status"] == "pruned" and result["steps"] < 12


@pytest.mark.service
def test_a_search_against_a_real_mlflow_server_tracks_and_registers_the_winner(
    tmp_path, monkeypatch
):
    import mlflow
    from mlflow.tracking import MlflowClient
    from mlflow_server import shared_server

    server = shared_server()
    assert (
        main(
            [
                "search",
                "--space",
                SPACE,
                "--runs",
                str(tmp_path),
                "--quiet",
                "--study",
                "tracked",
                "--trials",
                "2",
                "--max-steps",
                "4",
                "--tracking-uri",
                server.uri,
                "--no-system-metrics",
                *SMALL,
            ]
        )
        == 0
    )
    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("lm_tiny")
    runs = client.search_runs([experiment.experiment_id], "tags.`hpo.study` = 'tracked'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 2
    assert all(r.info.status == "FINISHED" for r in runs)
    for child in children:
        assert "train.learning_rate" in child.data.params
        val = client.get_metric_history(child.info.run_id, "val_loss")
        assert [m.step for m in val] == [4]
        assert [m.step for m in client.get_metric_history(child.info.run_id, "loss")] == [4]
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"summary.json", "study.yaml"} <= artifacts
    versions = client.search_model_versions("name = 'lm_tiny'")
    newest = max(versions, key=lambda v: int(v.version))
    assert newest.tags["hpo.study"] == "tracked"
    # through the environment, not mlflow.set_tracking_uri: that global would outlive the test
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    model = mlflow.pyfunc.load_model(f"models:/lm_tiny/{newest.version}")
    assert model.metadata.flavors["transformers"]["task"] == "text-generation"
    prediction = model.predict(["def main("])  # the text, continued greedily
    assert len(prediction) == 1 and prediction[0].startswith("def main(")
    assert newest.tags["hpo.metric"] == "val_loss"
    # the first lm_tiny version on this server, or a better one, is the champion
    champion = client.get_model_version_by_alias("lm_tiny", "champion")
    assert float(champion.tags["hpo.value"]) <= float(newest.tags["hpo.value"])


@pytest.mark.parametrize("driver", ["optuna", "random", "bo"])
def test_the_first_line_and_summary_say_the_sampler_and_pruner(driver, tmp_path, capsys):
    from hpo.drivers import search_method
    from hpo.drivers.base import StudySpec
    from hpo.methods import method_line
    from hpo.space import load_space

    space_file = tmp_path / "defaults.yaml"  # every driver option left to its default
    space_file.write_text(
        "objective: val_loss\nbudget: {trials: 2}\n"
        "params:\n  train.learning_rate: {type: float, low: 1e-5, high: 1e-2, log: true}\n"
    )
    runs, objective = tmp_path / "runs", "tests.hpo.search_objectives:quadratic"
    argv = ["--space", str(space_file), "--runs", str(runs), "--driver", driver, "--seed", "3"]
    assert main(["search", "--no-track", "--objective", objective, *argv]) == 0

    method = json.loads((runs / "defaults" / "summary.json").read_text())["method"]
    first = capsys.readouterr().err.splitlines()[0]
    where = f"2 trials, 1 at once -> {runs / 'defaults'}"
    assert first == f"study defaults: {method_line(driver, method)}, {where}"
    space = load_space(space_file, driver=driver).with_seed(3)
    assert method == search_method(space, StudySpec.for_space(space, runs=runs))
    assert method["sampler_settings"]["seed"] == 3
    if driver == "optuna":  # which pruner `auto` picks is read from its one place, not copied
        from hpo.suggesters.optuna_pruners import pruner_name, pruner_settings

        # TPE under the auto pruner starts its model after 5 random trials, not Optuna's 10
        assert first.startswith("study defaults: optuna TPE (seed 3, 5 startup trials, ")
        assert method["sampler"] == "tpe" and method["sampler_settings"]["multivariate"]
        assert (method["pruner"], method["pruner_settings"]) == (
            pruner_name(space),
            pruner_settings(space),
        )
        # this space sets no max_steps: the first rung is learnt from the first complete trial
        assert first.endswith(
            "pruner hyperband (first rung at 0.12 of the first complete trial's steps, "
            f"max resource auto, reduction factor 3), {where}"
        )
    else:
        assert method["pruner"] == "none" and first.endswith(f"no pruner, {where}")


def test_the_method_line_names_each_setting():
    from hpo.methods import method, method_line

    tpe = {"seed": 0, "n_startup_trials": 10, "multivariate": True, "group": False}
    assert (
        method_line(
            "optuna", method("tpe", tpe, "median", {"n_startup_trials": 5, "n_warmup_steps": 0})
        )
        == "optuna TPE (seed 0, 10 startup trials, multivariate), "
        "pruner median (5 startup trials, warm-up 0 steps)"
    )
    halving = {"min_resource": 4, "reduction_factor": 3}
    assert (
        method_line("optuna", method("tpe", {"seed": 0}, "successive_halving", halving))
        == "optuna TPE (seed 0), pruner successive halving (first rung at step 4, "
        "reduction factor 3)"
    )
    learnt = {"min_resource_fraction": 0.08, "reduction_factor": 3}
    assert method_line("optuna", method("tpe", {"seed": 0}, "successive_halving", learnt)).endswith(
        "pruner successive halving (first rung at 0.08 of the first complete trial's steps, "
        "reduction factor 3)"
    )
    hyperband = {"max_resource": 52, "reduction_factor": 3}
    assert (
        method_line("ray", method("tpe", {"seed": None}, "hyperband", hyperband))
        == "ray TPE (unseeded), pruner hyperband (max resource 52, reduction factor 3)"
    )
    asha = {"grace_period": 1, "reduction_factor": 3, "max_t": 81}
    assert (
        method_line("ray", method("random", {"seed": 1}, "ray_asha", asha))
        == "ray random (seed 1), pruner Ray's ASHA (grace period 1 steps, reduction factor 3, max 81 steps)"
    )
    assert method_line("random", method("random", {"seed": 1})) == "random (seed 1), no pruner"


def test_ray_searches_with_the_optuna_drivers_sampler_and_pruner_unless_told_otherwise(tmp_path):
    from hpo.drivers import search_method
    from hpo.drivers.base import StudySpec
    from hpo.space import space_from_dict

    def method(driver: str, **options):
        raw = {
            "objective": "val_loss",
            "budget": {"trials": 4, "max_steps": 81},
            "driver": {"seed": 0, "n_startup_trials": 3, **options},
            "params": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        }
        space = space_from_dict(raw, source="s.yaml", driver=driver)
        return search_method(space, StudySpec.for_space(space, runs=tmp_path, parallel=2))

    assert method("ray") == method("optuna")
    assert method("ray", pruner="hyperband") == method("optuna", pruner="hyperband")
    # a space file's optuna: section is the same study's settings (lr_wd.yaml has one)
    section = {"optuna": {"n_startup_trials": 4, "pruner": "percentile", "heartbeat_interval": 9}}
    assert method("ray", **section) == method("optuna", **section)
    assert method("ray", **section)["sampler_settings"]["n_startup_trials"] == 4
    asha = method("ray", ray={"searcher": "random", "scheduler": "asha"})
    assert (asha["sampler"], asha["pruner"]) == ("random", "ray_asha")
    assert asha["pruner_settings"] == {"grace_period": 1, "reduction_factor": 3, "max_t": 81}


def test_python_dash_m_hpo_is_the_hpo_command(tmp_path, monkeypatch, capsys):
    # dvc.yaml runs `python -m hpo`: the same main(), the same one-line refusal and exit code
    import runpy

    missing = tmp_path / "missing.yaml"
    monkeypatch.setattr(sys, "argv", ["hpo", "search", "--space", str(missing)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("hpo", run_name="__main__")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == f"hpo: error: {missing}: space file not found"
