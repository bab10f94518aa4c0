"""runner.outcome: one word for one trial state in result.json and trial.json, old words read."""

from __future__ import annotations

import json
import typing

import hpo.records
from runner.outcome import END_STATES, FINISHED_STATES, TrialState, read_state
from runner.result import TrialResult


def test_result_json_and_trial_json_share_one_vocabulary():
    assert hpo.records.TrialState is TrialState
    assert set(END_STATES) == set(typing.get_args(TrialState)) - {"running"}
    assert set(FINISHED_STATES) == {"complete", "pruned"}
    field = typing.get_type_hints(TrialResult)["status"]
    assert set(typing.get_args(field)) == set(END_STATES)


def test_a_result_json_is_written_with_todays_word(tmp_path):
    TrialResult(status="complete").save(tmp_path / "result.json")
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "complete"
    assert TrialResult.load(tmp_path / "result.json").status == "complete"


def test_a_result_json_of_an_older_version_still_reads(tmp_path):
    # --resume and `hpo evaluate` open folders that older versions wrote: "completed" then
    old = {"status": "completed", "objective": "val_loss", "best_value": 1.5, "steps": 30}
    (tmp_path / "result.json").write_text(json.dumps(old))
    result = TrialResult.load(tmp_path / "result.json")
    assert result.status == "complete" and result.best_value == 1.5 and result.steps == 30
    for word in END_STATES:
        assert read_state(word) == word


def test_a_pruners_decision_says_why_in_trial_jsons_words():
    from runner.outcome import CONTINUE, Decision, pruned_at

    assert pruned_at(40) == Decision(stop=True, reason="pruned at step 40")
    assert not CONTINUE.stop and CONTINUE.reason is None
