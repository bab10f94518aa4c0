"""Plots of a finished study, drawn from its folder, and logged to the study's MLflow run.

Every driver writes the same files (hpo.study), so one function serves them all: the trials in
trials/*/trial.json become an in-memory Optuna study (distributions from study.yaml, values and
states from the records, intermediate values from the objective metric in metrics.jsonl) that
optuna.visualization draws (hpo.tracking.plot_data). runs/<study>/plots/ then holds:

    optimization_history.png   the objective of each complete trial and the best so far
    param_importances.png      which params explain the objective (PED-ANOVA, Optuna's default)
    parallel_coordinate.png    every complete trial's params against its objective
    slice.png                  the objective against each param
    learning_curves.png        the objective, val_loss and the train loss by step, one line
                               per trial, named as the runs log them in MLflow (loss,
                               val_loss); each evaluation a marker, so a trial evaluated
                               once is a dot, not an empty panel
    study.html                 the same plots, interactive (plotly; plotly.js embedded once,
                               so the file opens offline and in MLflow's artifact viewer)
    skipped.txt                what could not be drawn and why (importances need 2 trials)

Example:
    >>> write_study_plots("runs/lr_wd")
    [PosixPath('runs/lr_wd/plots/optimization_history.png'), ...]
    >>> log_study_artifacts(MlflowClient(), parent_run_id, "runs/lr_wd")
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from hpo.records import TrialRecord
from hpo.study import load_trials
from hpo.tracking.plot_data import Curves, optuna_study, read_curves
from runner.errors import UserInputError

log = logging.getLogger(__name__)
# read_curves is re-exported: it was defined here, and the tests read curves from here
__all__ = ["learning_curves_figure", "log_study_artifacts", "read_curves", "write_study_plots"]

PLOTS_DIR = "plots"
STUDY_FILES = ("study.yaml", "summary.json", "history.csv", "best_params.yaml")


def write_study_plots(study_dir: str | Path) -> list[Path]:
    """Draw the study's plots into runs/<study>/plots/ and return the files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed, nor wanted on a server
    study_dir = Path(study_dir)
    settings_path = study_dir / "study.yaml"
    if not settings_path.is_file():
        raise UserInputError(f"{study_dir}: no study here (study.yaml not found)")
    settings = yaml.safe_load(settings_path.read_text())
    raw = settings["space"]["objective"]
    objectives = list(raw) if isinstance(raw, list) else [raw]
    records = [r for r in load_trials(study_dir) if r.state != "running"]
    curves = read_curves(study_dir, records)
    metric = objectives[0]["metric"]
    study = optuna_study(settings["space"].get("params", {}), objectives, records, curves)

    out = study_dir / PLOTS_DIR
    out.mkdir(exist_ok=True)
    for old in out.glob("*.*"):  # a resumed study redraws everything: no stale plot survives
        old.unlink()
    written: list[Path] = []
    skipped: list[str] = []
    figures: list[tuple[str, Any]] = []
    # Optuna sets its matplotlib style globally: keep it inside this function
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning on every plot
        for name, png, html, why_not in _optuna_plots(study, metric, len(objectives) > 1):
            if why_not:
                skipped.append(f"{name}: {why_not}")
                continue
            try:
                written.append(_save_png(png(), out / f"{name}.png"))
                figures.append((name, html))
            except Exception as err:  # a plot the data cannot make must not fail the study
                skipped.append(f"{name}: {type(err).__name__}: {err}")
        if any(curves.values()):
            written.append(
                _plot_learning_curves(curves, records, metric, out / "learning_curves.png")
            )
        else:
            skipped.append(
                "learning_curves: no trial wrote metrics.jsonl (as a plain-function "
                "objective may not)"
            )
    if any(t.intermediate_values for t in study.trials):
        figures.append(("learning_curves", _drawer("plot_intermediate_values", study)))
    html = _write_html(figures, out / "study.html", study_dir.name, skipped)
    written += [html] if html else []
    if skipped:
        (out / "skipped.txt").write_text("\n".join(skipped) + "\n")
        written.append(out / "skipped.txt")
        log.info("study plots: skipped %s", "; ".join(skipped))
    return written


def log_study_artifacts(
    client: Any, run_id: str, study_dir: str | Path, plots: Sequence[Path] | None = None
) -> list[str]:
    """Log the plots (drawn now unless given) and study.yaml, summary.json, history.csv and
    best_params.yaml to the run (the study's parent run); returns the artifact paths."""
    study_dir = Path(study_dir)
    plots = write_study_plots(study_dir) if plots is None else plots
    logged = []
    for path in plots:
        client.log_artifact(run_id, str(path), PLOTS_DIR)
        logged.append(f"{PLOTS_DIR}/{path.name}")
    for name in STUDY_FILES:
        if (study_dir / name).is_file():
            client.log_artifact(run_id, str(study_dir / name))
            logged.append(name)
    return logged


