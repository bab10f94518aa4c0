"""Command trials (hpo search --command): real processes running tests/hpo/command_script.py.

The script is a user's training script: pure Python, a few steps of a synthetic loss that
depends on the learning rate, reporting with hpo.report or printed `hpo: {...}` lines. Most
studies run in this process through the drivers (no CLI start-up); Ctrl-C and --resume, and
the refusal of a bad placeholder, go through a real `hpo search`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpo.cli import main
from hpo.command_template import TemplateError, check_template, render
from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec
from hpo.space import space_from_dict
from hpo.validation import check_search

ROOT = Path(__file__).parents[2]
SCRIPT = Path(__file__).with_name("command_script.py")
RUN_SCRIPT = f"{shlex.quote(sys.executable)} {shlex.quote(str(SCRIPT))}"
DEADLINE = 120.0
GOOD_LR, BAD_LR = 1e-3, 1e-5  # val_loss at step s: 1/s, and 4 + 1/s


def command_space(
    command: str, params: dict, trials=1, driver="random", objective="val_loss", **options
):
    raw = {
        "command": command,
        "objective": objective,
        "budget": {"trials": trials},
        "driver": {"seed": 0, **options},
        "params": params,
    }
    return space_from_dict(raw, source="command_space.yaml", driver=driver)


def run_study(tmp_path: Path, space, **fields):
    objective = check_search(space, track=False)  # what hpo search checks and runs
    fields.setdefault("quiet", True)
    study = StudySpec.for_space(space, name="s", runs=tmp_path / "runs", **fields)
    return get_driver(space.driver).run(space, study, objective, None)


def reports(trial: Path) -> list[dict]:
    lines = (trial / "reports.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "step" in r]


def attempts(trial: Path) -> list[dict]:
    return [json.loads(line) for line in (trial / "attempts.jsonl").read_text().splitlines()]


def gone(pid: int) -> bool:
    """Whether the process has ended (a zombie not yet reaped has ended too)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except (FileNotFoundError, IndexError):
        return True


