"""The repository layout: stdlib ``platform`` stays importable, the platform never imports the
Celery tasks, and only the knowledge app's selectors and job module touch the vector store."""

import ast
import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLATFORM = REPO / "platform" / "resolvo"


def _python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "migrations" not in p.parts)


def _imports(path: Path) -> set[str]:
    """Every module name a file imports (``from a import b`` counts as ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_platform_is_the_standard_library_module_here() -> None:
    assert Path(platform.__file__).parent == Path(sysconfig.get_paths()["stdlib"])
    assert platform.python_version().startswith("3.")


def test_platform_stays_stdlib_when_run_from_the_repository_root() -> None:
    # manage.py runs with the repository root as sys.path[0]; resolvo comes from the installed
    # package (pyproject.toml maps it to platform/resolvo), and platform/ is never on sys.path.
    code = (
        "import sys; sys.path.insert(0, '.');"
        "import platform, resolvo, django; print(platform.__file__); print(resolvo.__file__); print(platform.system())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    stdlib_file, resolvo_file, system = out.stdout.split()
    assert Path(stdlib_file).parent == Path(sysconfig.get_paths()["stdlib"])
    assert Path(resolvo_file).parent.resolve() == PLATFORM.resolve()
    assert system


def test_manage_py_runs_django_checks() -> None:
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no issues" in out.stdout


def test_ingestion_library_does_not_import_django() -> None:
    code = (
        "import sys, ingestion.index, ingestion.split, ingestion.store, ingestion.parse; print('django' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_platform_never_imports_the_celery_tasks() -> None:
    """The tasks import the platform's job module; the platform sends tasks by name
    (resolvo.background), so the two can never import each other in a circle."""
    offenders = [
        str(path.relative_to(REPO))
        for path in _python_files(PLATFORM)
        if any(name == "workers.tasks" or name.startswith("workers.tasks.") for name in _imports(path))
    ]
    assert offenders == []


def test_loading_every_platform_module_leaves_the_tasks_unimported() -> None:
    code = (
        "import django, importlib, pkgutil, sys; django.setup(); import resolvo\n"
        "for m in pkgutil.walk_packages(resolvo.__path__, 'resolvo.'):\n"
        "    if '.migrations' not in m.name and not m.name.endswith(('settings', 'settings_test', 'wsgi')):\n"
        "        importlib.import_module(m.name)\n"
        "print('workers.tasks' in sys.modules)\n"
        "import workers.tasks; print(sorted(n for n in workers.tasks.__dict__ if n.startswith('document')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "resolvo.settings_test"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    loaded, tasks = out.stdout.strip().splitlines()
    assert loaded == "False"
    assert "document_ingest" in tasks


def test_only_the_selectors_and_the_job_module_touch_the_vector_store() -> None:
    """STYLE 4: one gate. Reads go through knowledge/selectors.py, writes through knowledge/jobs.py;
    knowledge/vectors.py holds the store factory for those two. The one exception is the
    operator's whole-installation backup (knowledge/backup.py), which reads and restores every
    organization's points at once and is run only by the ``backup`` and ``restore`` commands."""
    allowed = {PLATFORM / "knowledge" / name for name in ("selectors.py", "jobs.py", "vectors.py", "backup.py")}
    offenders = []
    for path in [*_python_files(PLATFORM), *_python_files(REPO / "workers")]:
        if path in allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        uses_factory = any(
            (isinstance(node, ast.Attribute) and node.attr in {"get_store", "open_store"})
            or (isinstance(node, ast.Name) and node.id in {"get_store", "open_store"})
            for node in ast.walk(tree)
        )
        imports_store = any(name == "ingestion.store" or name.startswith("ingestion.store.") for name in _imports(path))
        if uses_factory or imports_store:
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
