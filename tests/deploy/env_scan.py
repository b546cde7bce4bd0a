"""Every environment variable the code reads, found by reading the code (``ast``), not by a list.

The readers counted: ``resolvo.env``'s typed helpers (``env_str``, ``env_int``, ...) and
``os.environ`` / ``os.getenv`` (``get``, ``[]``, ``setdefault``, ``in``), with the name written
as a string or as a module-level constant of the same file. ``.env.example`` documents each one;
``python -m tests.deploy.env_scan`` prints the names it does not have yet, with the code's default.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("platform/resolvo", "workers", "ingestion", "manage.py")
SKIPPED = {"settings_test.py"}  # the test-suite's own settings, not the product's
READERS = {"env_str", "env_int", "env_float", "env_bool", "env_list", "env_path"}
ENV_EXAMPLE = REPO / ".env.example"
DOCUMENTED = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


@dataclass(frozen=True)
class EnvRead:
    name: str
    default: str | None
    where: str


def _python_files() -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        path = REPO / entry
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return [f for f in files if f.name not in SKIPPED and "migrations" not in f.parts]


def _constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and ast.unparse(node.value) == "os"


def _reads_in(path: Path) -> list[EnvRead]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = _constants(tree)
    where = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)

    def name_of(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    def default_of(call: ast.Call) -> str | None:
        if len(call.args) > 1:
            return ast.unparse(call.args[1])
        for keyword in call.keywords:
            if keyword.arg == "default":
                return ast.unparse(keyword.value)
        return None

    reads: list[EnvRead] = []
    for node in ast.walk(tree):
        name: str | None = None
        default: str | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            reader = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if reader in READERS or (
                isinstance(func, ast.Attribute)
                and (
                    (func.attr in {"get", "setdefault"} and _is_os_environ(func.value))
                    or (func.attr == "getenv" and ast.unparse(func.value) == "os")
                )
            ):
                name, default = name_of(node.args[0]), default_of(node)
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            name = name_of(node.slice)
        elif isinstance(node, ast.Compare) and any(_is_os_environ(c) for c in node.comparators):
            name = name_of(node.left)
        if name:
            reads.append(EnvRead(name, default, where))
    return reads


def env_reads() -> dict[str, EnvRead]:
    """Each variable with its first read (settings.py first, where most live)."""
    found: dict[str, EnvRead] = {}
    files = sorted(_python_files(), key=lambda p: (p.name != "settings.py", str(p)))
    for path in files:
        for read in _reads_in(path):
            found.setdefault(read.name, read)
    return found


def documented(text: str | None = None) -> set[str]:
    """The names ``.env.example`` has a line for, set (``NAME=...``) or shown commented (``# NAME=...``)."""
    return set(DOCUMENTED.findall(ENV_EXAMPLE.read_text(encoding="utf-8") if text is None else text))


if __name__ == "__main__":
    missing = [read for name, read in sorted(env_reads().items()) if name not in documented()]
    for read in missing:
        print(f"# {read.name}={read.default or ''}    ({read.where})")
    sys.exit(1 if missing else 0)