def script_env(**channel: str) -> dict[str, str]:
    """A script's environment outside any trial (no HPO_ variable), plus the `channel` given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    return {**env, "PYTHONPATH": str(ROOT), **channel}


def test_values_reach_the_script_quoted_and_never_run_as_shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a `touch pwned` run by the shell would land
    hostile = "; touch pwned && echo $(touch pwned2) `touch pwned3` 'it''s\" a b"
    space = command_space(
        f"{RUN_SCRIPT} --lr {{lr}} --tag {{tag}} --out {{trial_dir}}/{{trial_number}}.out "
        "--steps 3 && touch shell_ran_it_here",
        {"lr": GOOD_LR, "tag": {"type": "categorical", "choices": [hostile]}},
    )
    result = run_study(tmp_path, space)

    trial = tmp_path / "runs" / "s" / "trials" / "0"
    assert not any(p.name.startswith("pwned") for p in tmp_path.rglob("*")), "a value ran"
    [attempt] = attempts(trial)
    assert attempt["argv"][:4] == ["--lr", "0.001", "--tag", hostile]  # one word, as written
    assert attempt["argv"][4:6] == ["--out", f"{trial}/0.out"]
    assert attempt["cwd"] == str(trial) == attempt["HPO_TRIAL_DIR"]
    assert json.loads(attempt["HPO_TRIAL_PARAMS"]) == {"lr": GOOD_LR, "tag": hostile}
    assert (attempt["HPO_TRIAL_NUMBER"], attempt["HPO_STUDY"]) == ("0", "s")
    assert "HPO_RESUME" not in attempt
    # the value is the best val_loss the script reported (the last, here: it falls)
    assert result.best.state == "complete"
    assert result.best.value == min(r["val_loss"] for r in reports(trial)) == pytest.approx(1 / 3)
    assert "step 3 loss" in (trial / "output.log").read_text()
    assert (trial / "shell_ran_it_here").is_file()  # /bin/sh -c, in the trial's folder
    assert json.loads((trial / "command.json").read_text())["command"].startswith(RUN_SCRIPT)


def test_printed_lines_count_as_reports_for_a_script_that_never_imports_hpo(tmp_path):
    space = command_space(
        f"{RUN_SCRIPT} --lr {{lr}} --steps 4 --report print",
        {"lr": {"type": "categorical", "choices": [GOOD_LR, BAD_LR]}},
        trials=2,
    )
    result = run_study(tmp_path, space, enqueue=({"lr": GOOD_LR}, {"lr": BAD_LR}))

    values = {t.params["lr"]: t.value for t in result.trials}
    assert values == {GOOD_LR: pytest.approx(0.25), BAD_LR: pytest.approx(4.25)}
    assert result.best.params["lr"] == GOOD_LR and result.best.steps == 4
    assert not (tmp_path / "runs" / "s" / "trials" / "0" / "reports.jsonl").read_text()


def good_then_bad(tmp_path: Path, flags: str, bad_steps: int):
    """Two trials under Optuna's median pruner: trial 0 (good, 3 steps) sets the median, trial 1
    (bad, `bad_steps` steps) is worse at its first report and is pruned there."""
    space = command_space(
        f"{RUN_SCRIPT} --lr {{lr}} --steps {{steps}} {flags}",
        {
            "lr": {"type": "categorical", "choices": [GOOD_LR, BAD_LR]},
            "steps": {"type": "categorical", "choices": [3, bad_steps]},
        },
        trials=2,
        driver="optuna",
        pruner="median",
        pruner_startup_trials=1,
    )
    good, bad = {"lr": GOOD_LR, "steps": 3}, {"lr": BAD_LR, "steps": bad_steps}
    return run_study(tmp_path, space, enqueue=(good, bad))


@pytest.mark.parametrize("stops_itself", [False, True], ids=["killed", "stops-itself"])
def test_the_pruner_stops_a_bad_trial_and_its_process_really_ends(tmp_path, stops_itself):
    flag = " --stops-itself" if stops_itself else ""
    result = good_then_bad(tmp_path, f"--sleep 0.1{flag}", bad_steps=60)

    trial = tmp_path / "runs" / "s" / "trials" / "1"
    record = result.trials[1]
    assert record.state == "pruned" and record.reason.startswith("pruned at step")
    assert record.duration < 4.0, "the pruned trial ran on (60 steps take 6 s)"
    [attempt] = attempts(trial)
    deadline = time.monotonic() + 10
    while not gone(attempt["pid"]):
        assert time.monotonic() < deadline, "the pruned script is still running"
        time.sleep(0.05)
    seen = len(reports(trial))
    time.sleep(0.3)
    assert len(reports(trial)) == seen < 60, "it reported after it was pruned"
    # a pruned trial's value: the one the pruner stopped it at (what it reported later is not)
    step = int(record.reason.removeprefix("pruned at step "))
    assert record.steps == step == 1
    assert record.value == next(r["val_loss"] for r in reports(trial) if r["step"] == step)
    assert (trial / "pruned").exists()
    assert (trial / "stopped_itself").exists() == stops_itself
    assert result.best.number == 0


@pytest.mark.parametrize("doorbell", [True, False], ids=["doorbell", "no-named-pipes"])
def test_should_prune_right_after_a_report_answers_for_that_report(tmp_path, monkeypatch, doorbell):
    """A script with no pause between steps stops at the very report it was pruned at: its
    should_prune() waits for the search's answer (the answer file) instead of training on
    while the search reads the report. Without the answer it runs dozens of steps further.
    Where no named pipe can be made (the doorbell), the search answers at its next look."""
    if not doorbell:

        def no_named_pipes(path, mode=0o666):
            raise OSError(errno.EPERM, "named pipes are not supported here", path)

        monkeypatch.setattr(os, "mkfifo", no_named_pipes)
    result = good_then_bad(tmp_path, "--stops-itself", bad_steps=2000)

    trial = tmp_path / "runs" / "s" / "trials" / "1"
    woken = [json.loads(line) for line in (trial / "attempts.jsonl").read_text().splitlines()]
    assert ("HPO_WAKE_FILE" in woken[0]) == doorbell
    assert result.trials[1].state == "pruned" and result.trials[1].reason == "pruned at step 1"
    assert (trial / "stopped_itself").read_text() == "1", "it trained past its pruned report"
    assert [r["step"] for r in reports(trial)] == [1]
    assert int((trial / "answered").read_text()) == (trial / "reports.jsonl").stat().st_size
    complete = tmp_path / "runs" / "s" / "trials" / "0"
    assert [r["step"] for r in reports(complete)] == [1, 2, 3]


def test_after_raise_when_pruned_the_pruned_report_itself_raises(tmp_path):
    """hpo.report waits for the search's answer too once raise_when_pruned() was called: the
    report the pruner stopped the trial at raises TrialPruned, not one some steps later."""
    result = good_then_bad(tmp_path, "--raise-when-pruned", bad_steps=2000)

    trial = tmp_path / "runs" / "s" / "trials" / "1"
    assert result.trials[1].state == "pruned" and result.trials[1].reason == "pruned at step 1"
    assert (trial / "raised_at").read_text() == "1", "it reported past its pruned report"
    assert [r["step"] for r in reports(trial)] == [1]
    assert not (tmp_path / "runs" / "s" / "trials" / "0" / "raised_at").exists()


def test_a_search_that_never_answers_is_waited_for_once_then_not_again(tmp_path):
    """The client alone, in a process of its own: an answer file nobody writes (a search that
    died) costs one ANSWER_WAIT and a warning; later reports are not waited for."""
    code = (
        "import time, warnings, hpo, hpo.command_client as client\n"
        "client.ANSWER_WAIT = 0.3\n"
        "hpo.report(1, {'val_loss': 1.0}); start = time.monotonic()\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    first = hpo.should_prune(); waited = time.monotonic() - start\n"
        "    hpo.report(2, {'val_loss': 0.5}); start = time.monotonic()\n"
        "    second = hpo.should_prune(); again = time.monotonic() - start\n"
        "print(first, second, waited >= 0.3, again < 0.1, len(caught))\n"
        "hpo.report(3, {'val_loss': 0.4}); print(hpo.should_prune(wait=False))\n"
    )
    channel = {"REPORT": "reports.jsonl", "PRUNE": "pruned", "ANSWER": "answered"}
    env = script_env(**{f"HPO_{name}_FILE": str(tmp_path / f) for name, f in channel.items()})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "True", "True", "1", "False"]
    steps = [json.loads(line).get("step") for line in (tmp_path / "reports.jsonl").open()]
    assert [s for s in steps if s] == [1, 2, 3]


def test_a_command_that_exits_1_fails_with_its_last_output_lines(tmp_path, capsys):
    space = command_space(f"{RUN_SCRIPT} --lr {{lr}} --steps 5 --fail-at 3", {"lr": GOOD_LR})
    result = run_study(tmp_path, space)

    record = result.trials[0]
    assert record.state == "failed" and record.value is None
    assert "exited with code 1" in record.reason
    assert "diverged at step 3: loss is nan" in record.reason
    assert "Traceback: the last words of the script" in record.reason
    assert main(["status", "s", "--runs", str(tmp_path / "runs"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["trials"][0]["state"] == "failed"
    assert "diverged at step 3" in shown["trials"][0]["reason"]


def test_a_command_that_reports_no_objective_metric_fails_saying_so(tmp_path):
    space = command_space(
        f"{RUN_SCRIPT} --lr {{lr}} --steps 2", {"lr": GOOD_LR}, objective="accuracy"
    )
    result = run_study(tmp_path, space)
    assert result.trials[0].state == "failed"
    assert "reported no 'accuracy'" in result.trials[0].reason


@pytest.mark.parametrize("how", ["best", "reported"])
def test_the_best_trials_checkpoint_is_promoted_to_the_studys_best(tmp_path, how):
    space = command_space(
        f"{RUN_SCRIPT} --lr {{lr}} --steps 3 --checkpoint {how}",
        {"lr": {"type": "categorical", "choices": [BAD_LR, GOOD_LR]}},
        trials=2,
    )
    result = run_study(tmp_path, space, enqueue=({"lr": BAD_LR}, {"lr": GOOD_LR}))

    study = tmp_path / "runs" / "s"
    best = result.best
    assert best.params["lr"] == GOOD_LR
    promoted = study / "best" / "best" / "model.txt"
    assert promoted.read_text() == f"3 {best.value}\n"  # the script's own file, best step
    assert json.loads((study / "best" / "trial.json").read_text())["number"] == best.number
    assert (study / "best" / "command.json").is_file()


def test_an_unknown_placeholder_is_refused_before_any_work(tmp_path, capsys):
    space_file = tmp_path / "s.yaml"
    space_file.write_text(
        f"command: {RUN_SCRIPT} --lr {{lr}} --wd {{train.weight_decay}}\n"
        "budget: {trials: 1}\n"
        "params:\n  lr: {type: float, low: 1.0e-5, high: 1.0e-1, log: true}\n"
    )
    runs = tmp_path / "runs"
    code = main(["search", "--space", str(space_file), "--runs", str(runs), "--no-track"])
    err = capsys.readouterr().err
    assert code == 2 and not runs.exists()
    assert err.startswith(f"hpo: error: {space_file}:1: {{train.weight_decay}} is not a param")
    assert err.rstrip().endswith("(command)")
    assert err.count("\n") == 1

    code = main(
        ["search", "--space", str(space_file), "--command", "echo {nope}", "--runs", str(runs)]
    )
    assert code == 2 and "--command: {nope} is not a param" in capsys.readouterr().err


def test_placeholders_braces_and_values_as_the_shell_reads_them():
    check_template("a {x} {{literal}} ${{HOME}} {trial_dir}", ["x"], None)
    assert render("a {x} {{y}} ${{HOME}}", {"x": "1 2"}) == "a '1 2' {y} ${HOME}"
    assert render("{a} {b} {c} {d}", {"a": 1e-5, "b": True, "c": None, "d": 3}) == (
        "1e-05 true '' 3"
    )
    for bad, why in [
        ("awk '{print $1}'", "{print $1} is not a param"),
        ("echo }", "a lone '}'"),
        ("run {max_steps}", "budget sets no max_steps"),
        ("", "expected the command line"),
    ]:
        with pytest.raises(TemplateError, match=re.escape(why)):
            check_template(bad, ["x"], None)
    check_template("run {max_steps}", [], 100)


def test_import_hpo_imports_nothing_heavy_and_reports_outside_a_trial_warn_once():
    code = (
        "import sys, hpo\n"
        "heavy = [m for m in ('torch', 'optuna', 'ray', 'mlflow', 'numpy') if m in sys.modules]\n"
        "hpo.report(1, {'val_loss': 1.0}); hpo.report(2, {'val_loss': 0.5})\n"
        "hpo.report_checkpoint('x')\n"
        "print(heavy, hpo.should_prune())\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        env=script_env(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] False"
    assert out.stderr.count("not in a command trial") == 1


# ----------------------------------------------------------------------------- Ctrl-C, --resume


def start_search(args: list[str], log: Path) -> subprocess.Popen:
    """`hpo search` in a session of its own, as a terminal runs a job."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "hpo.cli", "search", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def finish(process: subprocess.Popen) -> int:
    try:
        return process.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("the search did not end") from None


