"""Ingestion throughput, end to end, against raw SentenceTransformer.encode in the same run.

    python bench/ingest.py [--corpus emanual|mtrag] [--distractors] [--limit N] [--data-dir DIR]

Ingests ../shared/datasets/emanual/corpus (and with --distractors the ~9.3k distractor sections;
with ``--corpus mtrag`` the 642 passages of ../shared/datasets/mtrag-dev/corpus into kb ``mtrag``)
through the real services (parse -> split -> embed -> index into the embedded Qdrant engine,
with every Document row updated), then encodes exactly the same chunk texts with a bare
``SentenceTransformer.encode`` call. Prints documents/s, chunks/s and the ratio of the two chunk
throughputs. Timings on a shared 2-core machine are noisy: read the ratio, not the absolutes.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from _setup import DATASET, MTRAG, django_embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=["emanual", "mtrag"], default="emanual", help="which data set to ingest")
    parser.add_argument("--distractors", action="store_true", help="also ingest the distractor sections")
    parser.add_argument("--limit", type=int, default=0, help="only the first N files (quick runs)")
    parser.add_argument("--data-dir", default=None, help="keep the embedded data here (reuse for bench/answer.py)")
    args = parser.parse_args()

    django_embedded(args.data_dir)
    from django.core.management import call_command

    from resolvo.knowledge import services, vectors
    from resolvo.knowledge.models import Document
    from resolvo.organizations.services import organization_ensure

    kb_name = args.corpus
    root = MTRAG if args.corpus == "mtrag" else DATASET
    files = sorted((root / "corpus").rglob("*.md"))
    if args.distractors:
        files += sorted((DATASET / "distractors").glob("*.md"))
    if args.limit:
        files = files[: args.limit]
    kb = services.knowledge_base_create(organization=organization_ensure(slug="bench"), name=kb_name)

    # Load the model and open the store outside the timed region (both happen once per process).
    model = vectors.embedder()
    model.embed_documents(["warm up"])
    vectors.get_store()
    vectors.splitter()

    contents = [(f.name, f.read_bytes()) for f in files]
    staging = Path(tempfile.mkdtemp(prefix="resolvo-bench-files-"))
    for name, data in contents:
        (staging / name).write_bytes(data)
    t0 = time.perf_counter()
    # Exactly what an admin runs: the ingest command (embedded mode: tasks run in-process).
    call_command("ingest", "--org", "bench", "--kb", kb_name, str(staging), stdout=io.StringIO())
    elapsed = time.perf_counter() - t0

    docs = Document.objects.filter(knowledge_base=kb)
    failed = docs.filter(status=Document.Status.FAILED).count()
    n_chunks = sum(d.chunk_count for d in docs.filter(status=Document.Status.INDEXED))

    # Baseline: the same chunk texts through a bare encode call, same process, same batch size.
    from ingestion.parse import parse_bytes

    texts: list[str] = []
    for name, data in contents:
        try:
            texts += [c.embed_text for c in vectors.splitter().split(parse_bytes(data, filename=name, max_bytes=10**8))]
        except Exception:
            continue
    t1 = time.perf_counter()
    model.model.encode(texts, batch_size=model.batch_size, normalize_embeddings=True, show_progress_bar=False)
    raw = time.perf_counter() - t1

    print(f"documents            {len(contents)} ({failed} failed)")
    print(f"chunks               {n_chunks} (baseline encoded {len(texts)})")
    print(
        f"end-to-end           {elapsed:.1f} s  {len(contents) / elapsed:.1f} documents/s  {n_chunks / elapsed:.1f} chunks/s"
    )
    print(f"raw encode           {raw:.1f} s  {len(texts) / raw:.1f} chunks/s")
    print(f"ratio end-to-end / raw encode chunk throughput: {(n_chunks / elapsed) / (len(texts) / raw):.2f}")


if __name__ == "__main__":
    main()
