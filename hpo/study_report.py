"""How `hpo status` and `hpo best` show a study: a per-trial table, or one JSON document.

The table goes to a person: on a terminal it is drawn with `rich` when rich is installed (it is
not a dependency of hpo), otherwise, and whenever stdout is not a terminal (a pipe, a file, a
test), it is plain text in aligned columns, so that grep and cut see the same text every time.
Every cell goes through hpo.terminal.printable: a param key or value, a study name or a reason
read from a study's files never drives the terminal. Rich is given Text cells, never markup,
so a `[bold]` in a param value is printed as it is.

The JSON document goes to a script (`hpo status STUDY --json`): one document on stdout, the
values exactly as in the trials' trial.json files, except that a value that is not a finite
number (NaN, inf) is null, because strict JSON parsers refuse NaN. json.dumps escapes every
character that is not printable ASCII (ensure_ascii), so the document is safe on a terminal
as it is; it still goes through printable(), which then changes nothing.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from hpo.records import TrialRecord
from hpo.space import Objective
from hpo.study_status import StudyStatus
from hpo.terminal import printable

TABLE_COLUMNS = ("trial", "state", "value", "steps", "duration", "params")
_RIGHT_ALIGNED = frozenset({"trial", "value", "steps", "duration"})


def describe_values(objectives: Sequence[Objective], values: Sequence[float] | None) -> str:
    """`val_loss 4.17 (minimize)`, one per objective, joined by `, `."""
    shown = list(values or [])
    return ", ".join(
        f"{printable(o.metric)} {_number(shown[i]) if i < len(shown) else '-'} ({o.direction})"
        for i, o in enumerate(objectives)
    )


def trial_cells(record: TrialRecord) -> tuple[str, ...]:
    """One row of the table, in TABLE_COLUMNS order, every cell printable."""
    values = ", ".join(_number(v) for v in record.values) if record.values else "-"
    params = " ".join(f"{printable(k)}={_param(v)}" for k, v in record.params.items())
    return (
        str(record.number),
        printable(record.state),
        values,
        str(record.steps),
        f"{record.duration:.1f}s",
        params,
    )


def print_trial_table(trials: Sequence[TrialRecord], out: TextIO | None = None) -> None:
    """The trials as a table: rich on a terminal when it is installed, plain text otherwise."""
    out = out if out is not None else sys.stdout
    if not trials:
        print("  no trials yet", file=out)
        return
    rows = [trial_cells(t) for t in trials]
    if _is_terminal(out) and _print_rich_table(rows, out):
        return
    for line in plain_table(rows):
        print(line, file=out)


def print_reasons(trials: Sequence[TrialRecord], out: TextIO | None = None) -> None:
    """Why each trial that did not complete ended, one line per trial under the table: the
    reason is too long for a column (an exception's message), and a failed row alone would
    send the user to the trial's files."""
    ended = [t for t in trials if t.reason and t.state != "complete"]
    if not ended:
        return
    out = out if out is not None else sys.stdout
    print(file=out)
    for record in ended:
        print(
            f"  trial {record.number} {printable(record.state)}: {printable(record.reason)}",
            file=out,
        )


def plain_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """The header and rows in aligned columns, numbers right-aligned, no trailing spaces."""
    table = [TABLE_COLUMNS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(TABLE_COLUMNS))]
    lines = []
    for row in table:
        cells = [
            cell.rjust(width) if name in _RIGHT_ALIGNED else cell.ljust(width)
            for name, cell, width in zip(TABLE_COLUMNS, row, widths, strict=True)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def status_document(status: StudyStatus, run_by: str | None) -> dict[str, Any]:
    """What `hpo status --json` prints: the study, its objective(s), counts, best and trials."""
    objectives = [{"metric": o.metric, "direction": o.direction} for o in status.objectives]
    return _finite(
        {
            "study": status.study,
            "driver": status.driver,
            "objective": objectives[0] if objectives else None,
            "objectives": objectives,
            "counts": dict(status.counts),
            "run_by": run_by,
            "best": trial_entry(status.best) if status.best is not None else None,
            "trials": [trial_entry(t) for t in status.trials],
        }
    )


def trial_entry(record: TrialRecord) -> dict[str, Any]:
    """A trial in the JSON document: the fields of its trial.json a script needs."""
    return {
        "number": record.number,
        "state": record.state,
        "value": record.value,
        "values": record.values,
        "steps": record.steps,
        "duration": record.duration,
        "params": record.params,
        "reason": record.reason,
        "started": record.started,
    }


def print_json(document: dict[str, Any], out: TextIO | None = None) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=True, allow_nan=False)
    for line in text.splitlines():
        print(printable(line, limit=None), file=out if out is not None else sys.stdout)


def _finite(value: Any) -> Any:
    """`value` with every float that is not finite replaced by None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _number(value: float) -> str:
    return f"{value:.6g}"


def _param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else printable(value)


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream: not a terminal
        return False


def _print_rich_table(rows: Sequence[Sequence[str]], out: TextIO) -> bool:
    """Draw the table with rich; False when rich is not installed."""
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return False
    table = Table(box=None, pad_edge=False, show_edge=False)
    for name in TABLE_COLUMNS:
        table.add_column(name, justify="right" if name in _RIGHT_ALIGNED else "left")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: a cell is never read as markup
    Console(file=out, highlight=False, emoji=False).print(table)
    return True
