"""The runner knows nothing of the search side: a test, not a convention."""

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
FORBIDDEN_IN_RUNNER = {"hpo", "optuna", "ray", "bayes_opt", "mlflow"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_runner_imports_nothing_from_the_search_side():
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN_IN_RUNNER)
        for path in (ROOT / "runner").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_dependency_check_sees_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import optuna\nfrom mlflow.tracking import MlflowClient\n")
    assert imported_modules(sample) == {"optuna", "mlflow"}


def imported_names(path: Path) -> set[str]:
    """Full dotted names of every module `path` imports, at any depth (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_driver_imports_another_driver():
    drivers = {p.stem for p in (ROOT / "hpo" / "drivers").glob("*.py")} - {"__init__", "base"}
    for name in drivers:
        others = {f"hpo.drivers.{d}" for d in drivers - {name}}
        found = imported_names(ROOT / "hpo" / "drivers" / f"{name}.py") & others
        assert not found, f"hpo/drivers/{name}.py imports {found}"


def test_ray_is_imported_only_by_its_driver():
    users = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "hpo").rglob("*.py")
        if any(n == "ray" or n.startswith("ray.") for n in imported_names(p))
    }
    assert users == {"hpo/drivers/ray_driver.py"}
