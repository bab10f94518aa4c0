"""OptunaSuggester: the ask/tell core of the Optuna driver, run by hpo.parallel.run_study.

An interrupted trial (Ctrl-C, SIGTERM, or left running by a kill -9) is continued as the same
Optuna trial: on file storage (the journal) it stays RUNNING in storage while interrupted, and
--resume reopens it (optuna.trial.Trial(study, trial_id)), so it keeps its number, its params,
its folder and last.pt, and the intermediate values it reported (pruning goes on from them);
no new trial is made for it. We chose this over enqueue_trial because an enqueued copy would
be a new trial number, with a new folder, and the interrupted one would stay failed in the
study's history. On a database shared with other workers a trial whose worker stopped is
failed and queued again with the same params (a new trial, as the heartbeat's retry makes),
since another worker may take it.

A resumed study's sampler is seeded from the seed and the number of trials in storage
(samplers.sampler_seed), so it does not propose the earlier run's configurations again. On a
database, asking within the global budget and queueing trials again is shared_study.py's.

Why this is not an hpo.suggesters Algorithm run by hpo.drivers.algorithm_suggester: there the
caller numbers each trial (its folder's last + 1) and counts finished trials from its own
records; here the storage numbers a trial when it is asked and counts every worker's trials,
so processes sharing a study never take one number. And ask() may answer ASK_LATER (trials
running elsewhere hold the budget) and resume() may decline (a database queues a copy), which
Algorithm.ask and Algorithm.resume cannot say. Under Ray, hpo.suggesters.optuna_study is that
Algorithm, over the same sampler and pruner in memory.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

from hpo.drivers.base import CONTINUE, Decision, StudySpec, Suggestion, TrialRecord
from hpo.drivers.optuna_driver.shared_study import ask_shared, checkpoint_to_continue, queue_again
from hpo.drivers.optuna_driver.storage import (
    RECIPE,
    Heartbeat,
    lock_folder,
    on_database,
    open_storage,
    without_password,
)
from hpo.parallel import ASK_LATER
from hpo.space import SearchSpace
from hpo.study import INTERRUPTED, trial_dir, write_trial
from hpo.suggesters.optuna_pruners import make_pruner, pruner_name
from hpo.suggesters.optuna_samplers import make_sampler, suggest_params
from runner.errors import UserInputError
from runner.outcome import pruned_at

log = logging.getLogger(__name__)


class OptunaSuggester:
    """Asks the Optuna study for params, reports intermediate values, tells outcomes."""

    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        previous: Sequence[TrialRecord],
        recipe: dict[str, Any] | None = None,
    ) -> None:
        import optuna
        import sqlalchemy.exc

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the live view reports trials
        self.optuna, self.space = optuna, space
        self.states = optuna.trial.TrialState
        self.prunes = len(space.objectives) == 1 and pruner_name(space) != "none"
        if self.prunes and space.driver_options["sampler"] == "gp":  # see pruner_name
            log.warning(
                "sampler gp with pruner %s: GPSampler learns only from complete trials and "
                "may propose a pruned trial's params again; pruner: none is usually better",
                pruner_name(space),
            )
        self.shared = on_database(study)
        self.sampler = make_sampler(space, study.parallel, shared=self.shared)
        if study.storage == "memory" and previous:
            raise UserInputError(
                "--storage memory keeps nothing to resume; use the journal default"
            )
        self._folder_lock = lock_folder(study) if self.shared else None
        try:
            self.storage = open_storage(study, space)
            self.study = optuna.create_study(
                storage=self.storage,
                sampler=self.sampler,
                pruner=make_pruner(space),
                study_name=study.name,
                directions=[o.direction for o in space.objectives],
                load_if_exists=True,
            )
        except (
            ValueError,
            ImportError,
            optuna.exceptions.StorageInternalError,
            sqlalchemy.exc.SQLAlchemyError,
        ) as err:
            where = without_password(study.storage) if study.storage else "journal"
            raise UserInputError(f"optuna storage {where}: {err}") from None
        if self.shared:
            self.study_id = self.storage.get_study_id_from_name(study.name)
        names = [o.metric for o in space.objectives]
        if self.study.metric_names != names:  # optuna-dashboard labels its charts with them
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names(names)
        stored = len(self.study.get_trials(deepcopy=False))
        if stored and not self.shared:  # resumed: not the earlier run's random draws again
            self.sampler = make_sampler(space, study.parallel, history=stored)
            self.study.sampler = self.sampler
        if recipe is not None:
            self._store_recipe(study, recipe)
        self.study_dir = study.dir
        self.beats: dict[int, Heartbeat] = {}
        self.continuable: dict[int, int] = {}  # interrupted trial number -> Optuna trial id
        if study.resume:
            self._settle_interrupted(study, previous)
        for params in study.enqueue:
            self.study.enqueue_trial(params, skip_if_exists=True)
        self.reported: dict[int, set[int]] = {}

    def _store_recipe(self, study: StudySpec, recipe: dict[str, Any]) -> None:
        stored = self.study.user_attrs.get(RECIPE)
        for key in ("params", "objective"):
            if isinstance(stored, dict) and stored["space"].get(key) != recipe["space"][key]:
                raise UserInputError(
                    f"{self.space.source}: {key} differ from those of study '{study.name}' in "
                    f"{without_password(study.storage)}; use the same space or another --study NAME"
                )
        self.study.set_user_attr(RECIPE, recipe)
        log.info(
            "other machines join this study with: hpo worker --storage %s --study %s",
            without_password(study.storage),
            study.name,
        )

    def _settle_interrupted(self, study: StudySpec, previous: Sequence[TrialRecord]) -> None:
        on_disk = {r.number: r for r in previous}
        for trial in self.study.get_trials(states=(self.states.RUNNING,)):
            record = on_disk.get(trial.number)
            try:
                if record is not None and record.state == "complete" and record.values:
                    self.study.tell(trial.number, record.values)
                elif record is not None and record.state == "pruned":
                    self.study.tell(trial.number, state=self.states.PRUNED)
                elif not self.shared and record is not None and record.state in CONTINUABLE:
                    self.continuable[trial.number] = trial._trial_id  # resume() reopens it
                elif self.shared and record is not None:  # ours, and this folder is locked: dead
                    self.study.tell(trial.number, state=self.states.FAIL)
                    retry = self.storage.get_heartbeat_stale_trial_callback()
                    if retry is not None:
                        retry(self.study, trial)
                elif not self.shared:
                    if record is None:  # killed between ask and its first trial.json
                        write_trial(
                            study.dir,
                            TrialRecord(trial.number, trial.params, "failed", reason=INTERRUPTED),
                        )
                    self.study.tell(trial.number, state=self.states.FAIL)
            except self.optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker's heartbeat check failed it meanwhile

    def resume(self, record: TrialRecord) -> Suggestion | None:
        """The interrupted trial as the same Optuna trial, still RUNNING in storage."""
        trial_id = self.continuable.pop(record.number, None)
        if trial_id is None:
            return None
        trial = self.optuna.trial.Trial(self.study, trial_id)
        self.reported[record.number] = set(trial._cached_frozen_trial.intermediate_values)
        return Suggestion(record.number, dict(record.params), handle=trial)

    def finished_count(self) -> int:
        done = (self.states.COMPLETE, self.states.PRUNED)
        return len(self.study.get_trials(deepcopy=False, states=done))

    def ask(self) -> Suggestion | str | None:
        if isinstance(self.sampler, self.optuna.samplers.GridSampler):
            if self.sampler.is_exhausted(self.study):
                return None
        if self.shared:
            asked = ask_shared(self.study, self.storage, self.study_id, self.space.budget.trials)
            if asked is None:
                return ASK_LATER
            trial, self.beats[trial.number] = asked
        else:
            trial = self.study.ask()
        self.reported[trial.number] = set()
        # optuna-dashboard shows user attrs: the trial's folder links it back to its files
        trial.set_user_attr(TRIAL_DIR, str(trial_dir(self.study_dir, trial.number).resolve()))
        return Suggestion(
            trial.number,
            self.space.trial_params(suggest_params(trial, self.space)),
            handle=trial,
            resume_checkpoint=(
                checkpoint_to_continue(self.storage, self.study_dir, trial) if self.shared else None
            ),
        )

    def report(self, suggestion: Suggestion, step: int, value: float) -> None:
        steps = self.reported[suggestion.number]
        if self.prunes and step not in steps:  # Optuna keeps the first value of a step
            steps.add(step)
            try:
                suggestion.handle.report(value, step)
            except self.optuna.exceptions.UpdateFinishedTrialError:
                pass  # failed as dead by another worker: tell() says so

    def decide(self, suggestion: Suggestion) -> Decision:
        if self.prunes and suggestion.handle.should_prune():
            return pruned_at(max(self.reported[suggestion.number], default=0))
        return CONTINUE

    def tell(self, suggestion: Suggestion, record: TrialRecord) -> None:
        del self.reported[suggestion.number]
        beat = self.beats.pop(suggestion.number, None)
        if beat is not None:
            beat.stop()
        if record.state == "interrupted":
            self._interrupted(suggestion)
            return
        try:
            self._link_back(suggestion.handle, record)
            if record.state == "complete":
                self.study.tell(suggestion.handle, record.values)
            else:
                state = self.states.PRUNED if record.state == "pruned" else self.states.FAIL
                self.study.tell(suggestion.handle, state=state)
        except self.optuna.exceptions.UpdateFinishedTrialError:
            log.warning(
                "trial %d ended %s, but another worker had failed it as dead (no heartbeat "
                "for grace_period seconds) and queued it again; the study keeps it failed",
                suggestion.number,
                record.state,
            )

    def _link_back(self, trial: Any, record: TrialRecord) -> None:
        """User attrs optuna-dashboard shows: why the trial ended so, and its MLflow run."""
        from hpo.tracking.mlflow_tracker import trial_run_link

        if record.reason:
            trial.set_user_attr("reason", record.reason)
        for key, value in trial_run_link(self.study_dir, record.number).items():
            trial.set_user_attr(key, value)

    def _interrupted(self, suggestion: Suggestion) -> None:
        """File storage: left RUNNING for --resume to continue. A database: failed and queued
        again with the same params (the heartbeat's retry), for whichever worker asks next."""
        if self.shared:
            queue_again(self.study, self.storage, suggestion.handle)


CONTINUABLE = ("running", "interrupted")  # trial.json states --resume continues
TRIAL_DIR = "trial_dir"  # user attr: the trial's folder (absolute)
