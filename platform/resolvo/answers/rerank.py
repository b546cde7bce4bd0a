"""LLM-assisted retrieval for capable backends: the model orders the retrieved candidates.

Off by default (``ANSWER_RERANK=off``): the bundled 135M model cannot judge relevance and would
only add a generation before every answer. With a served Llama (``LLM_BACKEND=openai`` on vLLM),
``ANSWER_RERANK=llm`` retrieves ``ANSWER_RERANK_CANDIDATES`` chunks, shows the model each one's title
and opening, and keeps the ones it names, in its order; it falls back to the retrieval order when
the model is unavailable or its reply names nothing usable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from resolvo.answers import guard, prompts
from resolvo.answers.llm.base import ChatMessage, GenerationParams, LLMBackend, LLMUnavailable
from resolvo.knowledge.selectors import RetrievedChunk


def rerank(
    question: str, chunks: Sequence[RetrievedChunk], *, backend: LLMBackend, keep: int, timeout_s: float
) -> tuple[list[RetrievedChunk], bool]:
    """(the chunks to use, best first, at most ``keep``; whether the model's order was applied)."""
    if len(chunks) <= 1:
        return list(chunks[:keep]), False
    listing = "\n".join(
        prompts.render(
            "rerank_item",
            n=i,
            title=prompts.quote_attribute(c.title),
            text=prompts.quote_text(guard.neutralize_instructions(c.text[:400])[0].replace("\n", " ")),
        )
        for i, c in enumerate(chunks, start=1)
    )
    prompt = prompts.render("rerank", passages=listing, question=question, keep=keep)
    try:
        with backend.stream([ChatMessage("user", prompt)], GenerationParams(max_tokens=32, timeout_s=timeout_s)) as s:
            reply = "".join(s)
    except LLMUnavailable:
        return list(chunks[:keep]), False
    order = [int(n) for n in re.findall(r"\d{1,3}", reply) if 1 <= int(n) <= len(chunks)]
    order = list(dict.fromkeys(order))
    if not order:
        return list(chunks[:keep]), False
    # Fill up from the retrieval order so the model always sees ``keep`` passages.
    rest = [i for i in range(1, len(chunks) + 1) if i not in order]
    return [chunks[i - 1] for i in [*order, *rest][:keep]], True
