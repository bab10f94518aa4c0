"""Quick, in-process tests of the Ray driver's parts that need no cluster: trial numbers, the
space in Ray's terms, the schedulers built from the options and the driver-side events'
budget (bayes_opt's coordinates, which searcher bayesopt shares with --driver bo, are tested in
test_drivers_bo.py). The driver itself is tested on a real local cluster (test_ray_driver.py,
a service test); these keep its modules in the quick loop (scripts/quick_loop_modules.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from hpo.drivers.ray_tune.domains import grid_values, ray_domain, trial_params  # noqa: E402
from hpo.drivers.ray_tune.events import StudyEvents, live_events, live_study  # noqa: E402
from hpo.drivers.ray_tune.experiments import _scheduler  # noqa: E402
from hpo.drivers.ray_tune.trial_numbers import (  # noqa: E402
    TrialName,
    next_free_number,
    reserve_number,
    trial_dirname,
)


class RayTrial:
    """What TrialName reads of a Ray trial: its config."""

    def __init__(self, config):
        self.config = config


def test_a_trial_number_is_taken_by_creating_its_folder_so_none_is_used_twice(tmp_path):
    study = tmp_path / "s"
    assert next_free_number(study) == 0  # no trials/ yet
    (study / "trials" / "0").mkdir(parents=True)
    (study / "trials" / "2").mkdir()
    (study / "trials" / "notes").mkdir()  # not a trial
    assert next_free_number(study) == 3
    assert [reserve_number(study), reserve_number(study)] == [3, 4]
    assert sorted(p.name for p in (study / "trials").iterdir()) == ["0", "2", "3", "4", "notes"]
    name = TrialName(str(study))
    assert name(RayTrial({"hpo_trial": 7})) == "7"  # the searcher's own choice
    assert name(RayTrial({})) == "5"  # else the next free folder, reserved
    assert trial_dirname(5) == "trial_5"


def test_the_space_in_rays_terms_keeps_bounds_steps_and_choices(make_space):
    space = make_space(
        "ray",
        params={
            "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
            "layers": {"type": "int", "low": 1, "high": 4},
            "width": {"type": "int", "low": 3, "high": 12, "step": 3},
            "act": {"type": "categorical", "choices": ["relu", "gelu"]},
        },
    )
    domains = {p.name: ray_domain(p.distribution) for p in space.searched}
    for _ in range(50):
        assert 1e-5 <= domains["lr"].sample() <= 1e-1
        assert 1 <= domains["layers"].sample() <= 4
        assert domains["width"].sample() in (3, 6, 9, 12)
        assert domains["act"].sample() in ("relu", "gelu")
    by_name = {p.name: p.distribution for p in space.searched}
    assert grid_values(by_name["width"]) == [3, 6, 9, 12]
    assert grid_values(by_name["lr"]) == []  # continuous: no grid
    # PBT perturbs past the bounds: a trial runs with its params put back in the space
    back = trial_params(space, {"lr": 5.0, "layers": 9, "width": 7, "act": "gelu"})
    assert back == {"lr": 1e-1, "layers": 4, "width": 6, "act": "gelu"}


def test_each_scheduler_option_builds_rays_scheduler_on_the_step_axis():
    from ray.tune import schedulers

    from hpo.space import space_from_dict

    expected = {
        "none": type(None),
        "asha": schedulers.ASHAScheduler,
        "hyperband": schedulers.HyperBandScheduler,
        "median": schedulers.MedianStoppingRule,
        "pbt": schedulers.PopulationBasedTraining,
    }
    for name, kind in expected.items():
        raw = {
            "objective": "val_loss",
            "budget": {"trials": 4, "max_steps": 40},
            "driver": {"seed": 0, "searcher": "random", "scheduler": name},
            "params": {"lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}},
        }
        scheduler = _scheduler(space_from_dict(raw, source="s.yaml", driver="ray"))
        assert isinstance(scheduler, kind), name
        if scheduler is not None:
            assert scheduler._time_attr == "step", name


def test_the_driver_side_events_count_the_earlier_trials_toward_the_budget(make_space, tmp_path):
    from hpo.drivers.base import NullTracker, StudySpec, TrialRecord
    from hpo.trial_book import TrialBook

    def study_events(previous):  # the book the driver keeps the trials in, as RayDriver.run
        return StudyEvents(TrialBook(space, study, NullTracker(), previous), previous)

    space = make_space("ray", trials=2)
    study = StudySpec.for_space(space, name="s", runs=tmp_path / "runs")
    previous = [
        TrialRecord(0, {"lr": 0.01, "y": 0.1}, "complete", values=[1.0], steps=1),
        TrialRecord(1, {"lr": 0.02, "y": 0.2}, "interrupted", steps=1),
    ]
    events = study_events(previous)
    assert events.settled == {0} and set(events.book.interrupted) == {1}
    assert events.start(0, {"lr": 0.01, "y": 0.1}) is None, "a settled trial is not started again"
    assert events.book.why_stop() is None  # one of two trials finished, no stop asked
    assert live_events(events.key) is None
    with live_study(events):  # what Ray's callback and searcher reach while a fit runs
        assert live_events(events.key) is events
    assert live_events(events.key) is None
    another = TrialRecord(2, {"lr": 0.03, "y": 0.3}, "complete", values=[2.0], steps=1)
    done = study_events([*previous, another])
    assert done.book.why_stop() == "budget"


def test_ray_trials_end_in_the_book_the_local_loop_keeps(make_space, tmp_path):
    import json

    from hpo.drivers.base import NullTracker, StudySpec, TrialRecord
    from hpo.study import load_trials
    from hpo.trial_book import TrialBook

    space = make_space("ray", trials=4)
    study = StudySpec.for_space(space, name="s", runs=tmp_path / "runs")
    previous = [TrialRecord(0, {"lr": 0.01, "y": 0.1}, "interrupted", steps=3, duration=2.0)]
    events = StudyEvents(TrialBook(space, study, NullTracker(), previous), previous)
    params = {"lr": 0.01, "y": 0.1}
    continued = events.start(0, params)  # an interrupted trial Tune runs again
    assert continued.record.steps == 3 and continued.resumes  # its earlier steps count
    reports = json.dumps([[4, {"val_loss": 0.7}], [5, {"val_loss": 0.6}]])
    events.result(0, params, {"val_loss": 0.6, "hpo_reports": reports})
    done = {"hpo_state": "complete", "hpo_values": json.dumps({"val_loss": 0.5})}
    events.end(0, params, done, None)
    events.end(1, params, {}, "ValueError: boom")
    events.end(2, params, {}, None)  # Ray ended it before it returned: pruned, scheduler auto
    ended = {r.number: r for r in load_trials(study.dir)}
    assert (ended[0].state, ended[0].values, ended[0].steps) == ("complete", [0.5], 5)
    assert ended[0].duration >= 2.0
    assert (ended[1].state, ended[1].reason) == ("failed", "ValueError: boom")
    assert (ended[2].state, ended[2].reason) == ("pruned", "pruned at step 0")
    assert events.settled == {0, 1, 2} and events.book.finished == 2 and events.book.failed == 1


def test_each_searcher_is_hpos_own_algorithm_and_a_ray_trial_ends_as_a_local_one(
    make_space, tmp_path
):
    import json

    from hpo.drivers.base import StudySpec
    from hpo.drivers.ray_tune.searchers import _outcome, study_algorithm
    from hpo.suggesters.bayes_opt import BayesOpt
    from hpo.suggesters.optuna_study import OptunaStudy
    from hpo.suggesters.random import RandomDraws

    three = {"x": {"type": "int", "low": 0, "high": 2}}
    kinds = {"random": RandomDraws, "bayesopt": BayesOpt, "optuna": OptunaStudy}
    for searcher, kind in {**kinds, "grid": OptunaStudy}.items():
        space = make_space("ray", three, searcher=searcher)
        study = StudySpec.for_space(space, name=searcher, runs=tmp_path)
        assert isinstance(study_algorithm(space, study, previous=[]), kind), searcher
    # searcher grid: Optuna's grid sampler, every point once, then exhausted
    grid = study_algorithm(space, study, previous=[])
    asked = [grid.ask(n) for n in range(3)]
    assert not grid.report(0, 1, 0.5).stop  # no pruner under searcher grid
    for number in range(3):
        grid.tell(number, "complete", [1.0])
    assert sorted(p["x"] for p in asked) == [0, 1, 2] and grid.ask(3) is None
    # how a Ray trial ended, as the local loop tells it to the algorithm
    objectives = space.objectives
    assert _outcome({}, True, objectives) == ("failed", None)
    assert _outcome({"val_loss": 1.0}, False, objectives) == ("pruned", None)
    done = {"hpo_state": "complete", "hpo_values": json.dumps({"val_loss": 0.5})}
    assert _outcome(done, False, objectives) == ("complete", [0.5])
    nan = {"hpo_state": "complete", "hpo_values": json.dumps({"val_loss": float("nan")})}
    assert _outcome(nan, False, objectives) == ("failed", None)
