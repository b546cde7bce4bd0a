"""Backing up and restoring a whole collection, for the operator's ``backup`` and ``restore``.

Unlike every other store operation these work on all organizations at once: a backup is the
operator's, never a tenant's. Three formats, the fastest one each engine offers:

- ``edge-shard``: the embedded engine's shard folder, copied with every write flushed and held off
  (:meth:`EdgeStore.copy_to`); restored by putting the folder back in place.
- ``qdrant-snapshot``: a Qdrant server's collection snapshot (its snapshot API), downloaded;
  restored by uploading it, which recovers points, vectors and indexes.
- ``points``: every point (id, dense and sparse vectors, payload) as gzipped JSON lines, restored
  by upserting. Works on every engine, so it also moves a collection between them (embedded to a
  server); the only one qdrant-client's local mode can do, as it has no snapshots.

Vectors can always be rebuilt from the documents (``manage.py reindex``); a vector backup only
saves the embedding time.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingestion.sparse import SparseVector
from ingestion.store.base import StoredPoint, VectorStore
from ingestion.store.edge import EdgeStore
from ingestion.store.server import ServerStore, SnapshotsUnsupported

Format = Literal["edge-shard", "qdrant-snapshot", "points"]
Engine = Literal["edge", "server", "local"]

SHARD_DIR = "shard"
SNAPSHOT_FILE = "collection.snapshot"
POINTS_FILE = "points.jsonl.gz"
_BATCH = 256


@dataclass(frozen=True)
class VectorDump:
    engine: Engine
    format: Format
    collection: str
    points: int
    note: str = ""
    checksum: str = ""
    """The server's snapshot checksum (``qdrant-snapshot`` only), checked again on upload."""


def engine_of(store: VectorStore) -> Engine:
    if isinstance(store, EdgeStore):
        return "edge"
    if isinstance(store, ServerStore):
        return "server" if store.url else "local"
    raise TypeError(f"no backup support for {type(store).__name__}")


def points_total(store: VectorStore) -> int:
    """How many points the collection holds, all organizations together."""
    return _engine(store).points_total()


def wipe(store: VectorStore) -> None:
    """Drop every point of the collection (it stays, empty, with its indexes)."""
    _engine(store).wipe()


def dump(store: VectorStore, folder: Path, *, portable: bool = False) -> VectorDump:
    """Write the collection into ``folder`` (created) in the engine's native format, or as
    ``points`` when ``portable`` or when the engine has no native one."""
    folder.mkdir(parents=True)
    engine = engine_of(store)
    total = points_total(store)
    if not portable and isinstance(store, EdgeStore):
        store.copy_to(str(folder / SHARD_DIR))
        return VectorDump(engine, "edge-shard", store.collection, total)
    note = ""
    if not portable and isinstance(store, ServerStore):
        try:
            checksum = store.snapshot_download(folder / SNAPSHOT_FILE)
            return VectorDump(engine, "qdrant-snapshot", store.collection, total, checksum=checksum)
        except SnapshotsUnsupported:
            note = "qdrant-client's local mode has no snapshots; the points were exported instead"
    written = _write_points(_engine(store).scroll_all(), folder / POINTS_FILE)
    return VectorDump(engine, "points", store.collection, written, note=note)


def load(store: VectorStore, folder: Path, *, format: Format, checksum: str = "") -> int:
    """Replace the collection's points by those in ``folder`` (written by :func:`dump`) and
    return how many the collection holds afterwards."""
    engine = _engine(store)
    if format == "edge-shard":
        if not isinstance(engine, EdgeStore):
            raise ValueError("an edge-shard backup restores into the embedded store only; back up with --portable")
        engine.replace_with(str(folder / SHARD_DIR))
    elif format == "qdrant-snapshot":
        if not isinstance(engine, ServerStore) or not engine.url:
            raise ValueError("a Qdrant snapshot restores into a Qdrant server only; back up with --portable")
        engine.snapshot_upload(folder / SNAPSHOT_FILE, checksum=checksum or None)
    else:
        engine.wipe()
        batch: list[StoredPoint] = []
        for point in _read_points(folder / POINTS_FILE):
            batch.append(point)
            if len(batch) >= _BATCH:
                store.upsert(batch)
                batch = []
        store.upsert(batch)
    return engine.points_total()


def _engine(store: VectorStore) -> EdgeStore | ServerStore:
    if isinstance(store, EdgeStore | ServerStore):
        return store
    raise TypeError(f"no backup support for {type(store).__name__}")


def _write_points(points: Iterator[StoredPoint], path: Path) -> int:
    count = 0
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for p in points:
            record = {
                "id": p.id,
                "dense": [float(x) for x in p.dense],
                "sparse": {"indices": list(p.sparse.indices), "values": list(p.sparse.values)},
                "payload": p.payload,
            }
            if p.multilingual is not None:
                record["multilingual"] = [float(x) for x in p.multilingual]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _read_points(path: Path) -> Iterator[StoredPoint]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            sparse = r["sparse"]
            yield StoredPoint(
                id=r["id"],
                dense=r["dense"],
                sparse=SparseVector(indices=sparse["indices"], values=sparse["values"]),
                payload=r["payload"],
                multilingual=r.get("multilingual"),
            )
