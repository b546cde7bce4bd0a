"""Condensing modes and the answer/abstain/clarify gate on mtrag-dev (and the E-Manual set).

    python bench/ingest.py --corpus mtrag --data-dir /tmp/convs/mt      # once
    python bench/ingest.py --data-dir /tmp/convs/em                     # once, for --emanual
    python bench/conversations.py --data-dir /tmp/convs/mt [--llm] [--emanual /tmp/convs/em]

Retrieval only, no generation. Prints recall@5 of each condensing mode (off, concat, carry and with
--llm the bundled model's rewrite) against the human rewrite, on the tasks that have one and on
every answerable task; then the gate's trade-off curve: for a range of score thresholds, the
abstention rate by answerability label and the clarification rate, on a calibration part and a
held-out part of mtrag-dev (split by conversation, so turns of one conversation never straddle),
and with --emanual the abstention rate on the 349 answerable E-Manual questions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from _setup import DATASET, MTRAG, REPO, django_embedded


def _split(task_id: str) -> str:
    """'cal' or 'held' by a hash of the conversation (the id's part before '<::>')."""
    conversation = task_id.split("<::>", 1)[0]
    return "held" if hashlib.sha1(conversation.encode()).digest()[0] % 3 == 0 else "cal"


def retrieve_all(kb_name: str, questions_path: Path, modes: list[str]) -> list[dict[str, Any]]:
    """For each task and each query: the ranked documents and the gate's features."""
    from resolvo.answers import condense, gate
    from resolvo.answers.evaluation import distinct, load_questions
    from resolvo.knowledge.selectors import chunks_search, knowledge_base_for_operator

    kb = knowledge_base_for_operator(org_slug="bench", name=kb_name)
    backend = None
    if "llm" in modes:
        from resolvo.answers.services import llm_backend

        backend = llm_backend()
    rows = []
    for q in load_questions(questions_path):
        queries = {"off": q.typed, "rewrite": q.rewrite or q.question}
        for mode in modes:
            queries[mode] = condense.condense(q.typed, q.history, mode=mode, backend=backend, timeout_s=60)
        row: dict[str, Any] = {
            "id": q.id,
            "label": q.answerability,
            "gold": list(q.gold_doc_ids),
            "has_rewrite": bool(q.rewrite),
            "split": _split(q.id),
            "queries": queries,
            "ranked": {},
            "features": {},
            "options": {},
        }
        for mode, text in queries.items():
            chunks = chunks_search(knowledge_base=kb, query=text, limit=30)
            row["ranked"][mode] = distinct(c.doc_key for c in chunks)[:10]
            f = gate.features(text, chunks[:5], q.history)
            row["features"][mode] = f.as_dict()
            row["options"][mode] = gate.options_of(chunks[:5])
        rows.append(row)
    return rows


def recall_table(rows: list[dict[str, Any]], modes: list[str]) -> None:
    from resolvo.answers.evaluation import recall_at

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    with_rewrite = [r for r in rows if r["has_rewrite"] and r["gold"] and r["label"] in ("answerable", "partial")]
    answerable = [r for r in rows if r["gold"] and r["label"] in ("answerable", "partial")]
    print(f"\nrecall@5 by query ({len(with_rewrite)} tasks with a human rewrite / {len(answerable)} answerable)")
    print(f"{'query':<10} {'rewrite tasks':>14} {'÷ rewrite':>10} {'all answerable':>15}")
    base = mean([recall_at(r["ranked"]["rewrite"], r["gold"], 5) for r in with_rewrite])
    for mode in ["off", *modes, "rewrite"]:
        a = mean([recall_at(r["ranked"][mode], r["gold"], 5) for r in with_rewrite])
        b = mean([recall_at(r["ranked"][mode], r["gold"], 5) for r in answerable])
        print(f"{mode:<10} {a:>14.3f} {a / base:>10.3f} {b:>15.3f}")


def gate_curve(rows: list[dict[str, Any]], mode: str, emanual: list[dict[str, Any]]) -> None:
    from resolvo.answers import gate

    base = gate.GateConfig()
    print(f"\ngate trade-off (query: {mode}); rates per label: abstain (clarify)")
    header = f"{'min_score':>9} {'part':>5} {'answerable':>12} {'partial':>12} {'unanswerable':>13} {'underspec.':>12}"
    print(header + f" {'E-Manual abstain':>17}")
    for threshold in [0.0, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65]:
        config = replace(base, min_score=threshold)
        em = [_outcome(r["features"]["rewrite"], r["options"]["rewrite"], config) for r in emanual]
        em_rate = f"{sum(o == 'abstain' for o in em) / len(em):.3f}" if em else "-"
        for part in ("cal", "held"):
            cells = []
            for label in ("answerable", "partial", "unanswerable", "underspecified"):
                sel = [r for r in rows if r["label"] == label and r["split"] == part]
                outs = [_outcome(r["features"][mode], r["options"][mode], config) for r in sel]
                ab = sum(o == "abstain" for o in outs) / max(1, len(outs))
                cl = sum(o == "clarify" for o in outs) / max(1, len(outs))
                cells.append(f"{ab:.2f} ({cl:.2f})")
            print(
                f"{threshold:>9.2f} {part:>5} {cells[0]:>12} {cells[1]:>12} {cells[2]:>13} {cells[3]:>12} {em_rate:>17}"
            )


def _outcome(features: dict[str, float], options: list[str], config: Any) -> str:
    """The gate's decision from stored features (the same rule as ``gate.assess``)."""
    from resolvo.answers import gate

    f = gate.Features(**{k: (int(v) if k in ("documents", "unresolved") else v) for k, v in features.items()})
    return gate.decide(f, options, config).outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="/tmp/convs/mt", help="embedded data with kb bench/mtrag")
    parser.add_argument("--emanual", default="", help="embedded data dir with kb bench/emanual")
    parser.add_argument("--llm", action="store_true", help="also measure the bundled model's rewrite (slow)")
    parser.add_argument("--cache", default="", help="read/write the retrieval results here (JSON)")
    parser.add_argument("--mode", default="carry", help="the condensing mode the gate is calibrated with")
    parser.add_argument("--_emanual-child", dest="child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    modes = ["concat", "carry", *(["llm"] if args.llm else [])]

    if args.child:  # a second process: the embedded store is one per process and data dir
        django_embedded(args.child)
        rows = retrieve_all("emanual", DATASET / "questions.jsonl", [])
        print(json.dumps(rows))
        return

    django_embedded(args.data_dir)
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists():
        data = json.loads(cache.read_text())
    else:
        data = {"mtrag": retrieve_all("mtrag", MTRAG / "questions.jsonl", modes), "emanual": []}
        if args.emanual:
            out = subprocess.run(
                [sys.executable, str(REPO / "bench" / "conversations.py"), "--_emanual-child", args.emanual],
                check=True,
                capture_output=True,
                text=True,
            )
            data["emanual"] = json.loads(out.stdout.strip().splitlines()[-1])
        if cache:
            cache.write_text(json.dumps(data))
    recall_table(data["mtrag"], [m for m in modes if m in data["mtrag"][0]["queries"]])
    gate_curve(data["mtrag"], args.mode, data["emanual"])


if __name__ == "__main__":
    main()