@pytest.mark.slow
def test_ctrl_c_interrupts_a_command_trial_and_resume_reruns_it_with_hpo_resume(tmp_path):
    space_file = tmp_path / "s.yaml"
    space_file.write_text(
        f"command: {RUN_SCRIPT} --lr {{lr}} --steps 12 --sleep 0.1\n"
        "objective: val_loss\nbudget: {trials: 1}\ndriver: {seed: 0}\n"
        "params:\n  lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
    )
    args = ["--space", str(space_file), "--runs", str(tmp_path / "runs"), "--no-track"]
    trial = tmp_path / "runs" / "s" / "trials" / "0"
    process = start_search([*args, "--driver", "random"], tmp_path / "first.txt")
    deadline = time.monotonic() + DEADLINE
    while not ((trial / "reports.jsonl").is_file() and len(reports(trial)) >= 2):
        assert process.poll() is None, (tmp_path / "first.txt").read_text()
        assert time.monotonic() < deadline, "no reports"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the search's group, not the script's
    assert finish(process) == 130
    assert "Traceback" not in (tmp_path / "first.txt").read_text()
    before = json.loads((trial / "trial.json").read_text())
    assert before["state"] == "interrupted"
    saved = json.loads((trial / "progress.json").read_text())["step"]  # its KeyboardInterrupt
    assert 2 <= saved < 12

    resumed = start_search([*args, "--driver", "random", "--resume"], tmp_path / "second.txt")
    assert finish(resumed) == 0, (tmp_path / "second.txt").read_text()
    after = json.loads((trial / "trial.json").read_text())
    assert after["state"] == "complete" and after["params"] == before["params"]
    first, second = attempts(trial)
    assert "HPO_RESUME" not in first and second["HPO_RESUME"] == "1"
    assert second["cwd"] == str(trial) and second["argv"] == first["argv"]
    steps = [r["step"] for r in reports(trial)]
    assert steps == list(range(1, 13)), "each step reported once, across the two runs"
    assert after["value"] == min(r["val_loss"] for r in reports(trial))


