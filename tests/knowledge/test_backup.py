"""Backups and restores for real: PostgreSQL (pg_dump/pg_restore), the embedded store (qdrant-edge)
and the server adapter through qdrant-client's local mode, the uploaded files, and re-indexing
everything from the database into a wiped vector store.

Each round trip indexes documents of two organizations, backs up, wipes, restores (or re-indexes)
and checks that search returns the same chunks, each organization only its own.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from ingestion.store import backup as store_backup
from resolvo.knowledge import backup, jobs, services, vectors
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.knowledge.selectors import chunks_search
from resolvo.organizations.models import Organization

pytestmark = pytest.mark.django_db(transaction=True)

ACME = {
    "reset.md": b"# Resetting the Lumen Hub\n\n## Factory reset\nHold the pinhole button for 15 seconds until the "
    b"ring flashes amber. All rooms and scenes are erased.\n\n## Soft reset\nUnplug the hub for ten seconds.",
    "bulbs.md": b"# Pairing bulbs\n\nSwitch a bulb on and off three times; it blinks twice when it is paired. "
    b"Bulbs pair with the hub nearest to them.",
}
GLOBEX = {
    "reset.md": b"# Resetting the Globex router\n\n## Factory reset\nPress the recessed key for 30 seconds until "
    b"the lamp turns red. Your Wi-Fi name and password return to the label's.",
    "billing.md": b"# Invoices\n\nInvoices are emailed on the first day of each month and can be paid by card.",
}
QUERIES = ["factory reset", "pair a bulb", "invoice by card"]


@pytest.fixture(params=["edge", "local"])
def store_kind(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> Iterator[str]:
    """The embedded engine, or the server adapter through qdrant-client's local mode."""
    vectors.reset()
    settings.QDRANT_PATH = tmp_path / "qdrant"
    settings.QDRANT_URL = "" if request.param == "edge" else f"local:{tmp_path / 'qdrant-local'}"
    settings.MEDIA_ROOT = tmp_path / "media"
    yield str(request.param)
    vectors.reset()


def index_two_organizations() -> dict[str, KnowledgeBase]:
    kbs = {}
    for slug, files in (("acme", ACME), ("globex", GLOBEX)):
        org = Organization.objects.create(slug=slug, name=slug.title())
        kb = services.knowledge_base_create(organization=org, name="help")
        for name, content in files.items():
            doc = services.document_upload(knowledge_base=kb, filename=name, content=content, enqueue=False)
            assert jobs.document_ingest_run(document_id=doc.pk).status == Document.Status.INDEXED
        kbs[slug] = kb
    return kbs


def search_all() -> dict[tuple[str, str], list[tuple[str, int, str]]]:
    """Every query in every organization's knowledge base: (chunk id, document id, text) per hit,
    and each hit checked to be a document of that organization."""
    results = {}
    for kb in KnowledgeBase.objects.select_related("organization").order_by("organization__slug"):
        own = set(Document.objects.filter(knowledge_base=kb).values_list("pk", flat=True))
        for query in QUERIES:
            hits = chunks_search(knowledge_base=kb, query=query, limit=10)
            assert {h.document_id for h in hits} <= own, "a search crossed organizations"
            results[(kb.organization.slug, query)] = [(h.chunk_id, h.document_id, h.text) for h in hits]
    return results


def wipe_everything(settings: Any) -> None:
    Organization.objects.all().delete()
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    store_backup.wipe(vectors.get_store())
    assert backup.target_contents() == []


def run_backup(target: Path, *args: str) -> Path:
    out = io.StringIO()
    call_command("backup", "--to", str(target), *args, stdout=out)
    (folder,) = target.glob(f"{backup.PREFIX}*")
    assert f"Backup written to {folder}" in out.getvalue()
    return folder


