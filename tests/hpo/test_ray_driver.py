"""The ray driver's own behaviour: schedulers, PBT on real runner trials, concurrency, failures,
and the optuna driver's sampler and pruner by default (the same trials as --driver optuna).

The common contract (optimum, layout, seeds, conditions, NaN, enqueue, --resume) is in
test_drivers_contract.py, parametrized over every driver, ray included; kill -9 and resume is in
test_drivers_resume.py; a real two-node cluster, and a node lost midway, in test_ray_cluster.py.
One local Ray cluster serves this whole module; the driver joins it.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from pathlib import Path

import pytest
import yaml

from hpo.drivers import get_driver
from hpo.drivers.base import NullTracker, StudySpec, TrialPruned
from hpo.objective import RunnerObjective
from hpo.space import space_from_dict

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.service  # starts a local Ray cluster


@pytest.fixture(scope="module", autouse=True)
def ray_cluster(tmp_path_factory):
    # The same cache folder as the autouse isolated_cache fixture: Ray workers get it from here.
    cache = str(tmp_path_factory.getbasetemp() / "hpo-cache")
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "HPO_CACHE_DIR": cache}
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env}
    )
    yield
    ray.shutdown()


def run(
    tmp_path: Path,
    params: dict,
    objective,
    trials: int,
    parallel: int = 1,
    max_steps: int | None = None,
    tracker=None,
    enqueue=(),
    **ray_options,
):
    raw = {
        "objective": "val_loss",
        "budget": {"trials": trials, "max_steps": max_steps},
        "driver": {"seed": 0, "ray": ray_options},
        "params": params,
    }
    space = space_from_dict(raw, source="ray_test.yaml", driver="ray")
    study = StudySpec.for_space(
        space, runs=tmp_path / "runs", parallel=parallel, quiet=True, enqueue=list(enqueue)
    )
    return get_driver("ray").run(space, study, objective, tracker)


class CallLog(NullTracker):
    """A Tracker that notes every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start_trial(self, number, params):
        self.calls.append(("start", number))

    def log_metrics(self, number, step, metrics):
        self.calls.append(("log", number, step))

    def end_trial(self, record):
        self.calls.append(("end", record.number, record.state))


def learning_curve(params, reporter):
    """val_loss = q + 1/step at steps 3, 9, 27 and 81: a lower q is better at every step."""
    for step in (3, 9, 27, 81):
        reporter.report(step, {"val_loss": params["q"] + 1.0 / step})
    return params["q"] + 1.0 / 81


def test_asha_stops_trials_with_worse_curves_early_and_they_end_pruned(tmp_path):
    # from the best q up: each later trial is worse than every trial before it (enqueued in
    # that order: searcher grid walks Optuna's seeded shuffle of the grid, as --driver optuna)
    q = {"q": {"type": "float", "low": 0.0, "high": 0.7, "step": 0.1}}
    tracker = CallLog()
    result = run(
        tmp_path,
        q,
        learning_curve,
        trials=8,
        max_steps=81,
        enqueue=[{"q": round(0.1 * i, 1)} for i in range(8)],
        searcher="random",
        scheduler="asha",
        grace_period=3,
        tracker=tracker,
    )

    first, *rest = result.trials
    assert (first.params["q"], first.state, first.steps) == (0.0, "complete", 81)
    pruned = [t for t in rest if t.state == "pruned"]
    assert len(pruned) >= 5
    for trial in pruned:
        assert trial.steps < 81 and "asha" in trial.reason
        assert trial.value == pytest.approx(trial.params["q"] + 1.0 / trial.steps)
    assert result.count("complete") + result.count("pruned") == 8 and result.best.number == 0
    # the tracker heard every trial, in order, from this process
    for t in result.trials:
        mine = [c for c in tracker.calls if c[1] == t.number]
        assert mine[0] == ("start", t.number) and mine[-1] == ("end", t.number, t.state)
        assert [c[2] for c in mine[1:-1]] == [3, 9, 27, 81][: len(mine) - 2]
    assert [c[2] for c in tracker.calls if c[:2] == ("log", 0)] == [3, 9, 27, 81]


