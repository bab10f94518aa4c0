"""Where a study comes from: its experiment's name and data, the git commit, the data's DVC hash.

Each lookup returns None when the answer is not there (no git repository, data not tracked by
DVC, the Python standard library as corpus); a study's tags then simply lack it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def read_experiment(
    experiment: str | None, space_source: str
) -> tuple[Path, dict[str, Any]] | None:
    """The experiment config a space names (as written, else beside the space file) and its YAML."""
    if not experiment:
        return None
    for path in (Path(experiment), Path(space_source).parent / experiment):
        if path.is_file():
            try:
                raw = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError):
                return None
            return path, raw if isinstance(raw, dict) else {}
    return None


def experiment_name(experiment: str | None, space_source: str, fallback: str) -> str:
    """The MLflow experiment of a study: the experiment config's `name`, else its file stem.

    A study without an experiment config (a plain-function objective) uses `fallback`, the
    space's name.
    """
    found = read_experiment(experiment, space_source)
    if found is None:
        return Path(experiment).stem if experiment else fallback
    path, raw = found
    name = raw.get("name")
    return str(name) if isinstance(name, str) and name.strip() else path.stem


def data_path(experiment: str | None, space_source: str) -> str | None:
    """The experiment's data.path (None: the default corpus, or no experiment)."""
    found = read_experiment(experiment, space_source)
    if found is None:
        return None
    data = found[1].get("data")
    path = data.get("path") if isinstance(data, Mapping) else None
    return str(path) if path else None


def git_commit(cwd: str | Path = ".") -> tuple[str, bool] | None:
    """(HEAD's commit, whether tracked files differ from it), or None outside a git repository."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip(), bool(status.stdout.strip())


def dvc_hash(path: str | Path, project: str | Path = ".") -> tuple[str, str] | None:
    """(md5, where it was read) of data tracked by DVC, or None when DVC does not track it.

    Looked up, in order: `<path>.dvc` or the .dvc file of a folder holding it; then dvc.lock
    in `project`, an out (else a dep) of any stage whose path is `path` or a folder holding it.
    The md5 is DVC's own: of the file, or of the folder's listing (ending in .dir).
    """
    project = Path(project).resolve()
    target = (project / path).resolve()
    for candidate in (target, *target.parents):
        dvc_file = candidate.with_name(candidate.name + ".dvc")
        if candidate == project or project not in candidate.parents:
            break
        if dvc_file.is_file():
            md5 = _md5_of(_load(dvc_file).get("outs"), dvc_file.parent, candidate)
            if md5:
                return md5, _relative(dvc_file, project)
    lock = project / "dvc.lock"
    stages = (_load(lock).get("stages") or {}) if lock.is_file() else {}
    for section in ("outs", "deps"):
        for stage in stages.values():
            if isinstance(stage, Mapping):
                md5 = _md5_of(stage.get(section), project, target)
                if md5:
                    return md5, "dvc.lock"
    return None


def _md5_of(entries: Any, base: Path, target: Path) -> str | None:
    """The md5 of the entry whose path is target or a folder holding it."""
    for entry in entries or ():
        if not isinstance(entry, Mapping) or "path" not in entry:
            continue
        tracked = (base / str(entry["path"])).resolve()
        if tracked == target or tracked in target.parents:
            md5 = entry.get("md5")  # DVC 3 adds `hash: md5`, the name of the algorithm
            return str(md5) if md5 else None
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _relative(path: Path, project: Path) -> str:
    try:
        return str(path.relative_to(project))
    except ValueError:
        return str(path)


def provenance_tags(
    experiment: str | None, space_source: str, cwd: str | Path = "."
) -> dict[str, str]:
    """MLflow tags: mlflow.source.git.commit, hpo.git_dirty, hpo.data_path, hpo.data_md5(_source)."""
    tags: dict[str, str] = {}
    commit = git_commit(cwd)
    if commit is not None:
        tags["mlflow.source.git.commit"] = commit[0]
        tags["hpo.git_dirty"] = str(commit[1]).lower()
    data = data_path(experiment, space_source)
    if data is not None:
        tags["hpo.data_path"] = data
        found = dvc_hash(data, cwd)
        if found is not None:
            tags["hpo.data_md5"], tags["hpo.data_md5_source"] = found
    return tags


def study_files(
    experiment: str | None, space_source: str, study_dir: Path
) -> list[tuple[str, Path]]:
    """(artifact name, file) of what defines a study: study.yaml, the space and experiment files."""
    files = [("study.yaml", study_dir / "study.yaml")]
    if space_source != "<space>":
        files.append((f"space/{Path(space_source).name}", Path(space_source)))
    found = read_experiment(experiment, space_source)
    if found is not None:
        files.append((f"experiment/{found[0].name}", found[0]))
    return files