@pytest.mark.slow
def test_the_readme_example_space_runs_as_written(tmp_path, monkeypatch):
    from hpo.space import load_space

    monkeypatch.chdir(ROOT)  # {cwd}: the README runs it from the repository's root
    space = load_space("experiments/spaces/command_example.yaml", driver="optuna")
    result = run_study(tmp_path, space.with_budget(trials=2))

    assert [t.state for t in result.trials] == ["complete", "complete"]
    best = tmp_path / "runs" / "s" / "best"
    assert json.loads((best / "best" / "model.json").read_text()) == {"step": 20}
    assert result.best.value == min(
        r["val_loss"] for r in reports(best.parent / "trials" / str(result.best.number))
    )


def test_hpo_worker_runs_the_command_the_study_stored():
    from hpo.command_trial import CommandObjective
    from hpo.worker import objective_from_recipe, space_from_recipe, study_recipe

    space = command_space(f"{RUN_SCRIPT} --lr {{lr}}", {"lr": GOOD_LR}, driver="optuna")
    space = space.with_command(None, kill_after=3)
    recipe = json.loads(json.dumps(study_recipe(space, check_search(space, track=False))))
    objective = objective_from_recipe(recipe, "s")
    assert isinstance(objective, CommandObjective)
    assert objective.command.template == space.command.template
    assert objective.command.kill_after == 3.0
    assert space_from_recipe(recipe).command == objective.command