# ----------------------------------------------------------------------------- drawing


def _optuna_plots(study: Any, metric: str, several: bool) -> list[tuple[str, Callable, Any, str]]:
    """(name, draw the matplotlib figure, plotly figure maker, why it cannot be drawn) per plot."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    searched = sorted({k for t in complete for k in t.params})
    varying = [k for k in searched if len({repr(t.params.get(k)) for t in complete}) > 1]
    target = (lambda t: t.values[0]) if several else None
    options = {"target": target, "target_name": metric}
    no_trial = "no complete trial" if not complete else ""
    no_param = no_trial or ("" if searched else "no searched param")
    importance = no_param or (
        f"needs 2 complete trials, the study has {len(complete)}"
        if len(complete) < 2
        else ""
        if varying
        else "no param varies across the complete trials"
    )
    plots = [
        ("optimization_history", {}, no_trial),
        ("param_importances", {"params": varying}, importance),
        ("parallel_coordinate", {}, no_param),
        ("slice", {}, no_param),
    ]
    return [
        (
            name,
            _drawer(f"plot_{name}", study, png=True, **extra, **options),
            _drawer(f"plot_{name}", study, **extra, **options),
            why,
        )
        for name, extra, why in plots
    ]


def _drawer(function: str, study: Any, png: bool = False, **kwargs: Any) -> Callable[[], Any]:
    """Draws an optuna.visualization plot: a matplotlib Figure (png) or a plotly one."""

    def draw() -> Any:
        import numpy as np
        import optuna.visualization as plots

        if not png:
            return getattr(plots, function)(study, **kwargs)
        axes = getattr(plots.matplotlib, function)(study, **kwargs)
        return np.ravel(axes)[0].figure  # plot_slice gives one Axes per param

    return draw


def _save_png(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def _plot_learning_curves(
    curves: Curves, records: Sequence[TrialRecord], metric: str, path: Path
) -> Path:
    return _save_png(learning_curves_figure(curves, records, metric), path)


def learning_curves_figure(curves: Curves, records: Sequence[TrialRecord], metric: str) -> Any:
    """One panel per curve (the objective metric, val_loss, the train loss), one line per trial.

    Evaluations are markers on the lines: a trial evaluated once (or pruned at its first
    evaluation) is one dot. The train loss, logged every few steps, is a plain line.
    """
    import matplotlib.pyplot as plt

    names = [
        n
        for n in dict.fromkeys((metric, "val_loss", "loss"))
        if any(n in series for series in curves.values())
    ]
    titles = {"loss": "loss (train)"}
    figure, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    states = {r.number: r.state for r in records}
    style = {"complete": "-", "pruned": "--", "failed": ":"}
    for ax, name in zip(axes[0], names, strict=True):
        for number, series in sorted(curves.items()):
            if name in series:
                steps, values = zip(*series[name], strict=True)
                ax.plot(
                    steps,
                    values,
                    style.get(states.get(number, ""), "-"),
                    marker=None if name == "loss" and len(steps) > 1 else "o",
                    markersize=4,
                    linewidth=1.2,
                    label=f"#{number} {states.get(number, '')}",
                )
        ax.set(title=titles.get(name, name), xlabel="step", ylabel=name)
        ax.grid(alpha=0.3)
    if len(curves) <= 20:
        axes[0][-1].legend(fontsize="small", loc="best")
    one_eval = all(len(s.get(names[0], ())) <= 1 for s in curves.values())
    note = "; one evaluation per trial: see the optimization history" if one_eval else ""
    figure.suptitle(f"learning curves (dashed: pruned, dotted: failed{note})")
    return figure


def _write_html(
    figures: Sequence[tuple[str, Callable]], path: Path, study: str, skipped: list[str]
) -> Path | None:
    try:
        import plotly  # noqa: F401 (optuna.visualization needs it)
    except ImportError:
        skipped.append("study.html: plotly is not installed (pip install plotly)")
        return None
    parts = []
    for name, draw in figures:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure = draw()
        except Exception as err:
            skipped.append(f"{name} (html): {type(err).__name__}: {err}")
            continue
        parts.append(
            f"<h2>{name.replace('_', ' ')}</h2>"
            + figure.to_html(full_html=False, include_plotlyjs=not parts)
        )  # plotly.js once, in the first one
    if not parts:
        return None
    path.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>study {study}"
        f"</title></head><body><h1>study {study}</h1>{''.join(parts)}</body></html>"
    )
    return path
