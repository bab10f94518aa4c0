"""Plain-function objectives that tests hand to `hpo search --objective tests.hpo.search_objectives:NAME`."""


def quadratic(params, reporter):
    """Minimum 0 at learning_rate 1e-3, weight_decay anywhere."""
    import math

    return (math.log10(params["train.learning_rate"]) + 3) ** 2


def always_fails(params, reporter):
    raise RuntimeError(f"diverged at lr {params['train.learning_rate']:.2g}")


GATED_STEPS = 20


def gated_steps(params, reporter):
    """Reports loss and acc at steps 0..19, then obeys files in the folder $HPO_TEST_GATES.

    Trials number themselves in the order they start (DIR/trial-<n>). After its steps, trial n
    fails if DIR/fail-<n> exists, and waits while DIR/hold-<n> exists (saying so with
    DIR/at-<n>): a test stops or starts services between trials, or while one runs.
    """
    import math
    import os
    import time
    from pathlib import Path

    gates = Path(os.environ["HPO_TEST_GATES"])
    number = 0
    while True:
        try:
            os.close(os.open(gates / f"trial-{number}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            number += 1
    for step in range(GATED_STEPS):
        reporter.report(step, {"loss": 1.0 / (step + 1), "acc": step / GATED_STEPS})
    hold = gates / f"hold-{number}"
    if hold.exists():
        (gates / f"at-{number}").touch()
        deadline = time.monotonic() + 600
        while hold.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    if (gates / f"fail-{number}").exists():
        raise RuntimeError(f"trial {number} fails, as the test asked")
    return (math.log10(params["train.learning_rate"]) + 3) ** 2


def reports_slowly(params, reporter):
    """Reports 40 steps, 0.1 s apart (a trial the tests interrupt); marks the start on disk."""
    import math
    import time
    from pathlib import Path

    Path(reporter.dir, "started").touch()
    value = (math.log10(params["train.learning_rate"]) + 3) ** 2
    for step in range(1, 41):
        time.sleep(0.1)
        reporter.report(step, {"val_loss": value + 1.0 / step})
    return value


def hangs_after_first_report(params, reporter):
    """Reports once, then waits 10 minutes without reporting: only a second Ctrl-C ends it."""
    import time
    from pathlib import Path

    reporter.report(1, {"val_loss": 1.0})
    Path(reporter.dir, "started").touch()
    time.sleep(600)
    return 0.0


def checkpoints_each_step(params, reporter):
    """40 steps 0.1 s apart; a step counter in checkpoints/last.pt, resumed from when given."""
    import math
    import os
    import time
    from pathlib import Path

    first = 1
    if reporter.resume_checkpoint:
        first = int(Path(reporter.resume_checkpoint).read_text()) + 1
    Path(reporter.dir, "resumed_from.txt").write_text(str(first - 1))
    Path(reporter.dir, "started").touch()
    last = Path(reporter.dir, "checkpoints", "last.pt")
    last.parent.mkdir(exist_ok=True)
    value = (math.log10(params["train.learning_rate"]) + 3) ** 2
    for step in range(first, 41):
        time.sleep(0.1)
        last.with_suffix(".tmp").write_text(str(step))
        os.replace(last.with_suffix(".tmp"), last)
        reporter.report(step, {"val_loss": value + 1.0 / step})
    return value
