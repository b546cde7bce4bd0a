"""The fine-tuning dataset: an organization's approved answers as chat-format examples.

Each example is what the model would have been given for the question (the system prompt, the
recent conversation and the numbered passages, built by the engine's own ``prompt_messages``)
followed by the approved answer as the assistant's turn. Sources, newest first:

* **drafts** agents sent unchanged or edited (the text that went out wins), with the passages the
  draft was written against (``AnswerTrace.passages``);
* **answers customers rated up** on conversations that were resolved (or closed after it);
* an optional file of **curated pairs** (JSONL: ``question``, ``answer``, optional ``history``,
  ``answerable``, ``conversation``, ``knowledge_base``), whose passages the engine retrieves now.

Every example is cleaned and checked before it is kept:

* personal data is replaced with placeholders (``tuning/pii.py``);
* the answer is re-verified with the answer stream's own sentence gate: every sentence must be
  supported by a passage, and citation markers are re-attached to the passages that support it;
  an answer with a sentence that does not hold up is dropped, never trimmed;
* duplicates (same question, conversation and answer) are dropped.

Examples are split into train and held-out **by conversation**, so turns of one conversation
never land on both sides. The report says what was kept and dropped, and why.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import timezone

from resolvo.answers import language as lang
from resolvo.answers.engine import NO_ANSWER, AnswerEngine, Passage, Trace, Turn
from resolvo.answers.evaluation import conversation_turns
from resolvo.answers.models import AnswerTrace
from resolvo.knowledge.models import KnowledgeBase
from resolvo.organizations.models import Organization
from resolvo.tuning.pii import Scrubber

TRAIN_FILE, HELDOUT_FILE, REPORT_FILE = "train.jsonl", "heldout.jsonl", "report.json"
MAX_DROPPED_LISTED = 100


class DatasetError(ValueError):
    """The input cannot be used (a malformed curated file, an unknown knowledge base)."""


@dataclass(frozen=True)
class Candidate:
    """One approved answer before cleaning: where it came from and what it answers."""

    source: str
    """draft, feedback or curated."""
    record: str
    """The source record's id (``draft:12``, ``message:40``, ``curated:line 3``)."""
    group: str
    """The conversation it belongs to: examples of one group stay on one side of the split."""
    knowledge_base: KnowledgeBase
    question: str
    answer: str
    history: tuple[Turn, ...] = ()
    language: str = ""
    passages: tuple[dict[str, Any], ...] = ()
    """The passages the answer was written against ("" for curated pairs: retrieved now)."""
    standalone_query: str = ""
    answerable: bool = True
    gold_doc_ids: tuple[str, ...] = ()


@dataclass
class DatasetReport:
    organization: str
    built_at: str
    since: str | None
    sources: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    dropped_examples: list[dict[str, str]] = field(default_factory=list)
    personal_data: Counter[str] = field(default_factory=Counter)
    retrieved_again: int = 0
    """Examples whose trace had no stored passages: the engine retrieved them again."""
    train: int = 0
    heldout: int = 0
    groups: dict[str, int] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def drop(self, candidate: Candidate, reason: str, detail: str = "") -> None:
        self.dropped[reason] += 1
        if len(self.dropped_examples) < MAX_DROPPED_LISTED:
            self.dropped_examples.append(
                {"source": candidate.source, "record": candidate.record, "reason": reason, "detail": detail[:300]}
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "built_at": self.built_at,
            "since": self.since,
            "sources": dict(self.sources),
            "kept": dict(self.kept),
            "kept_total": sum(self.kept.values()),
            "dropped": dict(self.dropped),
            "dropped_total": sum(self.dropped.values()),
            "personal_data_replaced": dict(self.personal_data),
            "passages_retrieved_again": self.retrieved_again,
            "train": self.train,
            "heldout": self.heldout,
            "groups": self.groups,
            "files": self.files,
            "dropped_examples": self.dropped_examples,
        }


@dataclass(frozen=True)
class Dataset:
    directory: Path
    report: DatasetReport


# --- sources ---------------------------------------------------------------------------------


