"""The repository layout keeps the standard library's ``platform`` module importable."""

import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_platform_is_the_standard_library_module_here() -> None:
    assert Path(platform.__file__).parent == Path(sysconfig.get_paths()["stdlib"])
    assert platform.python_version().startswith("3.")


def test_platform_stays_stdlib_when_run_from_the_repository_root() -> None:
    # The repository root is sys.path[0] for manage.py; platform/ must not shadow the stdlib.
    code = (
        "import sys; sys.path.insert(0, '.'); sys.path.insert(1, 'platform');"
        "import platform, django; print(platform.__file__); print(platform.system())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    stdlib_file, system = out.stdout.split()
    assert Path(stdlib_file).parent == Path(sysconfig.get_paths()["stdlib"])
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
