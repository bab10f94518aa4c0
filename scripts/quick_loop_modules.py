"""Check that the quick test loop still exercises every module of hpo/ and runner/.

    python scripts/quick_loop_modules.py            # runs the quick loop under coverage, then checks
    python scripts/quick_loop_modules.py --report   # checks the .coverage file of an earlier run

The quick loop is `pytest -m "not slow and not service"`. A module counts as exercised when at
least one line inside one of its functions ran in the pytest process (being imported is not
enough); a module without functions (a package's __init__ that only re-exports) counts when it
was imported. Code run only in a child process (an `hpo` subprocess, a trial worker) is not
counted, so the check is stricter than the suite: every module needs an in-process quick test.
Prints one line per module that fails and exits 1 when there is any. Needs `coverage` (the dev
extra installs it).
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hpo", "runner")
QUICK = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow and not service"]
# modules whose functions cannot run in the pytest process; listed, not counted as a failure
ELSEWHERE = {
    "hpo/drivers/ray_tune/trainable.py": "its functions run only inside Ray's workers",
}


def function_lines(source: str) -> set[int]:
    """The line numbers of every statement inside a function or method body."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for statement in node.body:
                end = statement.end_lineno or statement.lineno
                lines.update(range(statement.lineno, end + 1))
    return lines


def unexercised(data_file: Path) -> tuple[list[str], list[str]]:
    """(modules that fail the check, listed modules of ELSEWHERE that did not run), as lines."""
    import coverage

    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    measured = {Path(name).resolve(): set(data.lines(name) or ()) for name in data.measured_files()}
    missing, elsewhere = [], []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            ran = measured.get(path.resolve(), set())
            inside = function_lines(path.read_text())
            exercised = bool(ran & inside) if inside else bool(ran)
            name = str(path.relative_to(ROOT))
            if not exercised and name in ELSEWHERE:
                elsewhere.append(f"{name}: not checked ({ELSEWHERE[name]})")
            elif not exercised:
                reason = "imported, no function ran" if ran else "never imported"
                missing.append(f"{name}: {reason}")
    return missing, elsewhere


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", action="store_true", help="check an earlier run's data only")
    parser.add_argument("--data-file", type=Path, default=ROOT / ".coverage")
    args = parser.parse_args()
    try:
        import coverage  # noqa: F401
    except ImportError:
        print("quick_loop_modules: needs coverage (pip install coverage)", file=sys.stderr)
        return 2
    if not args.report:
        source = ",".join(str(ROOT / p) for p in PACKAGES)
        command = [sys.executable, "-m", "coverage", "run", f"--data-file={args.data_file}"]
        subprocess.run([*command, f"--source={source}", *QUICK], cwd=ROOT, check=False)
    missing, elsewhere = unexercised(args.data_file)
    for line in [*missing, *elsewhere]:
        print(line)
    total = sum(1 for p in PACKAGES for _ in (ROOT / p).rglob("*.py"))
    ran = total - len(missing) - len(elsewhere)
    print(f"{ran} of {total} modules exercised by the quick loop ({len(elsewhere)} not checked)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