def crowded(params, reporter):
    """Waits (up to 10 s) until another trial runs too, then holds its slot for half a second."""
    started = time.time()
    (reporter.dir / "started").touch()
    trials = reporter.dir.parent

    def running() -> int:
        return sum(
            1
            for t in trials.iterdir()
            if (t / "started").exists() and not (t / "ran.json").exists()
        )

    while running() < 2 and time.time() < started + 10:
        time.sleep(0.05)
    time.sleep(0.5)
    (reporter.dir / "ran.json").write_text(json.dumps([started, time.time()]))
    return params["y"]


def test_no_more_trials_run_at_once_than_parallel(tmp_path):
    # half a CPU per trial: the cluster has room for 4, --parallel 2 must be the limit
    y = {"y": {"type": "float", "low": 0.0, "high": 1.0}}
    result = run(tmp_path, y, crowded, trials=6, parallel=2, cpus_per_trial=0.5)

    assert result.count("complete") == 6
    spans = [
        json.loads((result.dir / "trials" / str(t.number) / "ran.json").read_text())
        for t in result.trials
    ]
    at_once = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert at_once == 2, spans


def fails(params, reporter):
    """Trial 1 always fails; trial 2 fails on its first attempt only."""
    attempts = reporter.dir / "attempts"
    attempts.write_text(attempts.read_text() + "x" if attempts.exists() else "x")
    if reporter.number == 1:
        raise ValueError("bad data")
    if reporter.number == 2 and attempts.read_text() == "x":
        raise RuntimeError("worker lost")
    return params["y"]


def test_ray_retries_a_failed_trial_and_one_that_keeps_failing_ends_failed(tmp_path):
    y = {"y": {"type": "float", "low": 0.0, "high": 1.0}}
    result = run(tmp_path, y, fails, trials=3, max_failures=1)

    states = {t.number: (t.state, t.reason) for t in result.trials}
    assert states[1] == ("failed", "ValueError: bad data")
    assert states[2] == ("complete", None)
    assert result.count("complete") == 3 and result.stop_reason == "budget"
    trials = result.dir / "trials"
    assert (trials / "1" / "attempts").read_text() == "xx"  # retried once, as max_failures says
    assert (trials / "2" / "attempts").read_text() == "xx"
    assert "ValueError: bad data" in (trials / "1" / "traceback.txt").read_text()


@pytest.fixture
def tiny_experiment(tmp_path) -> Path:
    """A char-level lm with 1 layer of width 32 on 40 kB of text: 30 steps in about a second."""
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog near old river banks".split()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n\n".join(" ".join(rng.choice(words) for _ in range(40)) for _ in range(200))
    )
    experiment = {
        "task": "lm",
        "seed": 0,
        "output_dir": str(tmp_path / "unused"),
        "data": {"path": str(corpus), "tokenizer": "char", "block_size": 32, "min_doc_chars": 1},
        "model": {"n_layer": 1, "n_head": 2, "n_embd": 32},
        "train": {
            "max_steps": 40,
            "per_device_train_batch_size": 8,
            "learning_rate": 3e-3,
            "logging_steps": 5,
            "warmup_steps": 2,
        },
        "eval": {"eval_steps": 10, "max_eval_batches": 2, "sample_tokens": 0},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


@pytest.mark.slow
def test_pbt_exploit_continues_a_trial_from_the_donors_checkpoint(tmp_path, tiny_experiment):
    # Two runner trials, one with a learning rate far too small: PBT makes it clone the other.
    # Room for one trial at a time: PBT takes turns at each evaluation, so the order is fixed.
    lr = {"train.learning_rate": {"type": "categorical", "choices": [1e-2, 1e-6]}}
    objective = RunnerObjective(tiny_experiment, metric="val_loss", max_steps=30)
    result = run(
        tmp_path,
        lr,
        objective,
        trials=2,
        parallel=2,
        max_steps=30,
        searcher="grid",
        scheduler="pbt",
        perturbation_interval=10,
        quantile_fraction=0.5,
        resample_probability=0.0,
        cpus_per_trial=2,
    )

    assert [t.state for t in result.trials] == ["complete", "complete"]
    assert all(t.steps == 30 for t in result.trials)
    exploits = result.dir / "trials" / "1" / "exploits.jsonl"
    assert exploits.is_file(), "the trial with lr 1e-6 never cloned the better one"
    exploit = json.loads(exploits.read_text().splitlines()[0])
    assert exploit["from_trial"] == 0 and exploit["step"] == 20
    assert exploit["params"]["train.learning_rate"] in (1e-2, 1e-6)
    # the runner started again at the donor's step (a resume logs no second data record, so
    # its result.json says where it resumed from)
    result_json = json.loads((result.dir / "trials" / "1" / "result.json").read_text())
    assert result_json["resumed_from_step"] == exploit["step"]


def conditional(params, reporter):
    if ("momentum" in params) != (params["optim"] == "sgd"):
        raise AssertionError(f"momentum with {params['optim']}")
    return params["lr"]


@pytest.mark.parametrize("searcher", ["optuna", "bayesopt"])
def test_model_based_searchers_keep_conditions_and_the_budget(tmp_path, searcher):
    space = {
        "optim": {"type": "categorical", "choices": ["adamw", "sgd"]},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optim": "sgd"}},
    }
    # bayesopt: 2 random trials, then 2 from its Gaussian process (which sees every param)
    result = run(
        tmp_path, space, conditional, trials=4, parallel=2, searcher=searcher, init_points=2
    )
    assert [t.reason for t in result.trials if t.state == "failed"] == []
    assert result.count("complete") == 4 and len(result.trials) == 4
    assert len({t.params["lr"] for t in result.trials}) == 4


# --driver ray tries what --driver optuna tries: the same sampler, seed and pruner
SAME_PARAMS = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "y": {"type": "float", "low": 0.0, "high": 1.0},
    "layers": {"type": "int", "low": 1, "high": 4},
    "optim": {"type": "categorical", "choices": ["adamw", "sgd"]},
    "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optim": "sgd"}},
}