def test_backup_wipe_restore_gives_back_the_same_search_results(store_kind: str, settings: Any, tmp_path: Path) -> None:
    index_two_organizations()
    before = search_all()
    assert all(before[("acme", "factory reset")]) and before[("acme", "factory reset")] != []
    points = store_backup.points_total(vectors.get_store())

    folder = run_backup(tmp_path / "backups")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["database"]["engine"] == "postgresql"
    assert manifest["counts"]["knowledge.Document"] == 4 and manifest["counts"]["organizations.Organization"] == 2
    assert manifest["media"] == {"files": 4, "bytes": sum(map(len, [*ACME.values(), *GLOBEX.values()]))}
    assert manifest["vectors"]["points"] == points > 0
    if store_kind == "edge":
        assert manifest["vectors"]["format"] == "edge-shard"
    else:  # qdrant-client's local mode has no snapshots: the points are exported, and that is said
        assert manifest["vectors"]["format"] == "points"
        assert "no snapshots" in manifest["vectors"]["note"]
    sums = (folder / "SHA256SUMS").read_text().splitlines()
    assert any(line.endswith("  database.pgdump") for line in sums)
    assert any(line.endswith("  manifest.json") for line in sums)

    wipe_everything(settings)
    assert search_all() == {}

    out = io.StringIO()
    call_command("restore", "--from", str(folder), stdout=out)  # an empty target needs no --yes
    assert "Restored: database, media, vectors." in out.getvalue()
    assert "differs" not in out.getvalue()
    connections.close_all()
    assert search_all() == before
    assert store_backup.points_total(vectors.get_store()) == points
    # The originals are back too: every document can be read and re-indexed from them.
    out = io.StringIO()
    call_command("reindex", "--all", "--missing", stdout=out)
    assert "Nothing to re-index in every organization." in out.getvalue()
    originals = {("acme", n): c for n, c in ACME.items()} | {("globex", n): c for n, c in GLOBEX.items()}
    for doc in Document.objects.select_related("knowledge_base__organization"):
        with doc.file.open("rb") as fh:
            assert fh.read() == originals[(doc.knowledge_base.organization.slug, doc.source)]


def test_a_portable_backup_moves_the_vectors_from_the_embedded_store_to_the_server_adapter(
    settings: Any, tmp_path: Path
) -> None:
    vectors.reset()
    settings.QDRANT_URL, settings.QDRANT_PATH, settings.MEDIA_ROOT = "", tmp_path / "qdrant", tmp_path / "media"
    try:
        index_two_organizations()
        before = {key: {hit[0] for hit in hits} for key, hits in search_all().items()}
        folder = run_backup(tmp_path / "backups", "--vectors", "portable")
        assert json.loads((folder / "manifest.json").read_text())["vectors"]["format"] == "points"
        Organization.objects.all().delete()
        vectors.reset()
        settings.QDRANT_URL = f"local:{tmp_path / 'qdrant-local'}"  # the production adapter from here on
        call_command("restore", "--from", str(folder), "--yes", stdout=io.StringIO())
        connections.close_all()
        # Same chunks (the engines' BM25 scores may order ties differently).
        assert {key: {hit[0] for hit in hits} for key, hits in search_all().items()} == before
    finally:
        vectors.reset()


def test_restore_refuses_to_overwrite_data_without_yes_and_refuses_a_damaged_backup(
    store_kind: str, tmp_path: Path
) -> None:
    index_two_organizations()
    folder = run_backup(tmp_path / "backups", "--vectors", "none", "--no-media")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["vectors"] is None and manifest["media"] is None

    with pytest.raises(CommandError, match=r"already holds data.*2 organization\(s\) and 4 document\(s\).*--yes"):
        call_command("restore", "--from", str(folder), stdout=io.StringIO())

    out = io.StringIO()
    call_command("restore", "--from", str(folder), "--check", stdout=out)
    assert "every file matches its checksum" in out.getvalue()

    dump = folder / "database.pgdump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    with pytest.raises(CommandError, match=r"is damaged: checksum differs: database\.pgdump"):
        call_command("restore", "--from", str(folder), "--yes", stdout=io.StringIO())
    (folder / "extra.txt").write_text("?")
    with pytest.raises(CommandError, match=r"not in SHA256SUMS: extra\.txt"):
        call_command("restore", "--from", str(folder), "--check", stdout=io.StringIO())
    with pytest.raises(CommandError, match="is not a backup folder"):
        call_command("restore", "--from", str(tmp_path), "--check", stdout=io.StringIO())
    assert Document.objects.count() == 4  # nothing was touched


def test_vectors_of_another_embedding_model_are_not_restored(store_kind: str, tmp_path: Path) -> None:
    index_two_organizations()
    folder = run_backup(tmp_path / "backups")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["vectors"]["collection"] = "chunks__other-model__768"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    backup._write_sums(folder)  # a consistent backup, made under another model
    with pytest.raises(CommandError, match=r"--skip-vectors.*reindex --all"):
        call_command("restore", "--from", str(folder), "--yes", stdout=io.StringIO())
    out = io.StringIO()
    call_command("restore", "--from", str(folder), "--yes", "--skip-vectors", stdout=out)
    assert "Restored: database, media." in out.getvalue()
    assert "reindex --all --wait" in out.getvalue()


