"""Turning a follow-up into a standalone query over the conversation so far.

Modes (setting ``ANSWER_CONDENSE``):

- ``off``: the last turn alone.
- ``concat``: the previous user turn and this one.
- ``carry`` (the default): no model. When the new turn is a follow-up (a pronoun or demonstrative
  with nothing it could refer to in the turn itself, a bare "and ...?" / "what about ...?", or only a
  few content words), the salient words of the earlier user turns (newest first) and of the last
  agent turn are appended to it. Retrieval is hybrid and weighted towards BM25, so carried words
  are what bring back the passages of the topic under discussion; a stand-alone turn is left alone
  so a change of topic is not dragged back. Measured on mtrag-dev in docs/answering.md.
- ``llm``: the model rewrites the turn (a capable backend may also translate it); the rewrite is
  kept only if it stays on the conversation's words, else ``carry`` is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from resolvo.answers import prompts
from resolvo.answers.llm.base import ChatMessage, GenerationParams, LLMBackend, LLMUnavailable

Mode = Literal["off", "concat", "carry", "llm"]
MODES: tuple[Mode, ...] = ("off", "concat", "carry", "llm")


class _Turn(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...


STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren as at be because been before
    being below between both but by can cannot could couldn did didn do does doesn doing don down during
    each else ever every few for from further get gets getting got had hadn has hasn have haven having he
    her here hers herself him himself his how however i if in into is isn it its itself just know let
    like ll made make many may me might more most much must mustn my myself need no nor not now of off
    often on once one ones only or other others our ours ourselves out over own please re really right
    s said same say says see she should shouldn so some such t tell than thank thanks that the their
    theirs them themselves then there these they thing things think this those though through thus to
    too two under until up upon us use used very ve want was wasn way we well were weren what whats
    when where whether which while who whom whose why will with won would wouldn yes yet you your
    yours yourself yourselves okay ok oh hi hello sure great good interesting mean means actually
    maybe kind something anything everything anyone someone also again still already true false
    sorry info information question questions answer answers mentioned said told explain""".split()
)
"""English function words and conversational filler: never carried, never counted as content."""

REFERRING = frozenset(
    """it its it's itself this that these those they them their theirs he him his she her hers one
    ones there such former latter same another other else above first second third last""".split()
)
"""Words that point back at something said before."""

_FOLLOW_UP_START = re.compile(
    r"^\s*(and|or|but|so|also|then|what about|how about|what if|why not|why|how so|same|which|"
    r"is that|are they|is it|does it|do they|can it|can they)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_][\w'.-]*[^\W_]|[^\W_]", re.UNICODE)


@dataclass(frozen=True)
class CarryConfig:
    # Chosen on mtrag-dev (docs/answering.md, "Conversations"): more words, more turns, the agent's
    # words, or treating every short turn as a follow-up all pulled retrieval back to the previous
    # turn's passages when the customer had moved on.
    max_terms: int = 3
    """Most words appended to a follow-up."""
    user_turns: int = 1
    """How many earlier user turns (newest first) the words come from."""
    agent_terms: int = 0
    """Most of those words that may come from the last agent turn (after the user turns' words)."""
    few_words: int = 0
    """A turn with this many content words or fewer is a follow-up even without a pronoun."""


def words(text: str) -> list[str]:
    """Lower-cased words; a typographic apostrophe counts as a plain one ("actor\u2019s" -> "actor's")."""
    return [w.strip(".'-").lower() for w in _WORD.findall(text.replace("\u2019", "'"))]


def content_words(text: str) -> list[str]:
    """Words that carry meaning, in order, first occurrence only."""
    seen: dict[str, None] = {}
    for w in words(text):
        keep = len(w) == 4 if w.isdigit() else len(w) > 2 and w not in STOPWORDS  # years count
        if keep:
            seen.setdefault(w, None)
    return list(seen)


def salient_words(text: str) -> list[str]:
    """:func:`content_words`, names first: words written with a capital inside the sentence
    ("iPhone", "Wi-Fi", "Toyota") are the ones a follow-up most likely refers to."""
    named = {
        w.strip(".'-").lower()
        for i, w in enumerate(_WORD.findall(text.replace("\u2019", "'")))
        if any(ch.isupper() for ch in (w[1:] if i == 0 else w))
    }
    found = content_words(text)
    return [w for w in found if w in named] + [w for w in found if w not in named]


def is_follow_up(question: str, *, few_words: int = CarryConfig.few_words) -> bool:
    """Whether ``question`` likely leans on the conversation: it points back (pronoun,
    demonstrative, "the second one"), opens like a continuation, or has hardly any content words."""
    ws = words(question)
    if any(w in REFERRING for w in ws) or _FOLLOW_UP_START.search(question):
        return True
    return len(content_words(question)) <= few_words


def carry(question: str, history: Sequence[_Turn], *, config: CarryConfig = CarryConfig()) -> str:
    """``question`` plus the salient words of the conversation when it is a follow-up."""
    if not history or not is_follow_up(question, few_words=config.few_words):
        return question
    have = set(content_words(question))
    picked: list[str] = []

    def take(text: str, limit: int) -> None:
        for w in salient_words(text):
            if len(picked) >= limit:
                return
            if w not in have:
                have.add(w)
                picked.append(w)

    users = [t.content for t in history if t.role == "user"][-config.user_turns :]
    for text in reversed(users):
        take(text, config.max_terms)
    agents = [t.content for t in history if t.role != "user"]
    if agents and config.agent_terms:
        take(agents[-1], min(config.max_terms, len(picked) + config.agent_terms))
    return f"{question} {' '.join(picked)}".strip() if picked else question


def condense(
    question: str,
    history: Sequence[_Turn],
    *,
    mode: str,
    backend: LLMBackend | None = None,
    timeout_s: float = 30.0,
    history_text: str = "",
) -> str:
    """The query to retrieve with (see the module docstring for ``mode``). ``backend`` is needed
    only for "llm"; ``history_text`` is the (trimmed) conversation the model sees."""
    users = [t.content for t in history if t.role == "user"]
    if not users or mode == "off":
        return question
    if mode == "concat":
        return f"{users[-1]} {question}"
    fallback = carry(question, history)
    if mode == "carry" or backend is None:
        return fallback
    text = history_text or "\n".join(f"{t.role}: {t.content}" for t in history)
    prompt = prompts.render("condense", history=text, question=question)
    try:
        with backend.stream([ChatMessage("user", prompt)], GenerationParams(max_tokens=48, timeout_s=timeout_s)) as s:
            rewritten = "".join(s).strip().split("\n")[0].strip()
    except LLMUnavailable:
        return fallback
    # A small model may drift: keep the rewrite only if it stays close to the conversation.
    known = set(re.findall(r"\w+", (text + " " + question).lower()))
    found = re.findall(r"\w+", rewritten.lower())
    if (
        not found
        or len(found) > 3 * len(re.findall(r"\w+", f"{users[-1]} {question}"))
        or sum(w in known for w in found) / len(found) < 0.6
    ):
        return fallback
    return rewritten
