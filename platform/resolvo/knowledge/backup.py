"""Backups of a whole installation, and restoring one: the database, the vector store and the
uploaded files, with a manifest (versions, row and point counts) and a checksum for every file.

The ``backup`` and ``restore`` commands are thin adapters over :func:`backup_create`,
:func:`backup_verify` and :func:`backup_restore`; docs/operations.md is the operator's guide.
A backup is one folder, ``resolvo-backup-<UTC time>``, written under a ``.partial`` name and
renamed only once complete, so a folder with the final name is always a whole backup::

    manifest.json      what is inside: versions, counts, formats
    SHA256SUMS         one line per file (``sha256sum -c SHA256SUMS`` checks it by hand too)
    database.pgdump    PostgreSQL: pg_dump's custom format   | database.sqlite3  SQLite: online backup
    vectors/           the collection (see ingestion.store.backup for its three formats)
    media/             the uploaded originals, as under MEDIA_ROOT

Order and consistency: the database first, then the files, then the vectors, each a consistent
copy of its own. Work that happens between them (a document indexed or deleted while the backup
runs) can leave a document's points out of step with its row; ``manage.py reindex --missing``
after a restore finds and re-queues exactly those documents. Vectors can always be rebuilt from
the documents, so ``--vectors none`` is a valid, smaller backup.

This module, beside the selectors and the job module, touches the vector store (the layout test
lists it): a backup is the one operation that reads every organization's points at once, and
only the operator runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import django
from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.loader import MigrationLoader

from ingestion.store import backup as store_backup
from resolvo.knowledge import vectors
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.models import Organization

FORMAT = 1
PREFIX = "resolvo-backup-"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
PG_FILE = "database.pgdump"
SQLITE_FILE = "database.sqlite3"
VECTORS_DIR = "vectors"
MEDIA_DIR = "media"

VectorsMode = Literal["native", "portable", "none"]
Step = Callable[[str], None]

# libpq connection keywords that may sit in a PostgreSQL database's OPTIONS; Django's own
# options (isolation_level, pool, server_side_binding, ...) are not for pg_dump.
_LIBPQ_OPTIONS = {
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "connect_timeout",
    "options",
    "application_name",
    "target_session_attrs",
    "service",
    "passfile",
}


class BackupError(Exception):
    """A backup cannot be written or restored; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    folder: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any]
    restored: list[str]
    mismatches: list[str] = field(default_factory=list)
    """Counts that differ from the manifest after the restore (empty when all match)."""
    unapplied_migrations: int = 0
    """Migrations of this code the restored database has not run yet (``manage.py migrate``)."""


def _nothing(_: str) -> None:
    return None


# --- backup -----------------------------------------------------------------------------------


def backup_create(
    *, target: Path, vectors_mode: VectorsMode = "native", media: bool = True, on_step: Step = _nothing
) -> BackupResult:
    """Write a backup folder under ``target`` (created if missing) and return it.

    ``vectors_mode``: ``native`` (the engine's own snapshot: a shard copy when embedded, the
    snapshot API on a Qdrant server; points when the engine has none), ``portable`` (points, for
    moving to another engine) or ``none`` (rebuild with ``reindex`` instead). The embedded vector
    store must not be open in another process (stop the server first)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = target / f"{PREFIX}{stamp}"
    partial = target / f".{PREFIX}{stamp}.partial"
    if folder.exists() or partial.exists():
        raise BackupError(f"{folder} already exists; wait a second and run the backup again.")
    partial.mkdir(parents=True)
    try:
        manifest: dict[str, Any] = {"format": FORMAT, "created_at": stamp, "versions": _versions()}
        on_step("database")
        manifest["database"] = _database_dump(partial)
        manifest["counts"] = model_counts()
        manifest["migrations"] = _applied_migrations()
        on_step("media")
        manifest["media"] = _media_copy(Path(settings.MEDIA_ROOT), partial / MEDIA_DIR) if media else None
        on_step("vectors")
        manifest["vectors"] = _vectors_dump(partial / VECTORS_DIR, vectors_mode)
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        on_step("checksums")
        _write_sums(partial)
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BackupResult(folder, manifest)


def _versions() -> dict[str, str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return ""

    return {
        "resolvo": version("resolvo"),
        "django": django.get_version(),
        "python": platform.python_version(),
        "qdrant-client": version("qdrant-client"),
        "qdrant-edge-py": version("qdrant-edge-py"),
    }


def model_counts() -> dict[str, int]:
    """Rows per model of the platform's apps (and users): what a restore must bring back."""
    counts: dict[str, int] = {}
    for model in apps.get_models():
        if model._meta.app_config.name.startswith("resolvo.") or model._meta.label == "auth.User":
            counts[model._meta.label] = model._default_manager.count()
    return dict(sorted(counts.items()))


