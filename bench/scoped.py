"""Scoped retrieval: recall@5 / MRR@5 on the E-Manual questions, unscoped vs scoped to each
question's manual, through ``chunks_search`` (the tag filter runs inside the vector store).

    python bench/ingest.py --data-dir /tmp/tags/em [--distractors]   # once: the index
    python bench/scoped.py --data-dir /tmp/tags/em [--limit N] [--k 5]

The scope of a question is the tag its gold document carries from its front matter's ``manual``
(``Samsung Smart TV / Smart Remote e-manual`` -> ``samsung-smart-tv-smart-remote-e-manual``), read
from the gold section's file, exactly as ingestion derives it: what a widget on that product's
page would send. Both runs use the same index and process; per-query latency is reported too
(noisy on a shared machine: compare the two, not the absolutes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _setup import DATASET, django_embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the embedded data written by bench/ingest.py")
    parser.add_argument("--questions", default=str(DATASET / "questions.jsonl"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()

    django_embedded(args.data_dir)
    from ingestion.parse.markdown import split_front_matter
    from ingestion.tags import tags_from_metadata
    from resolvo.answers.evaluation import distinct, recall_at, reciprocal_rank
    from resolvo.knowledge.models import Document
    from resolvo.knowledge.selectors import chunks_search, knowledge_base_for_operator

    kb = knowledge_base_for_operator(org_slug="bench", name="emanual")
    questions = [json.loads(line) for line in open(args.questions, encoding="utf-8") if line.strip()]
    if args.limit:
        questions = questions[: args.limit]
    tagged = Document.objects.filter(knowledge_base=kb, status=Document.Status.INDEXED).exclude(source_tags=[])
    print(f"index: {kb.documents.filter(status='indexed').count()} documents, {tagged.count()} with source tags")

    def scope_of(question: dict[str, object]) -> list[str]:
        tags: list[str] = []
        for doc_id in question["gold_doc_ids"]:  # type: ignore[union-attr]
            for folder in ("corpus", "distractors"):
                path = DATASET / folder / f"{doc_id}.md"
                if path.exists():
                    tags += tags_from_metadata(split_front_matter(path.read_text(encoding="utf-8"))[0])
                    break
        return sorted(set(tags))

    depth = max(30, 3 * args.k)
    results: dict[str, dict[str, list[float]]] = {}
    for name in ("unscoped", "scoped"):
        recall: list[float] = []
        rr: list[float] = []
        ms: list[float] = []
        leaks = 0
        for q in questions:
            gold = list(q["gold_doc_ids"])
            tags = scope_of(q) if name == "scoped" else None
            t0 = time.perf_counter()
            chunks = chunks_search(knowledge_base=kb, query=str(q["question"]), limit=depth, tags=tags)
            ms.append((time.perf_counter() - t0) * 1000)
            ranked = distinct(c.doc_key for c in chunks)
            recall.append(recall_at(ranked, gold, args.k))
            rr.append(reciprocal_rank(ranked, gold, args.k))
            if tags:
                found = Document.objects.filter(pk__in={c.document_id for c in chunks}).values_list(
                    "source_tags", "tags"
                )
                leaks += sum(1 for source_tags, own in found if not set(source_tags + own) & set(tags))
        results[name] = {"recall": recall, "rr": rr, "ms": ms}
        if name == "scoped":
            print(f"scoped results from documents outside the question's manual: {leaks}")

    print(f"\n{len(questions)} questions, k={args.k}")
    print(f"| run | recall@{args.k} | MRR@{args.k} | p50 ms | p95 ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        ms_sorted = sorted(r["ms"])
        p95 = ms_sorted[min(len(ms_sorted) - 1, int(0.95 * len(ms_sorted)))]
        print(
            f"| {name} | {statistics.mean(r['recall']):.3f} | {statistics.mean(r['rr']):.3f} | "
            f"{statistics.median(ms_sorted):.1f} | {p95:.1f} |"
        )


if __name__ == "__main__":
    main()