def _history(trace: AnswerTrace | None) -> tuple[Turn, ...]:
    turns = []
    for t in (trace.history if trace else None) or ():
        content = str(t.get("content", ""))
        turns.append(Turn("user", content) if t.get("role") == "user" else Turn("assistant", content))
    return tuple(turns)


def _from_trace(trace: AnswerTrace, **kwargs: Any) -> Candidate:
    return Candidate(
        knowledge_base=trace.knowledge_base,
        history=_history(trace),
        language=trace.language,
        passages=tuple(trace.passages or ()),
        standalone_query=trace.standalone_query,
        **kwargs,
    )


def draft_candidates(*, organization: Organization, since: datetime | None = None) -> Iterator[Candidate]:
    """Drafts agents sent unchanged or edited; the text that went out is the answer."""
    from resolvo.tickets.models import Draft

    drafts = (
        Draft.objects.filter(
            ticket__organization=organization,
            outcome__in=[Draft.Outcome.SENT, Draft.Outcome.EDITED],
            trace__isnull=False,
        )
        .select_related("ticket", "trace__knowledge_base")
        .order_by("-decided_at", "-id")
    )
    if since is not None:
        drafts = drafts.filter(decided_at__gte=since)
    for d in drafts:
        assert d.trace is not None
        answer = d.final_text if d.outcome == Draft.Outcome.EDITED or d.final_text else d.text
        yield _from_trace(
            d.trace,
            source="draft",
            record=f"draft:{d.pk}",
            group=f"conversation:{d.ticket.conversation_id}" if d.ticket.conversation_id else f"ticket:{d.ticket_id}",
            question=d.question,
            answer=answer,
        )


def feedback_candidates(*, organization: Organization, since: datetime | None = None) -> Iterator[Candidate]:
    """Assistant answers a customer rated up, on conversations that were resolved."""
    from resolvo.conversations.models import Conversation, Message, MessageFeedback

    messages = (
        Message.objects.filter(
            conversation__organization=organization,
            conversation__status__in=[Conversation.Status.RESOLVED, Conversation.Status.CLOSED],
            role=Message.Role.ASSISTANT,
            feedback__rating=MessageFeedback.Rating.UP,
            trace__isnull=False,
        )
        .select_related("trace__knowledge_base")
        .order_by("-feedback__created_at", "-id")
    )
    if since is not None:
        messages = messages.filter(feedback__created_at__gte=since)
    for m in messages:
        assert m.trace is not None
        yield _from_trace(
            m.trace,
            source="feedback",
            record=f"message:{m.pk}",
            group=f"conversation:{m.conversation_id}",
            question=m.trace.question,
            answer=m.text,
        )


