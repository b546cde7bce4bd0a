"""Evaluation metrics for retrieval and grounded answers (pure functions, no I/O)."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

QueryMode = Literal["last", "condensed", "rewrite"]
QUERY_MODES: tuple[QueryMode, ...] = ("last", "condensed", "rewrite")

NOT_ANSWERABLE = {"unanswerable", "underspecified", "no", "false"}
"""Answerability labels whose questions have no answer to retrieve (the rest count as answerable;
MTRAG's ``partial`` is answerable in part)."""

_USER_SPEAKERS = {"user", "customer", "human", "visitor"}
_AGENT_SPEAKERS = {"agent", "assistant", "bot", "system_agent"}


@dataclass(frozen=True)
class EvalTurn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    gold_doc_ids: tuple[str, ...]
    answer: str = ""
    answerable: bool = True
    answerability: str = "answerable"
    """The set's label as written (``answerable``, ``partial``, ``unanswerable``, ``underspecified``)."""
    history: tuple[EvalTurn, ...] = ()
    """The turns before the current one, oldest first (empty for a one-shot question)."""
    last_turn: str = ""
    """The current user turn as the customer typed it ("" when the record has no conversation)."""
    rewrite: str = ""
    """The set's human standalone rewrite of the current turn, when it has one."""

    @property
    def typed(self) -> str:
        """What the customer typed last: the current turn, or the question of a one-shot record."""
        return self.last_turn or self.question


def conversation_turns(raw: Any) -> list[EvalTurn]:
    """Conversation turns in either shape: MTRAG's ``{speaker, text}`` or chat's ``{role, content}``."""
    out = []
    for t in raw or ():
        speaker = str(t.get("speaker", t.get("role", ""))).lower()
        text = str(t.get("text", t.get("content", "")) or "").strip()
        if speaker in _USER_SPEAKERS:
            out.append(EvalTurn("user", text))
        elif speaker in _AGENT_SPEAKERS:
            out.append(EvalTurn("assistant", text))
        else:
            raise ValueError(f"unknown speaker {speaker!r}")
    return out


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a JSONL file; raise ValueError naming the line of a malformed record.

    A record may carry a ``conversation`` (earlier user and agent turns, and optionally the current
    user turn last, as MTRAG does). The human rewrite is ``rewrite``, or MTRAG's ``question`` when
    the record also has ``question_last_turn`` (its ``question`` is then the rewrite)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answerability = str(row.get("answerability", "answerable")).lower()
            question = str(row["question"])
            turns = conversation_turns(row.get("conversation"))
            last_turn = ""
            if turns and turns[-1].role == "user":
                last_turn = turns.pop().content
            elif turns or row.get("question_last_turn"):
                last_turn = str(row.get("question_last_turn") or question)
            rewrite = str(row.get("rewrite") or "")
            if not rewrite and row.get("question_last_turn"):
                rewrite = question
            out.append(
                EvalQuestion(
                    id=str(row["id"]),
                    question=question,
                    gold_doc_ids=tuple(str(g) for g in row.get("gold_doc_ids") or ()),
                    answer=str(row.get("answer") or ""),
                    answerable=answerability not in NOT_ANSWERABLE,
                    answerability=answerability,
                    history=tuple(turns),
                    last_turn=last_turn,
                    rewrite=rewrite,
                )
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
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
    answers: int = 0
    withdrawn: int = 0
    """Answers whose final text differs from what was streamed to the customer."""
    abstained_answerable: list[bool] = field(default_factory=list)
    abstained_unanswerable: list[bool] = field(default_factory=list)
    retrieval_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    query_recall: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in QUERY_MODES})
    """recall@k of each query mode, on the tasks that have a human rewrite (and gold documents)."""
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    """Answer outcomes (answered, quoted, abstained, clarified, error) by answerability label."""
    gate: dict[str, Counter[str]] = field(default_factory=dict)
    """The gate's outcomes (answer, abstain, clarify) by answerability label."""

    def add_query_recall(self, q: EvalQuestion, ranked_by_mode: Mapping[str, Sequence[str]]) -> None:
        """Retrieval of one task with every query mode; counted only where the set has a rewrite."""
        if not (q.rewrite and q.answerable and q.gold_doc_ids):
            return
        for mode, ranked in ranked_by_mode.items():
            self.query_recall[mode].append(recall_at(ranked, q.gold_doc_ids, self.k))

    def add_gate(self, q: EvalQuestion, outcome: str) -> None:
        self.gate.setdefault(q.answerability, Counter())[outcome] += 1

    def add_outcome(self, q: EvalQuestion, outcome: str) -> None:
        self.outcomes.setdefault(q.answerability, Counter())[outcome] += 1

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
        elif q.answerability != "underspecified":  # underspecified: clarifying is right, see outcomes
            self.abstained_unanswerable.append(abstained)

    def as_dict(self) -> dict[str, Any]:
        def mean(xs: Sequence[float]) -> float | None:
            return round(sum(xs) / len(xs), 4) if xs else None

        def rate(xs: Sequence[bool]) -> float | None:
            return round(sum(xs) / len(xs), 4) if xs else None

        def share(by_label: dict[str, Counter[str]], label: str, outcome: str) -> float | None:
            counts = by_label.get(label)
            return round(counts[outcome] / sum(counts.values()), 4) if counts else None

        def answerable_share(by_label: dict[str, Counter[str]], outcome: str) -> float | None:
            counts = sum((c for lab, c in by_label.items() if lab not in NOT_ANSWERABLE), Counter())
            return round(counts[outcome] / sum(counts.values()), 4) if counts else None

        query = {f"recall@{self.k}_{m}": mean(v) for m, v in self.query_recall.items()}
        condensed, rewrite = query[f"recall@{self.k}_condensed"], query[f"recall@{self.k}_rewrite"]
        extra: dict[str, Any] = {}
        if self.query_recall["rewrite"]:
            extra["query_modes"] = {
                "tasks_with_rewrite": len(self.query_recall["rewrite"]),
                **query,
                "condensed_over_rewrite": round(condensed / rewrite, 4) if condensed is not None and rewrite else None,
            }
        if self.gate:
            extra["gate"] = {
                "by_label": {lab: dict(sorted(c.items())) for lab, c in sorted(self.gate.items())},
                "abstain_answerable": answerable_share(self.gate, "abstain"),
                "abstain_unanswerable": share(self.gate, "unanswerable", "abstain"),
                "clarify_underspecified": share(self.gate, "underspecified", "clarify"),
                "clarify_answerable": answerable_share(self.gate, "clarify"),
            }
        if self.outcomes:
            extra["outcomes"] = {
                "by_label": {lab: dict(sorted(c.items())) for lab, c in sorted(self.outcomes.items())},
                "abstained_unanswerable": share(self.outcomes, "unanswerable", "abstained"),
                "clarified_underspecified": share(self.outcomes, "underspecified", "clarified"),
                "clarified_answerable": answerable_share(self.outcomes, "clarified"),
            }
        return {
            "questions": self.questions,
            "recall@1": mean(self.recall[1]),
            "recall@5": mean(self.recall[5]),
            "recall@10": mean(self.recall[10]),
            f"mrr@{self.k}": mean(self.rr_at_k),
            "mrr": mean(self.rr),
            "answer_f1": mean(self.f1),
            "citation_precision": round(self.cited_gold / self.cited, 4) if self.cited else None,
            "streamed_withdrawn": f"{self.withdrawn}/{self.answers}" if self.answers else None,
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
            **extra,
        }
