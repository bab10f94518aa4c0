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


def driver_sources() -> dict[str, list[Path]]:
    """Each driver's module name and its files: a module of hpo/drivers/, or a package as a whole.

    The drivers are those hpo.drivers.DRIVERS names; the other module of hpo/drivers/ (base) is
    what drivers share, and any driver may import it. What two drivers run alike (ray's
    searcher optuna runs Optuna's sampler and pruner) is in hpo.suggesters, below them all.
    """
    from hpo.drivers import DRIVERS

    folder = ROOT / "hpo" / "drivers"
    drivers = {}
    for module, _ in DRIVERS.values():
        name = module.rsplit(".", 1)[1]
        package = folder / name
        drivers[name] = (
            sorted(package.rglob("*.py")) if package.is_dir() else [folder / f"{name}.py"]
        )
    return drivers


def test_no_driver_imports_another_driver():
    drivers = driver_sources()
    assert "ray_tune" in drivers and len(drivers["ray_tune"]) > 1  # a package counts as one
    for name, paths in drivers.items():
        others = {f"hpo.drivers.{d}" for d in drivers.keys() - {name}}
        for path in paths:
            found = {
                n for n in imported_names(path) for o in others if n == o or n.startswith(o + ".")
            }
            assert not found, f"{path.relative_to(ROOT)} imports {found}"


def test_ray_is_imported_only_by_its_driver():
    users = {
        p.relative_to(ROOT)
        for p in (ROOT / "hpo").rglob("*.py")
        if any(n == "ray" or n.startswith("ray.") for n in imported_names(p))
    }
    package = Path("hpo/drivers/ray_tune")
    assert users and {p for p in users if package not in p.parents} == set()
