"""What other libraries print while hpo runs: their progress bars, warnings and loggers.

Every `hpo search` (and `hpo worker`, `hpo export`) turns off other libraries' progress bars
(MLflow's artifact downloads, transformers' shard writes, tqdm): they would tear the live view
apart on a terminal and fill a log with carriage returns (quiet_progress_bars). Warnings that
still reach the terminal are one printable line each (plain_warnings): MLflow colours its own.

--quiet (silence_third_parties) goes further: no warnings at all (the warnings module) and no
log records below ERROR from MLflow, alembic, Ray, ONNX, transformers, torch and the others;
hpo's own lines (errors, the result) still print. Both work through environment variables too,
set before any thread or trial process starts, so that worker processes, Ray's actors and
torchrun's ranks inherit them; those processes call apply_inherited() when they start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

QUIET_ENV = "HPO_QUIET"  # "1" in the environment of a --quiet study's trial processes

# read by the libraries themselves, in this process and in every process it starts
NO_PROGRESS_BARS = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub's and transformers' tqdm bars
    "TQDM_DISABLE": "1",  # any other tqdm bar (tqdm reads TQDM_* defaults)
}
QUIET = {
    QUIET_ENV: "1",
    "PYTHONWARNINGS": "ignore",  # new interpreters: trial workers, Ray's workers, torchrun ranks
    "MLFLOW_LOGGING_LEVEL": "ERROR",  # MLflow resets its logger's level from this on import
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
THIRD_PARTY_LOGGERS = (
    "mlflow",
    "alembic",
    "sqlalchemy",
    "ray",
    "onnx",
    "onnxscript",
    "onnx_ir",
    "onnxruntime",
    "torch",
    "transformers",
    "huggingface_hub",
    "optuna",
    "urllib3",
    "filelock",
    "matplotlib",
    "PIL",
    "git",
    "dvc",
    "numexpr",
    "httpx",
)


# what this process had before: restore() puts it back when the command ends (main() called
# from Python, or a test, goes on with its own environment, loggers and warning filters)
_before: dict[str, Any] = {}


def quiet_progress_bars() -> None:
    """No progress bars of other libraries, here and in the processes this one starts.

    Call it before any thread or trial process starts (os.environ is not changed later).
    """
    _remember()
    for name, value in NO_PROGRESS_BARS.items():
        os.environ.setdefault(name, value)


def silence_third_parties() -> None:
    """--quiet: no third-party warnings or log records below ERROR, here and in trial processes.

    Call it before any thread or trial process starts.
    """
    quiet_progress_bars()
    os.environ.update(QUIET)
    _silence_this_process()


@contextlib.contextmanager
def silenced_for_a_call(quiet: bool) -> Iterator[None]:
    """hpo.search(quiet=True) and hpo.train(quiet=True): silence_third_parties for the call,
    then restore() what the caller's process had (a notebook goes on with its own loggers and
    warning filters). Inside `hpo search --quiet`, the command already silenced them and
    restores them itself when it ends."""
    owner = quiet and not _before
    if owner:
        silence_third_parties()
    try:
        yield
    finally:
        if owner:
            restore()


def restore() -> None:
    """Undo quiet_progress_bars, silence_third_parties and plain_warnings in this process."""
    if not _before:
        return
    for name, value in _before["environ"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for name, level in _before.get("levels", {}).items():
        logger = logging.getLogger(name)
        if logger.level == logging.ERROR:  # still what --quiet set (a library may have since)
            logger.setLevel(level)
    warnings.filters[:] = _before["filters"]
    warnings.showwarning = _before["showwarning"]
    _before.clear()


def _remember() -> None:
    if _before:
        return
    _before["environ"] = {name: os.environ.get(name) for name in {**NO_PROGRESS_BARS, **QUIET}}
    _before["filters"] = list(warnings.filters)
    _before["showwarning"] = warnings.showwarning


def apply_inherited() -> None:
    """In a trial process: silence what the study's process silenced (HPO_QUIET=1)."""
    if os.environ.get(QUIET_ENV) == "1":
        _silence_this_process()


def _silence_this_process() -> None:
    warnings.simplefilter("ignore")
    # and the sink too: a library that adds an "always" filter of its own stays quiet
    warnings.showwarning = _drop_warning
    if _before:  # the driver's process: restore() gives the levels back
        _before.setdefault("levels", {})
    for name in THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if "levels" in _before:
            _before["levels"].setdefault(name, logger.level)
        logger.setLevel(logging.ERROR)
    for name in ("transformers", "huggingface_hub"):
        module = sys.modules.get(f"{name}.utils.logging")
        if module is not None and hasattr(module, "set_verbosity_error"):
            module.set_verbosity_error()  # already imported: its env variable was read
    if "optuna" in sys.modules:
        sys.modules["optuna"].logging.set_verbosity(logging.ERROR)


def _drop_warning(*args: Any, **kwargs: Any) -> None:
    pass


def plain_warnings() -> None:
    """Show each warning that reaches the terminal as one printable line (no colours, no
    source line): `warning: UserWarning: message (module:line)`."""
    from hpo.terminal import printable

    _remember()

    def show(
        message: Any,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        text = _strip_colours(str(message))
        where = f"{os.path.basename(filename)}:{lineno}"
        stream = file if file is not None else sys.stderr
        try:
            stream.write(f"warning: {category.__name__}: {printable(text, 300)} ({where})\n")
        except (OSError, ValueError):
            pass  # a closed stream: a warning never ends the study

    warnings.showwarning = show


def _strip_colours(text: str) -> str:
    """Remove ANSI SGR sequences (ESC [ ... m) that some libraries put into their warnings."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def quiet_libraries(quiet: bool) -> None:
    """Other libraries' progress bars off, their warnings one plain line each; with --quiet no
    third-party warnings or INFO logs at all (hpo.quiet). First thing in a command: trial
    processes and threads started later inherit the environment it sets."""
    if quiet:
        silence_third_parties()
    else:
        quiet_progress_bars()
        plain_warnings()
