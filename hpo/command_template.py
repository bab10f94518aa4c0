"""A command trial's command line: `{key}` placeholders checked before any trial, then filled.

    python train.py --lr {train.learning_rate} --out {trial_dir}

A placeholder is a param of the space (its dotted name) or one of TRIAL_KEYS: trial_dir (the
trial's folder, absolute, where the command runs), trial_number, study (the study's name),
max_steps (the budget's, when the space sets one) and cwd (the folder `hpo search` was started
in, absolute: `python {cwd}/train.py`, since a relative path is relative to the trial folder)
and python (the Python that runs hpo: `{python} train.py` finds hpo without an activated venv). Each value is replaced by its text quoted for the shell
(shlex.quote), so that no value, whatever it holds (`; touch pwned`), is ever read by the shell
as anything but one word: do not put quotes around a placeholder yourself. A string is its
text, a number or a boolean its JSON form (0.001, 1e-05, true), null and a param inactive in
the trial (a `when:` condition) the empty word ''. `{{` and `}}` are a literal brace (`${{HOME}}`
is `${HOME}`); any other brace is refused, so `awk '{print}'` must be written `awk '{{print}}'`.
The line is run by /bin/sh -c, so pipes, `&&` and $VARIABLES work as in a terminal.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

TRIAL_KEYS = ("trial_dir", "trial_number", "study", "max_steps", "cwd", "python")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    """What is wrong with a command template (the caller adds the file and key)."""


def placeholders(template: str) -> list[str]:
    """The placeholder names of `template`, in order; TemplateError on a lone brace."""
    names = []
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise TemplateError(
                f"a lone {token!r} at character {match.start() + 1}; write {token * 2} for a "
                "literal brace"
            )
        names.append(match.group(1))
    return names


def check_template(template: Any, params: list[str], max_steps: int | None) -> None:
    """TemplateError unless every placeholder of `template` is a param or a trial key."""
    if not isinstance(template, str) or not template.strip():
        raise TemplateError("expected the command line to run for each trial, as a string")
    for name in placeholders(template):
        if name in params or (name in TRIAL_KEYS and (name != "max_steps" or max_steps)):
            continue
        if name == "max_steps":
            raise TemplateError("{max_steps} is used but the space's budget sets no max_steps")
        hint = " (for a literal brace write {{ and }})" if not name or " " in name else ""
        known = ", ".join([*params, *TRIAL_KEYS])
        raise TemplateError(f"{{{name}}} is not a param of the space nor one of: {known}{hint}")


def word(value: Any) -> str:
    """The text a value stands for in a command line, before quoting."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def render(template: str, values: Mapping[str, Any]) -> str:
    """`template` with each placeholder replaced by its value, shell-quoted (check_template first)."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return shlex.quote(word(values.get(match.group(1))))

    return _TOKEN.sub(replace, template)
