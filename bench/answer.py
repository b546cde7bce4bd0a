"""Answer-path speed: tenant-filtered hybrid retrieval at 1k/10k/100k chunks, and the platform's
overhead before the first token.

    python bench/answer.py [--sizes 1000,10000,100000] [--queries 200] [--ttft 20] [--local-mode]

Retrieval: the embedded store (Qdrant's engine in-process, qdrant-edge) holds N chunks of one
tenant plus a second tenant's chunks; each query fetches the tenant-filtered dense and BM25
candidate lists in one batched call and fuses them (exactly what ``chunks_search`` does after
embedding the question). Beside it, in the same run, a brute-force numpy dense search over the
same vectors and tenant. Dense vectors are real all-MiniLM-L6-v2 embeddings of the E-Manual
corpus chunks, perturbed to synthesise the larger sizes; BM25 vectors come from real section
texts. ``--local-mode`` also measures qdrant-client's local mode (slow; 1k and 10k only).

Time to first token: the answer engine on the demo help centre versus the bare model given the
identical prompt, same process; the difference is the platform's own overhead (question
embedding, retrieval, neighbour merge, prompt assembly and token counting).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time

import numpy as np
from _setup import DATASET, REPO, django_embedded


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def corpus_chunks(limit_texts: int) -> list[str]:
    from ingestion.parse import parse_bytes
    from resolvo.knowledge import vectors

    texts: list[str] = []
    for folder in ("corpus", "distractors"):
        for f in sorted((DATASET / folder).glob("*.md")):
            try:
                texts += [
                    c.embed_text
                    for c in vectors.splitter().split(parse_bytes(f.read_bytes(), filename=f.name, max_bytes=10**8))
                ]
            except Exception:
                continue
            if len(texts) >= limit_texts:
                return texts
    return texts


def bench_retrieval(sizes: list[int], n_queries: int, local_mode: bool) -> None:
    from ingestion.fusion import weighted_rrf
    from ingestion.sparse import SparseEncoder
    from ingestion.store import StoredPoint
    from ingestion.store.edge import EdgeStore
    from resolvo.answers.evaluation import load_questions
    from resolvo.knowledge import vectors

    embedder = vectors.embedder()
    sparse = SparseEncoder()
    texts = corpus_chunks(max(sizes))
    base_n = min(len(texts), 900)
    t0 = time.perf_counter()
    base = embedder.embed_documents(texts[:base_n])
    print(f"embedded {base_n} real chunks in {time.perf_counter() - t0:.1f} s; {len(texts)} texts for BM25")
    sparse_vecs = [sparse.embed_document(t) for t in texts]
    questions = [q.question for q in load_questions(DATASET / "questions.jsonl")][:n_queries]
    t0 = time.perf_counter()
    q_dense = [embedder.embed_query(q) for q in questions]
    q_ms = [(time.perf_counter() - t0) * 1000 / len(questions)]
    embed_lat = []
    for q in questions[:50]:
        t = time.perf_counter()
        embedder.embed_query(q)
        embed_lat.append((time.perf_counter() - t) * 1000)
    q_sparse = [sparse.embed_query(q) for q in questions]
    print(f"question embedding: p50 {pct(embed_lat, 50):.1f} ms, p95 {pct(embed_lat, 95):.1f} ms (mean {q_ms[0]:.1f})")
    rng = np.random.default_rng(0)
    engines = ["edge"] + (["local-mode"] if local_mode else [])
    print(
        f"\n{'chunks':>8} {'engine':>11} {'upsert s':>9} {'p50 ms':>8} {'p95 ms':>8} {'numpy p50':>10} {'numpy p95':>10} {'p95 ratio':>10}"
    )
    for n in sizes:
        idx = np.arange(n) % base_n
        dense = (
            base[idx] + rng.normal(0, 0.02, size=(n, base.shape[1])).astype(np.float32) * (idx != np.arange(n))[:, None]
        )
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        other = max(1, n // 10)  # a second tenant's chunks share the collection
        org = np.array(["1"] * n + ["2"] * other)
        all_dense = np.vstack([dense, dense[:other]])
        points = [
            StoredPoint(
                id=f"{i:08x}-0000-4000-8000-{i:012x}",
                dense=all_dense[i],
                sparse=sparse_vecs[i % len(sparse_vecs)],
                payload={"org": str(org[i]), "kb": str(org[i]), "document": str(i // 3), "position": i % 3, "text": ""},
            )
            for i in range(len(org))
        ]
        # numpy baseline: dense only, exact, same vectors, tenant mask applied
        mask = org == "1"
        np_lat = []
        for qv in q_dense:
            t = time.perf_counter()
            scores = all_dense @ qv
            scores[~mask] = -np.inf
            top = np.argpartition(-scores, 50)[:50]
            top[np.argsort(-scores[top])]
            np_lat.append((time.perf_counter() - t) * 1000)
        for engine in engines:
            if engine == "local-mode" and n > 10_000:
                continue
            path = tempfile.mkdtemp(prefix="resolvo-bench-store-")
            if engine == "edge":
                store = EdgeStore.open(path=path, collection="bench", dimension=base.shape[1])
            else:
                from ingestion.store.server import ServerStore

                store = ServerStore.connect(url=f"local:{path}", collection="bench", dimension=base.shape[1])
            t = time.perf_counter()
            for start in range(0, len(points), 1000):
                store.upsert(points[start : start + 1000])
            upsert_s = time.perf_counter() - t
            lat = []
            for qv, qs in zip(q_dense, q_sparse, strict=True):
                t = time.perf_counter()
                d_hits, s_hits = store.candidates(org="1", kb="1", dense=qv, sparse=qs, limit=50, with_vectors=True)
                fused = weighted_rrf([[h.id for h in d_hits], [h.id for h in s_hits]], [0.5, 3.0], k=10)[:5]
                lat.append((time.perf_counter() - t) * 1000)
                assert fused and all(h.payload["org"] == "1" for h in d_hits + s_hits)
            store.close()
            print(
                f"{n:>8} {engine:>11} {upsert_s:>9.1f} {pct(lat, 50):>8.2f} {pct(lat, 95):>8.2f} "
                f"{pct(np_lat, 50):>10.2f} {pct(np_lat, 95):>10.2f} {pct(lat, 95) / pct(np_lat, 95):>10.2f}"
            )


def bench_ttft(n: int) -> None:
    import io

    from django.core.management import call_command

    from resolvo.answers.engine import Trace
    from resolvo.answers.evaluation import load_questions
    from resolvo.answers.llm.base import GenerationParams
    from resolvo.answers.services import answer_engine
    from resolvo.knowledge.selectors import knowledge_base_for_operator

    call_command(
        "ingest", "--org", "lumen", "--kb", "help", "--create", str(REPO / "demo" / "helpcentre"), stdout=io.StringIO()
    )
    kb = knowledge_base_for_operator(org_slug="lumen", name="help")
    engine = answer_engine()
    backend = engine.backend
    params = GenerationParams(max_tokens=96, timeout_s=60)
    questions = [q.question for q in load_questions(REPO / "demo" / "questions.jsonl")][:n]
    # Warm both paths (model load, first-call allocations).
    list(engine.stream(knowledge_base=kb, question=questions[0], trace=Trace(question="warm")))
    sentence_end = re.compile(r"[^\s\d][.!?](\s*\[\d+\])*\s+\S|\n")
    overhead, visible, model_first, bare_first, bare_sentence = [], [], [], [], []
    outcomes: dict[str, int] = {}
    for q in questions:
        trace = Trace(question=q)
        started = time.perf_counter()
        seen = None
        for event in engine.stream(knowledge_base=kb, question=q, trace=trace):
            if event.type == "token" and seen is None:
                seen = (time.perf_counter() - started) * 1000
            if event.type == "done":
                outcome = event.as_done()["outcome"]
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if "first_token" not in trace.timings or seen is None:
            continue  # answered without generating (abstained or clarified at the gate)
        visible.append(seen)
        model_first.append(trace.timings["first_token"])
        # Rebuild the identical prompt the engine sent, then time the bare model on it: its first
        # token (what unverified streaming would show first) and its first complete sentence.
        passages = engine._retrieve(kb, trace.standalone_query, Trace(question=q))
        messages = engine._messages(q, (), passages, company=kb.organization.name)
        t = time.perf_counter()
        text = ""
        with backend.stream(messages, params) as s:
            for delta in s:
                if not text:
                    bare_first.append((time.perf_counter() - t) * 1000)
                text += delta
                if sentence_end.search(text):
                    break
        bare_sentence.append((time.perf_counter() - t) * 1000)
        pre = trace.timings.get("retrieve", 0) + trace.timings.get("prompt", 0) + trace.timings.get("condense", 0)
        overhead.append(pre)
    print(f"\nTime to first visible text over {len(visible)} demo questions ({backend.name}, {backend.model}):")
    print(f"  outcomes: {outcomes}")
    print(
        f"  engine, first visible sentence (verified)  p50 {pct(visible, 50):8.1f} ms  p95 {pct(visible, 95):8.1f} ms"
    )
    print(
        f"  engine, model's first token                p50 {pct(model_first, 50):8.1f} ms  p95 {pct(model_first, 95):8.1f} ms"
    )
    print(
        f"  bare model, first token (same prompt)      p50 {pct(bare_first, 50):8.1f} ms  p95 {pct(bare_first, 95):8.1f} ms"
    )
    print(
        f"  bare model, first sentence (same prompt)   p50 {pct(bare_sentence, 50):8.1f} ms  p95 {pct(bare_sentence, 95):8.1f} ms"
    )
    print(
        f"  overhead before generation (condense+retrieve+prompt): p50 {pct(overhead, 50):.1f} ms  p95 {pct(overhead, 95):.1f} ms"
    )
    print(
        f"  ratio engine first visible / bare first token p50: {statistics.median(visible) / statistics.median(bare_first):.2f}"
    )
    print(
        f"  ratio engine first visible / bare first sentence p50: "
        f"{statistics.median(visible) / statistics.median(bare_sentence):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--ttft", type=int, default=20, help="questions for the time-to-first-token comparison (0 skips)"
    )
    parser.add_argument("--local-mode", action="store_true", help="also measure qdrant-client's local mode")
    args = parser.parse_args()
    django_embedded()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if sizes:
        bench_retrieval(sizes, args.queries, args.local_mode)
    if args.ttft:
        bench_ttft(args.ttft)


if __name__ == "__main__":
    main()
