"""Plain-function objectives that tests hand to `hpo search --objective tests.hpo.search_objectives:NAME`."""


def quadratic(params, reporter):
    """Minimum 0 at learning_rate 1e-3, weight_decay anywhere."""
    import math

    return (math.log10(params["train.learning_rate"]) + 3) ** 2


def always_fails(params, reporter):
    raise RuntimeError(f"diverged at lr {params['train.learning_rate']:.2g}")


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