def curated_candidates(
    *, organization: Organization, path: Path, knowledge_base: KnowledgeBase | None = None
) -> Iterator[Candidate]:
    """Curated pairs from a JSONL file; raises ``DatasetError`` naming the line of a bad record."""
    kbs = {kb.name: kb for kb in KnowledgeBase.objects.filter(organization=organization)}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
            question = str(row["question"]).strip()
            answerable = bool(row.get("answerable", str(row.get("answerability", "")).lower() != "unanswerable"))
            answer = str(row.get("answer") or "").strip()
            history = tuple(Turn(t.role, t.content) for t in conversation_turns(row.get("history")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(f"{where}: not a curated pair ({exc}); expected question, answer") from None
        if not question or (answerable and not answer):
            raise DatasetError(f"{where}: a curated pair needs a question and, when answerable, an answer")
        kb_name = row.get("knowledge_base")
        kb = kbs.get(str(kb_name)) if kb_name else knowledge_base
        if kb is None:
            raise DatasetError(
                f"{where}: unknown knowledge base {kb_name!r}" if kb_name else f"{where}: no knowledge base (--kb)"
            )
        record_id = str(row.get("id") or f"line {n}")
        yield Candidate(
            source="curated",
            record=f"curated:{record_id}",
            group=f"curated:{row.get('conversation') or record_id}",
            knowledge_base=kb,
            question=question,
            answer=answer if answerable else NO_ANSWER,
            history=history,
            language=str(row.get("language") or ""),
            answerable=answerable,
            gold_doc_ids=tuple(str(g) for g in row.get("gold_doc_ids") or ()),
        )


# --- cleaning and checking -------------------------------------------------------------------


def _names(organization: Organization) -> list[str]:
    """Names personal data may carry: contacts, conversations' contact names and the team's."""
    from resolvo.conversations.models import Conversation
    from resolvo.organizations.models import Membership
    from resolvo.tickets.models import Contact

    names = set(Contact.objects.filter(organization=organization).exclude(name="").values_list("name", flat=True))
    names |= set(
        Conversation.objects.filter(organization=organization)
        .exclude(contact_name="")
        .values_list("contact_name", flat=True)
    )
    for first, last in Membership.objects.filter(organization=organization).values_list(
        "user__first_name", "user__last_name"
    ):
        names.add(f"{first} {last}".strip())
    return sorted(n for n in names if n)


def _key(question: str, history: Sequence[Turn], answer: str) -> str:
    norm = " ".join(re.findall(r"\w+", " ".join([*(t.content for t in history[-2:]), question, answer]).lower()))
    return hashlib.sha256(norm.encode()).hexdigest()


def _group_rank(group: str) -> str:
    return hashlib.sha256(group.encode()).hexdigest()


def build_examples(
    candidates: Sequence[Candidate], *, engine: AnswerEngine, organization: Organization, report: DatasetReport
) -> list[dict[str, Any]]:
    """Clean, check and de-duplicate candidates into examples (in the order given)."""
    names = _names(organization)
    seen: set[str] = set()
    examples = []
    for c in candidates:
        report.sources[c.source] += 1
        language = c.language or lang.detect(c.question).language
        passages = _passages(c, engine, language, report)
        if not passages:
            report.drop(c, "no passages", "retrieval found nothing in the knowledge base")
            continue
        scrub = Scrubber(names=names, keep="\n".join(p.text for p in passages))
        question = scrub(c.question)
        history = tuple(Turn(t.role, scrub(t.content)) for t in c.history)
        answer = scrub(c.answer)
        report.personal_data.update(scrub.counts)
        company = c.knowledge_base.organization.name
        messages = engine.prompt_messages(question, history, passages, company=company, language=language)
        # Only what fitted in the prompt's budget may be cited: the model never reads the rest.
        shown = messages[-1].content
        passages = [p for p in passages if f'<passage n="{p.n}"' in shown]
        if c.answerable:
            checked = engine.reverify(passages, answer)
            if checked.rejected:
                first = checked.rejected[0]
                report.drop(c, f"{first['why']} sentence", first["text"])
                continue
            if not checked.text or not checked.cited:
                report.drop(c, "nothing verifiable", answer[:200])
                continue
            target, cited = checked.text, checked.cited
        else:
            target, cited = NO_ANSWER, []
        key = _key(question, history, target)
        if key in seen:
            report.drop(c, "duplicate")
            continue
        seen.add(key)
        by_n = {p.n: p for p in passages}
        examples.append(
            {
                "messages": [{"role": m.role, "content": m.content} for m in messages]
                + [{"role": "assistant", "content": target}],
                "meta": {
                    "source": c.source,
                    "record": c.record,
                    "group": c.group,
                    "knowledge_base": c.knowledge_base.pk,
                    "question": question,
                    "history": [{"role": t.role, "content": t.content} for t in history],
                    "language": language,
                    "answerable": c.answerable,
                    "answer": target,
                    "cited_chunks": [by_n[n].chunk.chunk_id for n in cited if n in by_n],
                    "gold_doc_ids": list(c.gold_doc_ids) or list(dict.fromkeys(by_n[n].chunk.doc_key for n in cited)),
                },
            }
        )
        report.kept[c.source] += 1
    return examples


def _passages(c: Candidate, engine: AnswerEngine, language: str, report: DatasetReport) -> list[Passage]:
    if c.passages:
        return engine.passages_from(c.passages)
    if c.source != "curated":
        report.retrieved_again += 1
    trace = Trace(question=c.question)
    return engine.retrieve(
        c.knowledge_base, c.question, c.history, trace=trace, language=language, query=c.standalone_query
    )


def cap_abstentions(examples: list[dict[str, Any]], max_share: float, report: DatasetReport) -> list[dict[str, Any]]:
    """At most ``max_share`` of the training examples may teach the abstention. It is one short, easy
    sentence: with more, a small model learns to abstain on everything (measured: 30 % of the
    examples made the bundled model abstain on 97 % of answerable questions). The surplus goes,
    chosen by a hash of the record (the same records always keep the same ones)."""
    abstain = [e for e in examples if not e["meta"]["answerable"]]
    answer = len(examples) - len(abstain)
    allowed = math.floor(max_share * answer / (1 - max_share)) if max_share < 1 else len(abstain)
    if len(abstain) <= allowed:
        return examples
    keep = {id(e) for e in sorted(abstain, key=lambda e: _group_rank(e["meta"]["record"]))[:allowed]}
    out = []
    for e in examples:
        if e["meta"]["answerable"] or id(e) in keep:
            out.append(e)
        else:
            report.kept[e["meta"]["source"]] -= 1
            report.dropped["over the abstention share"] += 1
    return out


def split(
    examples: Sequence[dict[str, Any]], heldout_fraction: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and held-out examples, split by conversation (``meta.group``), deterministically:
    groups ordered by a hash of their key, the first ``heldout_fraction`` of them held out (at
    least one when there are two groups or more and the fraction is not 0)."""
    groups = sorted({e["meta"]["group"] for e in examples}, key=_group_rank)
    n_held = (
        0
        if len(groups) < 2 or heldout_fraction <= 0
        else max(1, min(len(groups) - 1, math.floor(heldout_fraction * len(groups) + 0.5)))
    )
    held = set(groups[:n_held])
    train = [e for e in examples if e["meta"]["group"] not in held]
    heldout = [e for e in examples if e["meta"]["group"] in held]
    return train, heldout


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    tmp = path.with_suffix(path.suffix + ".tmp")
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return {"examples": len(rows), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def dataset_build(
    *,
    organization: Organization,
    engine: AnswerEngine,
    out_dir: Path,
    since: datetime | None = None,
    curated: Path | None = None,
    knowledge_base: KnowledgeBase | None = None,
    heldout_fraction: float = 0.2,
    max_abstention_share: float = 0.15,
) -> Dataset:
    """Build the organization's dataset into ``out_dir`` (train.jsonl, heldout.jsonl,
    report.json). Raises ``DatasetError`` for unusable input; nothing is written then."""
    if not 0 <= heldout_fraction < 1:
        raise DatasetError(f"the held-out fraction must be in [0, 1), got {heldout_fraction}")
    if not 0 <= max_abstention_share <= 1:
        raise DatasetError(f"the abstention share must be in [0, 1], got {max_abstention_share}")
    candidates = [
        *draft_candidates(organization=organization, since=since),
        *feedback_candidates(organization=organization, since=since),
    ]
    if curated is not None:
        candidates += list(curated_candidates(organization=organization, path=curated, knowledge_base=knowledge_base))
    report = DatasetReport(
        organization=organization.slug,
        built_at=timezone.now().isoformat(),
        since=since.isoformat() if since else None,
    )
    examples = build_examples(candidates, engine=engine, organization=organization, report=report)
    train, heldout = split(examples, heldout_fraction)
    train = cap_abstentions(train, max_abstention_share, report)  # the held-out split keeps its mix
    report.train, report.heldout = len(train), len(heldout)
    report.groups = {
        "train": len({e["meta"]["group"] for e in train}),
        "heldout": len({e["meta"]["group"] for e in heldout}),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    report.files = {TRAIN_FILE: _write_jsonl(out_dir / TRAIN_FILE, train)}
    report.files[HELDOUT_FILE] = _write_jsonl(out_dir / HELDOUT_FILE, heldout)
    (out_dir / REPORT_FILE).write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    return Dataset(out_dir, report)


def read_examples(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