def _applied_migrations() -> list[str]:
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connections[DEFAULT_DB_ALIAS])
    return sorted(f"{app}.{name}" for app, name in recorder.applied_migrations())


def _database_dump(folder: Path) -> dict[str, Any]:
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql":
        pg_dump_version = _run(["pg_dump", "--version"]).strip()
        database_dump_postgres(settings_dict=connection.settings_dict, target=folder / PG_FILE)
        return {
            "engine": "postgresql",
            "file": PG_FILE,
            "server_version": _pg_server_version(),
            "pg_dump": pg_dump_version,
        }
    if connection.vendor == "sqlite":
        database_copy_sqlite(source=Path(connection.settings_dict["NAME"]), target=folder / SQLITE_FILE)
        return {"engine": "sqlite", "file": SQLITE_FILE, "sqlite_version": sqlite3.sqlite_version}
    raise BackupError(f"backups support PostgreSQL and SQLite, not {connection.vendor}")


def _pg_server_version() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0])


def database_dump_postgres(*, settings_dict: dict[str, Any], target: Path) -> None:
    """``pg_dump`` the database of ``settings_dict`` (a Django database entry) to ``target`` in
    the custom format (compressed; ``pg_restore`` can restore it table by table)."""
    _run(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={target}", _conninfo(settings_dict)],
        env=_pg_env(settings_dict),
    )


def database_restore_postgres(*, settings_dict: dict[str, Any], source: Path) -> None:
    """Restore a custom-format dump into the database of ``settings_dict``, in one transaction:
    the tables of the dump are dropped and created again (others are left alone), so either the
    whole dump is in place or nothing changed. Close this process's connections first; other
    processes (web, workers) must be stopped, or their locks make it wait."""
    _run(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={_conninfo(settings_dict)}",
            str(source),
        ],
        env=_pg_env(settings_dict),
    )


def database_copy_sqlite(*, source: Path, target: Path) -> None:
    """Copy a SQLite database with its online backup API: a consistent copy even while another
    connection writes (WAL included); used both ways, backup and restore."""
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _conninfo(settings_dict: dict[str, Any]) -> str:
    from psycopg.conninfo import make_conninfo

    options = {k: v for k, v in (settings_dict.get("OPTIONS") or {}).items() if k in _LIBPQ_OPTIONS}
    parts = {
        "dbname": settings_dict.get("NAME"),
        "user": settings_dict.get("USER"),
        "host": settings_dict.get("HOST"),
        "port": settings_dict.get("PORT"),
        **options,
    }
    return make_conninfo("", **{k: str(v) for k, v in parts.items() if v not in (None, "")})


def _pg_env(settings_dict: dict[str, Any]) -> dict[str, str]:
    """The password goes through the environment, never the command line (``ps`` shows that)."""
    env = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    return env


