"""Cross-language retrieval on the E-Manual set: translated questions against the same questions
in English, through ``chunks_search`` exactly as the engine calls it.

    python bench/ingest.py --data-dir /tmp/em          # once: the corpus, with both vectors
    python bench/multilingual.py --data-dir /tmp/em

Reads ``questions-multilingual.jsonl`` (30 development questions translated by hand into Spanish,
German and French) and ``questions.jsonl``. For each translated question: retrieval with no
language (the English-only two-list fusion), with the language detected from the text
(``answers.language.detect``, what the engine passes) and with the labelled language. Prints
document recall@5 and MRR@5 per language, the ratio to the English originals, the English set
as a whole (so a change for other languages can be checked not to cost English anything), and
the multilingual model's question-embedding time.

    python bench/multilingual.py --sizes 100000

times the store side of a question in another language at N chunks instead (no data dir): the
tenant-filtered dense and BM25 candidates in one batched request, the multilingual vector's
candidates, a BM25-only list (the heading feedback) and the four-list fusion, against the
English two-list path on the same store. Vectors are random unit vectors (timing only); BM25 vectors come from real texts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _setup import DATASET, django_embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="an index made by bench/ingest.py --data-dir")
    parser.add_argument("--org", default="bench")
    parser.add_argument("--kb", default="emanual")
    parser.add_argument("--sizes", default="", help="time the store side at these chunk counts instead")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    if args.sizes:
        bench_store([int(n) for n in args.sizes.split(",")], args.queries)
        return
    if not args.data_dir:
        parser.error("--data-dir is required (or --sizes)")
    django_embedded(args.data_dir)

    from resolvo.answers import language as lang
    from resolvo.answers.evaluation import distinct, recall_at, reciprocal_rank
    from resolvo.knowledge import vectors
    from resolvo.knowledge.selectors import chunks_search, knowledge_base_for_operator

    kb = knowledge_base_for_operator(org_slug=args.org, name=args.kb)
    if vectors.multilingual_embedder() is None or not vectors.chunks_collection()[1]:
        print("the multilingual model is off or not installed: only the English-only fusion is measured")

    def ranked(question: str, language: str | None) -> list[str]:
        chunks = chunks_search(knowledge_base=kb, query=question, limit=30, language=language)
        return distinct(c.doc_key for c in chunks)

    def scores(rows: list[tuple[list[str], list[str]]]) -> tuple[float, float]:
        r5 = statistics.fmean(recall_at(docs, gold, 5) for docs, gold in rows)
        mrr = statistics.fmean(reciprocal_rank(docs, gold, 5) for docs, gold in rows)
        return r5, mrr

    english = [json.loads(line) for line in (DATASET / "questions.jsonl").read_text().splitlines() if line.strip()]
    translated = [
        json.loads(line) for line in (DATASET / "questions-multilingual.jsonl").read_text().splitlines() if line.strip()
    ]
    by_id = {q["id"]: q for q in english}
    english_ranked = {q["id"]: ranked(q["question"], None) for q in english}
    detected_as: dict[str, int] = {}
    rows: dict[tuple[str, str], list[tuple[list[str], list[str]]]] = {}
    for q in translated:
        original = by_id[q["id"].split("::")[0]]
        detected = lang.detect(q["question"]).language
        detected_as[f"{q['lang']}->{detected}"] = detected_as.get(f"{q['lang']}->{detected}", 0) + 1
        for variant, language in (("no language", None), ("detected", detected), ("labelled", q["lang"])):
            rows.setdefault((variant, q["lang"]), []).append((ranked(q["question"], language), q["gold_doc_ids"]))
            rows.setdefault((variant, "all"), []).append(rows[(variant, q["lang"])][-1])
        rows.setdefault(("english original", q["lang"]), []).append((english_ranked[original["id"]], q["gold_doc_ids"]))
        rows.setdefault(("english original", "all"), []).append(rows[("english original", q["lang"])][-1])

    base = scores(rows[("english original", "all")])[0]
    print(f"\n{'retrieval':>18} {'lang':>4} {'n':>3} {'recall@5':>9} {'MRR@5':>7} {'÷ English r@5':>14}")
    for variant in ("english original", "no language", "detected", "labelled"):
        for language in ("es", "de", "fr", "all"):
            r5, mrr = scores(rows[(variant, language)])
            n = len(rows[(variant, language)])
            print(f"{variant:>18} {language:>4} {n:>3} {r5:>9.3f} {mrr:>7.3f} {r5 / base:>14.2f}")
    print("language detection:", ", ".join(f"{k} {v}" for k, v in sorted(detected_as.items())))
    all_rows = [(english_ranked[q["id"]], q["gold_doc_ids"]) for q in english]
    r5, mrr = scores(all_rows)
    print(f"\nEnglish development set ({len(all_rows)} questions, no language): recall@5 {r5:.4f}  MRR@5 {mrr:.4f}")

    model = vectors.multilingual_embedder()
    if model is not None:
        model.embed_query("warm up")
        times = []
        for q in translated:
            t = time.perf_counter()
            model.embed_query(q["question"])
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(
            f"multilingual question embedding: p50 {times[len(times) // 2]:.1f} ms, "
            f"p95 {times[int(0.95 * (len(times) - 1))]:.1f} ms"
        )


def bench_store(sizes: list[int], n_queries: int) -> None:
    import tempfile
    import uuid

    import numpy as np

    from ingestion.fusion import weighted_rrf
    from ingestion.sparse import SparseEncoder
    from ingestion.store import StoredPoint
    from ingestion.store.edge import EdgeStore

    rng = np.random.default_rng(0)
    encoder = SparseEncoder()
    texts = [f.read_text(encoding="utf-8")[:1500] for f in sorted((DATASET / "corpus").glob("*.md"))]
    sparse_docs = [encoder.embed_document(t) for t in texts]
    questions = [json.loads(line)["question"] for line in (DATASET / "questions.jsonl").read_text().splitlines()]
    sparse_queries = [encoder.embed_query(q) for q in questions[:n_queries]]

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, 384)).astype(np.float32)
        out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]

    print(f"\n{'chunks':>8} {'English p50':>12} {'p95':>7} {'other language p50':>19} {'p95':>7}  (ms, store + fusion)")
    for n in sizes:
        other = max(1, n // 10)  # a second tenant's chunks share the collection
        dense, multilingual = unit(n + other), unit(n + other)
        store = EdgeStore.open(
            path=tempfile.mkdtemp(prefix="resolvo-bench-ml-"),
            collection="bench",
            dimension=384,
            multilingual_dimension=384,
        )
        for start in range(0, n + other, 1000):
            store.upsert(
                [
                    StoredPoint(
                        id=str(uuid.UUID(int=i + 1)),
                        dense=dense[i],
                        sparse=sparse_docs[i % len(sparse_docs)],
                        payload={"org": "1" if i < n else "2", "kb": "1" if i < n else "2", "document": str(i // 3)},
                        multilingual=multilingual[i],
                    )
                    for i in range(start, min(start + 1000, n + other))
                ]
            )
        q_dense, q_multilingual = unit(len(sparse_queries)), unit(len(sparse_queries))
        two: list[float] = []
        three: list[float] = []
        for qd, qm, qs in zip(q_dense, q_multilingual, sparse_queries, strict=True):
            t = time.perf_counter()
            d, s = store.candidates(org="1", kb="1", dense=qd, sparse=qs, limit=50, with_vectors=True)
            weighted_rrf([[h.id for h in d], [h.id for h in s]], [0.5, 3.0], k=10)
            two.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            d, s = store.candidates(org="1", kb="1", dense=qd, sparse=qs, limit=50, with_vectors=True)
            m = store.multilingual_candidates(org="1", kb="1", vector=qm, limit=50, with_vectors=True)
            f = store.lexical_candidates(
                org="1", kb="1", sparse=sparse_docs[len(three) % 50], limit=50, with_vectors=True
            )
            lists = [[h.id for h in hits] for hits in (d, s, m, f)]
            weighted_rrf(lists, [0.5, 0.5, 3.0, 1.0], k=10)
            three.append((time.perf_counter() - t) * 1000)
        store.close()
        print(f"{n:>8} {pct(two, 50):>12.2f} {pct(two, 95):>7.2f} {pct(three, 50):>19.2f} {pct(three, 95):>7.2f}")


if __name__ == "__main__":
    main()