def test_reindex_rebuilds_a_wiped_vector_store_from_the_database(
    store_kind: str, settings: Any, tmp_path: Path
) -> None:
    """Embedded mode (this process is the worker), on both engines."""
    from workers.celery import app

    index_two_organizations()
    before = search_all()
    store_backup.wipe(vectors.get_store())
    assert all(hits == [] for hits in search_all().values())

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    try:
        out = io.StringIO()
        call_command("reindex", "--all", "--missing", "--wait", stdout=out)
        assert "Re-indexed every organization: indexed 4, failed 0 of 4 document(s)." in out.getvalue()
        assert search_all() == before

        # Resumable and scoped: one organization's points lost again, only its documents go.
        acme = Organization.objects.get(slug="acme")
        vectors.get_store().delete_where(org=str(acme.pk))
        out = io.StringIO()
        call_command("reindex", "--org", "acme", "--missing", "--wait", stdout=out)
        assert "indexed 2, failed 0 of 2 document(s)" in out.getvalue()
        out = io.StringIO()
        call_command("reindex", "--all", "--missing", stdout=out)
        assert "Nothing to re-index" in out.getvalue()
        # A full re-index of what is all there embeds nothing new and changes no result.
        call_command("reindex", "--org", "globex", "--kb", "help", "--wait", stdout=io.StringIO())
        assert search_all() == before
    finally:
        app.conf.task_always_eager = False


def test_reindex_through_a_real_worker(celery_worker: Any, vector_store: Any) -> None:
    index_two_organizations()
    before = search_all()
    store_backup.wipe(vector_store)
    out = io.StringIO()
    call_command("reindex", "--all", "--wait", stdout=out)
    assert "indexed 4, failed 0 of 4 document(s)" in out.getvalue()
    assert search_all() == before


def test_reindex_scope_arguments(db: None) -> None:
    with pytest.raises(CommandError, match="one of the arguments --all --org is required"):
        call_command("reindex", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--kb needs --org"):
        call_command("reindex", "--all", "--kb", "help", stdout=io.StringIO())
    with pytest.raises(CommandError, match="nobody"):
        call_command("reindex", "--org", "nobody", stdout=io.StringIO())


@pytest.mark.skipif(shutil.which("pg_restore") is None, reason="needs the PostgreSQL client tools")
def test_a_dump_restores_into_a_new_database(store_kind: str, tmp_path: Path) -> None:
    """The path to a new server: pg_restore the dump into a scratch database, created and dropped here."""
    import psycopg

    index_two_organizations()
    folder = run_backup(tmp_path / "backups", "--vectors", "none")
    settings_dict = dict(connection.settings_dict)
    scratch = f"{settings_dict['NAME']}_restore_scratch"
    admin = backup._conninfo({**settings_dict, "NAME": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        backup.database_restore_postgres(
            settings_dict={**settings_dict, "NAME": scratch}, source=folder / "database.pgdump"
        )
        with psycopg.connect(backup._conninfo({**settings_dict, "NAME": scratch})) as conn:
            sources = conn.execute(
                "SELECT o.slug, d.source FROM knowledge_document d JOIN knowledge_knowledgebase k "
                "ON k.id = d.knowledge_base_id JOIN organizations_organization o ON o.id = k.organization_id "
                "ORDER BY 1, 2"
            ).fetchall()
        assert sources == [("acme", "bulbs.md"), ("acme", "reset.md"), ("globex", "billing.md"), ("globex", "reset.md")]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def test_sqlite_online_backup_copies_a_database_in_wal_mode_while_it_is_open(tmp_path: Path) -> None:
    """The embedded mode's database: sqlite3's online backup API, both ways."""
    live = tmp_path / "resolvo.sqlite3"
    writer = sqlite3.connect(live)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    writer.commit()  # committed into the WAL, not yet checkpointed into the main file
    try:
        backup.database_copy_sqlite(source=live, target=tmp_path / "copy.sqlite3")
        copy = sqlite3.connect(tmp_path / "copy.sqlite3")
        assert copy.execute("SELECT count(*), sum(x) FROM t").fetchone() == (1000, 499500)
        copy.close()
        writer.execute("DELETE FROM t")
        writer.commit()
        backup.database_copy_sqlite(source=tmp_path / "copy.sqlite3", target=live)
        assert writer.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    finally:
        writer.close()