def curve(params, reporter):
    """A learning curve that asks should_stop() after each report, as the runner does."""
    final = (math.log10(params["lr"]) + 3) ** 2 + (params["y"] - 0.3) ** 2 + params["layers"] / 10
    for step in (1, 2, 3, 4):
        reporter.report(step, {"val_loss": final + 1.0 / step})
        if reporter.should_stop():
            raise TrialPruned()
    return final


def search(tmp_path, driver: str, trials: int):
    # only the defaults: a sampler, a pruner and their settings would be the same on both
    raw = {
        "objective": "val_loss",
        "budget": {"trials": trials},
        # 3 random trials, then TPE's own; pruning from the 3rd complete trial on
        "driver": {"seed": 0, "n_startup_trials": 3, "pruner_startup_trials": 2},
        "params": SAME_PARAMS,
    }
    space = space_from_dict(raw, source="same.yaml", driver=driver)
    study = StudySpec.for_space(space, runs=tmp_path / driver, quiet=True)
    return get_driver(driver).run(space, study, curve)


def test_ray_tries_the_same_params_and_prunes_the_same_trials_as_optuna(tmp_path):
    local = search(tmp_path, "optuna", trials=10)
    on_ray = search(tmp_path, "ray", trials=10)

    # one trial at a time: the same TPE, told the same outcomes, proposes the same params
    assert [t.params for t in on_ray.trials] == [t.params for t in local.trials]
    assert [(t.state, t.steps) for t in on_ray.trials] == [(t.state, t.steps) for t in local.trials]
    pruned = [t for t in on_ray.trials if t.state == "pruned"]
    assert pruned, "the default pruner stopped no trial on Ray"
    for trial in pruned:
        assert trial.steps < 4 and trial.reason == f"pruned at step {trial.steps}"
        assert (on_ray.dir / "trials" / str(trial.number) / "prune").is_file()
    assert [t.value for t in on_ray.trials] == pytest.approx([t.value for t in local.trials])
    # and both say so: the same sampler, pruner and settings in summary.json
    local_method, ray_method = (
        json.loads((r.dir / "summary.json").read_text())["method"] for r in (local, on_ray)
    )
    assert ray_method == local_method and ray_method["sampler"] == "tpe"


