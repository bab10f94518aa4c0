"""One call of a trial's objective, as an Outcome: in the driver's process or in a worker's.

run_objective calls the objective once and turns what it returns or raises into an Outcome
(complete with its value or metrics, pruned, interrupted, or failed with the traceback);
check_picklable refuses, before any trial, an objective that cannot be sent to a worker
process (hpo.trial_processes).
"""

from __future__ import annotations

import numbers
import pickle
import traceback
from collections.abc import Mapping
from typing import Any

from hpo.drivers.base import ObjectiveFunction, TrialInterrupted, TrialPruned
from runner.errors import UserInputError
from runner.outcome import Outcome


def run_objective(objective: ObjectiveFunction, params: dict[str, Any], reporter: Any) -> Outcome:
    """Call the objective once; exceptions become the trial's state and reason."""
    try:
        result = objective(dict(params), reporter)
    except TrialPruned as err:
        return Outcome("pruned", reason=str(err) if err.args and err.args[0] else None)
    except TrialInterrupted as err:
        return Outcome("interrupted", reason=str(err) if err.args and err.args[0] else None)
    except (Exception, SystemExit) as err:  # sys.exit() in an objective ends only its trial
        return Outcome(
            "failed", reason=f"{type(err).__name__}: {err}", traceback=traceback.format_exc()
        )
    return objective_result(result)


def objective_result(result: Any) -> Outcome:
    """What an objective returned: complete with its numbers, or failed (Ray's trials too)."""
    if isinstance(result, Mapping):
        plain = {str(k): float(v) for k, v in result.items() if isinstance(v, numbers.Real)}
        return Outcome("complete", plain)
    if isinstance(result, numbers.Real) and not isinstance(result, bool):
        return Outcome("complete", float(result))
    kind = type(result).__name__
    return Outcome(
        "failed", reason=f"the objective returned {kind}; return a number or {{metric: value}}"
    )


def check_picklable(objective: ObjectiveFunction) -> None:
    """Raise UserInputError, before any trial, when the objective cannot be sent to a worker."""
    try:
        pickle.dumps(objective)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise UserInputError(
            f"the objective cannot be sent to a worker process ({err}); "
            "define it at module level or run with --parallel 1"
        ) from None
