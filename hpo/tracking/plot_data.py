"""What a finished study's plots are drawn from, read from its folder (hpo.study's files):
the trials as an in-memory Optuna study (distributions from study.yaml, values and states from
the records, intermediate values from the objective metric), and each trial's learning curves
from its metrics.jsonl. hpo.tracking.artifacts draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.records import TrialRecord
from hpo.study import trial_dir
from runner.metrics_log import read_metrics

Curves = dict[int, dict[str, list[tuple[int, float]]]]  # trial -> metric -> (step, value)


def read_curves(study_dir: Path, records: Sequence[TrialRecord]) -> Curves:
    """Eval metrics and the train loss (`loss`, as MLflow has it) by step of every trial that
    wrote a metrics.jsonl."""
    curves: Curves = {}
    for record in records:
        path = trial_dir(study_dir, record.number) / "metrics.jsonl"
        if not path.is_file():
            continue
        series: dict[str, list[tuple[int, float]]] = {}
        for row in read_metrics(path):
            kind, step = row["type"], int(row["step"])
            items = row.items() if kind == "eval" else [("loss", row.get("loss"))]
            for key, value in items if kind in ("eval", "train") else ():
                if key not in ("type", "step") and _finite(value):
                    series.setdefault(key, []).append((step, float(value)))
        curves[record.number] = series
    return curves


def optuna_study(
    params: Mapping[str, Any],
    objectives: Sequence[Mapping[str, str]],
    records: Sequence[TrialRecord],
    curves: Curves,
) -> Any:
    """An in-memory Optuna study holding the finished trials as they are on disk."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    states = {
        "complete": TrialState.COMPLETE,
        "pruned": TrialState.PRUNED,
        "failed": TrialState.FAIL,
    }
    distributions = _distributions(params, records)
    metric = objectives[0]["metric"]
    study = optuna.create_study(directions=[o["direction"] for o in objectives])
    for record in records:
        chosen = {k: v for k, v in record.params.items() if k in distributions}
        state = states[record.state]
        if state == TrialState.COMPLETE and not record.values:  # nothing to plot it by
            state = TrialState.FAIL
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                values=record.values if state == TrialState.COMPLETE else None,
                params=chosen,
                distributions={k: distributions[k] for k in chosen},
                intermediate_values=dict(curves.get(record.number, {}).get(metric, [])),
                user_attrs={"reason": record.reason} if record.reason else None,
            )
        )
    return study


def _distributions(params: Mapping[str, Any], records: Sequence[TrialRecord]) -> dict[str, Any]:
    """Optuna distributions of the searched params (fixed ones are left out), each widened to
    hold every value the trials ran with (a space edited between runs of a study)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    result: dict[str, Any] = {}
    for name, spec in params.items():
        seen = [r.params[name] for r in records if name in r.params]
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        if kind in ("float", "int") and all(_finite(v) for v in seen):
            # space.to_dict leaves out fields equal to None, False or 0 (a low of 0.0 among them)
            low = min([spec.get("low", 0), *seen])
            high = max([spec.get("high", 0), *seen])
            log = bool(spec.get("log")) and low > 0
            step = None if log else spec.get("step")
            make = IntDistribution if kind == "int" else FloatDistribution
            low, high = (int(low), int(high)) if kind == "int" else (float(low), float(high))
            dist = make(low, high, log=log, step=(step or 1) if kind == "int" else step)
            if not _holds(dist, seen):
                dist = make(low, high, log=log)  # values off the step grid: drop the step
            if _holds(dist, seen):
                result[name] = dist
        elif kind == "categorical":
            choices = list(dict.fromkeys([*spec.get("choices", []), *seen]))
            if all(v is None or isinstance(v, bool | int | float | str) for v in choices):
                result[name] = CategoricalDistribution(choices)
    return result


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _holds(distribution: Any, values: Sequence[Any]) -> bool:
    return all(distribution._contains(distribution.to_internal_repr(v)) for v in values)