def test_a_command_trial_runs_on_ray_reports_through_hpo_report_and_asha_stops_the_bad_one(
    tmp_path,
):
    """Command trials (hpo search --command) under --driver ray: the script's hpo.report lines
    reach Ray's scheduler, which stops the worse trial, and its process really ends."""
    from hpo.validation import check_search

    script = Path(__file__).with_name("command_script.py")
    raw = {
        "command": f"{sys.executable} {script} --lr {{lr}} --steps 40 --sleep 0.05",
        "objective": "val_loss",
        "budget": {"trials": 2, "max_steps": 40},
        # the good lr first, so that ASHA has it to compare with (searcher grid now walks
        # Optuna's seeded shuffle of the grid, as --driver optuna does)
        "driver": {
            "seed": 0,
            "ray": {"searcher": "random", "scheduler": "asha", "grace_period": 2},
        },
        # val_loss = (log10(lr) + 3)^2 + 1/step: lr 1e-3 is 4 better than 1e-5 at every step
        "params": {"lr": {"type": "categorical", "choices": [1e-3, 1e-5]}},
    }
    space = space_from_dict(raw, source="ray_command.yaml", driver="ray")
    objective = check_search(space, track=False)
    study = StudySpec.for_space(
        space, runs=tmp_path / "runs", parallel=1, quiet=True, enqueue=[{"lr": 1e-3}, {"lr": 1e-5}]
    )
    result = get_driver("ray").run(space, study, objective, None)

    good, bad = sorted(result.trials, key=lambda t: -t.params["lr"])
    assert (good.params["lr"], good.state, good.steps) == (1e-3, "complete", 40)
    assert good.value == pytest.approx(1 / 40)
    assert bad.state == "pruned" and bad.steps < 40 and "asha" in bad.reason
    assert bad.value == pytest.approx(4 + 1 / bad.steps)
    folder = tmp_path / "runs" / study.name / "trials" / str(bad.number)
    [attempt] = [json.loads(line) for line in (folder / "attempts.jsonl").read_text().splitlines()]
    deadline = time.monotonic() + 10
    while Path(f"/proc/{attempt['pid']}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{attempt['pid']}/stat").read_text()
        if stat.split(") ")[1][0] in "ZX":
            break
        time.sleep(0.1)
    else:
        assert not Path(f"/proc/{attempt['pid']}").exists(), "the stopped trial's script ran on"


# Ray runs hpo's own algorithms: each searcher tries what the local driver running the same
# algorithm tries (--driver random, --driver optuna with sampler grid, --driver bo, optuna)
SAME_ALGORITHM = {
    "random": ("random", {}, {"searcher": "random"}),
    "grid": ("optuna", {"sampler": "grid"}, {"searcher": "grid"}),
    "bayesopt": ("bo", {"init_points": 3}, {"searcher": "bayesopt", "init_points": 3}),
    "optuna": ("optuna", {"n_startup_trials": 3}, {"searcher": "optuna", "n_startup_trials": 3}),
}
GRID_PARAMS = {
    "x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25},
    "layers": {"type": "int", "low": 1, "high": 4},
    "optim": {"type": "categorical", "choices": ["adamw", "sgd"]},
}


def bowl(params, reporter):
    """A plain function: no reports, the value from the params alone."""
    value = sum((v - 0.3) ** 2 for k, v in params.items() if isinstance(v, float))
    return value + params.get("layers", 0) / 10 + (params["optim"] == "sgd") / 5


@pytest.mark.slow
@pytest.mark.parametrize("searcher", list(SAME_ALGORITHM))
def test_each_searcher_tries_the_same_first_configurations_as_the_local_driver(tmp_path, searcher):
    local_driver, local_options, ray_options = SAME_ALGORITHM[searcher]
    params = GRID_PARAMS if searcher == "grid" else SAME_PARAMS
    results = {}
    for driver, options in ((local_driver, local_options), ("ray", {"ray": ray_options})):
        raw = {
            "objective": "val_loss",
            "budget": {"trials": 6},
            "driver": {"seed": 0, **options},
            "params": params,
        }
        space = space_from_dict(raw, source="same_algorithm.yaml", driver=driver)
        study = StudySpec.for_space(space, runs=tmp_path / driver, parallel=1, quiet=True)
        results[driver] = get_driver(driver).run(space, study, bowl)

    local, on_ray = results[local_driver], results["ray"]
    assert [t.number for t in on_ray.trials] == [t.number for t in local.trials] == list(range(6))
    assert [t.params for t in on_ray.trials] == [t.params for t in local.trials]
    assert [t.value for t in on_ray.trials] == pytest.approx([t.value for t in local.trials])
    local_method, ray_method = (
        json.loads((r.dir / "summary.json").read_text())["method"] for r in (local, on_ray)
    )
    assert ray_method["sampler"] == local_method["sampler"]
    assert ray_method["sampler_settings"] == local_method["sampler_settings"]
