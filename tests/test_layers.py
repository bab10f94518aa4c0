"""hpo's and runner's modules form layers without cycles: a test, not a convention
(docs/architecture.md).

Two checks, each run on hpo and runner and shown to fail on a small package that breaks it:

- import-linter's contracts in pyproject.toml ([tool.importlinter]): the layers of hpo and of
  runner, top to bottom, and runner importing nothing from hpo. A module may import only from
  layers below its own.
- no import cycle between any two modules, inside a layer or a package too (where the layers
  contract does not look): on grimp's import graph, the one import-linter builds.

Both count every import: at module level, inside functions and under TYPE_CHECKING, so an
import moved into a function does not hide a cycle. (An import inside a function that keeps a
heavy library out of `import hpo` or `import runner.config` is fine, as long as it points down
the layers.)
"""

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]

LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on project/pyproject.toml's contracts, its packages imported from project.

    Run in a process of its own with this Python, so that the packages checked are project's
    (not an installed copy) and import-linter's cache stays off (--no-cache writes nothing).
    """
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def import_cycles(package: str, project: Path) -> list[tuple[str, str]]:
    """Each import (importer, imported) of `package` that closes a cycle: imported reaches
    importer again through the package's imports. Empty when the package has no cycle."""
    script = textwrap.dedent(
        f"""
        import json, grimp
        graph = grimp.build_graph({package!r}, cache_dir=None)
        print(json.dumps(sorted(
            (importer, imported)
            for importer in graph.modules
            for imported in graph.find_modules_directly_imported_by(importer)
            if graph.chain_exists(importer=imported, imported=importer)
        )))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [tuple(pair) for pair in json.loads(proc.stdout)]


def test_hpo_and_runner_keep_their_layers_and_runner_imports_nothing_of_hpo():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{len(contracts['contracts'])} kept, 0 broken" in proc.stdout


def test_hpo_has_no_import_cycle():
    assert import_cycles("hpo", ROOT) == []


def test_runner_has_no_import_cycle():
    assert import_cycles("runner", ROOT) == []


def test_the_checks_fail_on_a_cycle_even_one_hidden_inside_a_function(tmp_path):
    """A package whose lower layer imports its upper one inside a function: both checks say so."""
    package = tmp_path / "layered"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "upper.py").write_text("from layered.lower import helper\n\nVALUE = helper()\n")
    (package / "lower.py").write_text(
        "def helper():\n    from layered.upper import VALUE\n\n    return VALUE\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_packages = ["layered"]

            [[tool.importlinter.contracts]]
            name = "upper above lower"
            type = "layers"
            containers = ["layered"]
            layers = ["upper", "lower"]
            """
        )
    )
    proc = lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "layered.lower is not allowed to import layered.upper" in proc.stdout
    assert "0 kept, 1 broken" in proc.stdout
    assert import_cycles("layered", tmp_path) == [
        ("layered.lower", "layered.upper"),
        ("layered.upper", "layered.lower"),
    ]


def test_the_cycle_check_sees_imports_under_type_checking(tmp_path):
    """A cycle only type annotations close is a cycle too (hpo.space had one)."""
    package = tmp_path / "typed"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from typed.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from typed.a import A\n\n"
        "class B:\n    pass\n"
    )
    assert import_cycles("typed", tmp_path) == [("typed.a", "typed.b"), ("typed.b", "typed.a")]
