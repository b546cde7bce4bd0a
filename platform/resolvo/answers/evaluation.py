"""Evaluation metrics for retrieval and grounded answers (pure functions, no I/O)."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    gold_doc_ids: tuple[str, ...]
    answer: str = ""
    answerable: bool = True


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a JSONL file; raise ValueError naming the line of a malformed record."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answerability = str(row.get("answerability", "answerable")).lower()
            out.append(
                EvalQuestion(
                    id=str(row["id"]),
                    question=str(row["question"]),
                    gold_doc_ids=tuple(str(g) for g in row.get("gold_doc_ids") or ()),
                    answer=str(row.get("answer") or ""),
                    answerable=answerability not in {"unanswerable", "no", "false"},
                )
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}:{n}: not a valid question record ({exc})") from None
    return out


def distinct(ranked: Iterable[str]) -> list[str]:
    """Document keys in first-seen order (chunks of one document count once)."""
    seen: dict[str, None] = {}
    for key in ranked:
        seen.setdefault(key, None)
    return list(seen)


def recall_at(ranked_docs: Sequence[str], gold: Sequence[str], k: int) -> float:
    if not gold:
        return 0.0
    return len(set(ranked_docs[:k]) & set(gold)) / len(set(gold))


def reciprocal_rank(ranked_docs: Sequence[str], gold: Sequence[str], k: int | None = None) -> float:
    for i, doc in enumerate(ranked_docs[: k or len(ranked_docs)], start=1):
        if doc in gold:
            return 1.0 / i
    return 0.0


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> list[str]:
    text = re.sub(r"\[\d+\]", " ", text.lower())
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Report:
    k: int
    questions: int = 0
    recall: dict[int, list[float]] = field(default_factory=lambda: {1: [], 5: [], 10: []})
    rr: list[float] = field(default_factory=list)
    rr_at_k: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    cited: int = 0
    cited_gold: int = 0
    abstained_answerable: list[bool] = field(default_factory=list)
    abstained_unanswerable: list[bool] = field(default_factory=list)
    retrieval_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)

    def add_retrieval(self, q: EvalQuestion, ranked_docs: Sequence[str], ms: float) -> None:
        self.questions += 1
        self.retrieval_ms.append(ms)
        if not (q.answerable and q.gold_doc_ids):
            return
        for k in self.recall:
            self.recall[k].append(recall_at(ranked_docs, q.gold_doc_ids, k))
        self.rr.append(reciprocal_rank(ranked_docs, q.gold_doc_ids))
        self.rr_at_k.append(reciprocal_rank(ranked_docs, q.gold_doc_ids, self.k))

    def add_answer(
        self, q: EvalQuestion, *, answer: str, abstained: bool, cited_docs: Sequence[str], timings: dict[str, float]
    ) -> None:
        self.total_ms.append(float(timings.get("total", 0.0)))
        if "first_token" in timings:
            self.first_token_ms.append(float(timings["first_token"]))
        if q.answerable:
            self.abstained_answerable.append(abstained)
            if q.answer:
                self.f1.append(0.0 if abstained else token_f1(answer, q.answer))
            if q.gold_doc_ids:
                self.cited += len(cited_docs)
                self.cited_gold += sum(1 for d in cited_docs if d in q.gold_doc_ids)
        else:
            self.abstained_unanswerable.append(abstained)

    def as_dict(self) -> dict[str, Any]:
        def mean(xs: Sequence[float]) -> float | None:
            return round(sum(xs) / len(xs), 4) if xs else None

        def rate(xs: Sequence[bool]) -> float | None:
            return round(sum(xs) / len(xs), 4) if xs else None

        return {
            "questions": self.questions,
            "recall@1": mean(self.recall[1]),
            "recall@5": mean(self.recall[5]),
            "recall@10": mean(self.recall[10]),
            f"mrr@{self.k}": mean(self.rr_at_k),
            "mrr": mean(self.rr),
            "answer_f1": mean(self.f1),
            "citation_precision": round(self.cited_gold / self.cited, 4) if self.cited else None,
            "citations": self.cited,
            "abstention_answerable": rate(self.abstained_answerable),
            "abstention_unanswerable": rate(self.abstained_unanswerable),
            "latency_ms": {
                "retrieval_p50": round(percentile(self.retrieval_ms, 50), 1),
                "retrieval_p95": round(percentile(self.retrieval_ms, 95), 1),
                "total_p50": round(percentile(self.total_ms, 50), 1) if self.total_ms else None,
                "total_p95": round(percentile(self.total_ms, 95), 1) if self.total_ms else None,
                "first_token_p50": round(percentile(self.first_token_ms, 50), 1) if self.first_token_ms else None,
                "first_token_p95": round(percentile(self.first_token_ms, 95), 1) if self.first_token_ms else None,
            },
        }