@pytest.mark.parametrize(
    ("space_text", "args", "message"),
    [
        pytest.param(
            "command: echo {train.learning_rate}\nexperiment: x.yaml\n",
            [],
            "a space runs an experiment or a command, not both (command)",
            id="command-and-experiment",
        ),
        pytest.param(
            "command: echo {train.learning_rate}\n",
            ["-o", "train.seed=1"],
            "a command trial has none",
            id="-o",
        ),
        pytest.param(
            "command: echo {train.learning_rate}\n",
            ["--objective", "tests.hpo.search_objectives:bowl"],
            "a command or an objective function, not both",
            id="--objective",
        ),
        pytest.param(
            "command:\n  run: echo {train.learning_rate}\n  kill_after: -1\n",
            [],
            "must be >= 0, got -1 (command.kill_after)",
            id="kill_after",
        ),
        pytest.param("", ["--kill-after", "5"], "only command trials", id="--kill-after"),
    ],
)
def test_a_command_given_wrong_is_one_line_and_exit_2(tmp_path, capsys, space_text, args, message):
    space_file = tmp_path / "s.yaml"
    space_file.write_text(
        space_text
        + "budget: {trials: 1}\nparams:\n  train.learning_rate: {type: float, low: 0.1, high: 1}\n"
    )
    runs = tmp_path / "runs"
    code = main(["search", "--space", str(space_file), "--runs", str(runs), "--no-track", *args])
    err = capsys.readouterr().err
    assert code == 2 and not runs.exists()
    assert err.startswith("hpo: error: ") and message in err and err.count("\n") == 1, err