def _run(command: list[str], *, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} is not installed; install the PostgreSQL client tools (the same major "
            "version as the server, or newer)."
        ) from None
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _media_copy(source: Path, target: Path) -> dict[str, int]:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.mkdir()
    files = [p for p in target.rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def _vectors_dump(folder: Path, mode: VectorsMode) -> dict[str, Any] | None:
    if mode == "none":
        return None
    store = vectors.get_store()
    dumped = store_backup.dump(store, folder, portable=mode == "portable")
    return {
        "engine": dumped.engine,
        "format": dumped.format,
        "collection": dumped.collection,
        "points": dumped.points,
        "embedding_model": settings.EMBEDDING_MODEL,
        "note": dumped.note,
        "checksum": dumped.checksum,
    }


def _write_sums(folder: Path) -> None:
    lines = [f"{_sha256(p)}  {p.relative_to(folder).as_posix()}" for p in _files(folder) if p.name != SUMS]
    (folder / SUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _files(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- verify and restore -----------------------------------------------------------------------


def backup_verify(*, source: Path) -> dict[str, Any]:
    """The manifest of the backup folder ``source``, once every file matches SHA256SUMS and
    every file the manifest names is there; :class:`BackupError` naming what is wrong otherwise."""
    manifest_path, sums_path = source / MANIFEST, source / SUMS
    if not manifest_path.is_file() or not sums_path.is_file():
        raise BackupError(f"{source} is not a backup folder (no {MANIFEST} or {SUMS}).")
    expected: dict[str, str] = {}
    for line in sums_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            expected[name] = digest
    present = {p.relative_to(source).as_posix() for p in _files(source) if p.name != SUMS}
    problems = [f"missing: {name}" for name in sorted(set(expected) - present)]
    problems += [f"not in {SUMS}: {name}" for name in sorted(present - set(expected))]
    problems += [
        f"checksum differs: {name}"
        for name in sorted(set(expected) & present)
        if _sha256(source / name) != expected[name]
    ]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise BackupError(f"The backup {source} is damaged: {shown}.")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"Backup format {manifest.get('format')!r} is not the one this version reads ({FORMAT}).")
    return manifest


def target_contents() -> list[str]:
    """What this installation already holds (empty when it is blank): a restore replaces it."""
    found: list[str] = []
    try:
        organizations, documents = Organization.objects.count(), Document.objects.count()
    except DatabaseError:  # not migrated yet: no tables, no data
        organizations = documents = 0
    if organizations or documents:
        found.append(f"{organizations} organization(s) and {documents} document(s) in the database")
    points = store_backup.points_total(vectors.get_store())
    if points:
        found.append(f"{points} point(s) in the vector store")
    media = Path(settings.MEDIA_ROOT)
    files = sum(1 for p in media.rglob("*") if p.is_file()) if media.is_dir() else 0
    if files:
        found.append(f"{files} uploaded file(s) under {media}")
    return found


def backup_restore(
    *, source: Path, database: bool = True, media: bool = True, vectors_too: bool = True, on_step: Step = _nothing
) -> RestoreResult:
    """Replace this installation's database, uploaded files and vectors by the backup's.

    Precondition: the caller checked :func:`target_contents` (the command asks for ``--yes``),
    and no other process uses the database or the embedded store (stop web and workers). The
    backup is verified first and nothing is touched if it is damaged, or if it needs a database
    engine, migrations or an embedding model this installation does not have."""
    manifest = backup_verify(source=source)
    restored: list[str] = []
    db_info = manifest["database"]
    vec_info = manifest.get("vectors")
    connection = connections[DEFAULT_DB_ALIAS]
    if database:
        if db_info["engine"] != connection.vendor:
            raise BackupError(
                f"The backup holds a {db_info['engine']} database; this installation uses {connection.vendor}."
            )
        unknown = sorted(set(manifest.get("migrations", [])) - _known_migrations())
        if unknown:
            raise BackupError(
                f"The backup's database ran migrations this code does not have ({', '.join(unknown[:5])}); "
                "restore it with the Resolvo version that made it."
            )
    if vectors_too and vec_info:
        collection = vectors.get_store().collection
        if vec_info["collection"] != collection:
            raise BackupError(
                f"The backup's vectors are in {vec_info['collection']!r} (embedding model "
                f"{vec_info.get('embedding_model')!r}); this installation uses {collection!r}. Restore without "
                "the vectors (--skip-vectors) and rebuild them: manage.py reindex --all --wait."
            )
    if database:
        on_step("database")
        settings_dict = connection.settings_dict
        connections.close_all()
        if db_info["engine"] == "postgresql":
            database_restore_postgres(settings_dict=settings_dict, source=source / db_info["file"])
        else:
            database_copy_sqlite(source=source / db_info["file"], target=Path(settings_dict["NAME"]))
        restored.append("database")
    if media and manifest.get("media") is not None:
        on_step("media")
        _media_replace(source / MEDIA_DIR, Path(settings.MEDIA_ROOT))
        restored.append("media")
    mismatches: list[str] = []
    if vectors_too and vec_info:
        on_step("vectors")
        points = store_backup.load(
            vectors.get_store(), source / VECTORS_DIR, format=vec_info["format"], checksum=vec_info.get("checksum", "")
        )
        restored.append("vectors")
        if points != vec_info["points"]:
            mismatches.append(f"vector points: {points}, the backup had {vec_info['points']}")
    if database:
        now = model_counts()
        mismatches += [
            f"{label}: {now.get(label)} row(s), the backup had {count}"
            for label, count in manifest["counts"].items()
            if now.get(label) != count
        ]
    return RestoreResult(manifest, restored, mismatches, _unapplied_migrations() if database else 0)


def _known_migrations() -> set[str]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {f"{app}.{name}" for app, name in loader.disk_migrations}


def _unapplied_migrations() -> int:
    return len(_known_migrations() - set(_applied_migrations()))


def _media_replace(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for child in target.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    shutil.copytree(source, target, dirs_exist_ok=True)


# --- after a restore: which documents' points are not all there ---------------------------------


def documents_missing_points(*, documents: Iterable[Document]) -> list[int]:
    """The documents (of those given) that are not ``indexed`` with exactly ``chunk_count`` points
    in the vector store: what ``reindex --missing`` queues after a restore or an interruption."""
    store = vectors.get_store()
    missing: list[int] = []
    kbs: dict[int, str] = {}
    for doc in documents:
        if doc.status != Document.Status.INDEXED:
            missing.append(doc.pk)
            continue
        org = kbs.get(doc.knowledge_base_id)
        if org is None:
            org = kbs[doc.knowledge_base_id] = str(
                KnowledgeBase.objects.values_list("organization_id", flat=True).get(pk=doc.knowledge_base_id)
            )
        if store.count(org=org, document=str(doc.pk)) != doc.chunk_count:
            missing.append(doc.pk)
    return missing
