"""best/: the best trial's files, promoted into the study's folder so that no moment loses them.

best/ is built beside the old one (best.tmp-PID/) and swapped in by one rename (promote_best),
so a disk that fills up, or a kill -9, leaves the old best/ or the new one; recover_best undoes
what a promotion killed midway left behind. hpo.study.finish_study promotes the best trial.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path
from typing import Any

from hpo.study_files import trial_dir
from runner.files import fsync_dir, storage_error

# config.yaml ... of a runner trial; command.json and reports.jsonl of a command trial
BEST_FILES = (
    "config.yaml",
    "result.json",
    "metrics.jsonl",
    "trial.json",
    "command.json",
    "reports.jsonl",
)


def promote_best(study_dir: Path, best_trial_number: int) -> Path:
    """Copy the winner's best checkpoint(s), config.yaml, result.json and trial.json into best/.

    The new best/ is built and fsync'd beside the old one (best.tmp-PID/), then the two are
    exchanged in one atomic rename (renameat2 RENAME_EXCHANGE; where the filesystem has none:
    old to best.old-PID/, new into place, and recover_best puts the old one back if a kill
    came between the two). The old best/ is removed last: a full disk, an I/O error or a kill
    -9 at any moment leaves a complete best/, the old or the new. Raises StorageError, naming
    the file in best/ that could not be written.
    """
    source = trial_dir(study_dir, best_trial_number)
    target = study_dir / "best"
    recover_best(study_dir)
    staging = study_dir / f"best.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    wanted = [source / name for name in BEST_FILES]
    wanted += sorted((source / "checkpoints").glob("best*"))
    writing = target
    try:
        staging.mkdir()
        for path in wanted:
            writing = target / path.name
            if path.is_dir():
                _copy_tree_durably(path, staging / path.name)
            elif path.is_file():
                _copy_durably(path, staging / path.name)
        writing = target
        fsync_dir(staging)
        _swap_into_place(staging, target)
    except (OSError, RuntimeError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise storage_error(err, writing) from err
    return target


def recover_best(study_dir: Path) -> None:
    """Undo what a promote_best killed midway left: best.tmp-*/ removed, a lost best/ restored.

    Only the process that holds the study runs it (hpo.study_lock), so no promotion is live.
    """
    target = study_dir / "best"
    for old in sorted(study_dir.glob("best.old-*")):
        if not target.exists():
            os.rename(old, target)  # killed between its two renames: the old best/ is whole
        else:
            shutil.rmtree(old, ignore_errors=True)
    for staging in study_dir.glob("best.tmp-*"):
        shutil.rmtree(staging, ignore_errors=True)


def _copy_durably(source: Path, target: Path) -> None:
    with source.open("rb") as reader, target.open("xb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copystat(source, target)


def _copy_tree_durably(source: Path, target: Path) -> None:
    target.mkdir()
    for path in sorted(source.iterdir()):
        if path.is_dir():
            _copy_tree_durably(path, target / path.name)
        elif path.is_file():
            _copy_durably(path, target / path.name)
    fsync_dir(target)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Put the folder `staging` at `target`; the old `target` goes (removed last)."""
    if not target.exists():
        os.rename(staging, target)
        old = None
    elif _exchange(staging, target):
        old = staging  # it now holds the old best/
    else:
        old = target.with_name(f"best.old-{os.getpid()}")
        os.rename(target, old)
        os.rename(staging, target)  # a kill just before this: recover_best restores `old`
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    done = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
