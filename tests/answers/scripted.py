"""A chat backend that streams a fixed reply word by word: the model whose output a test chooses.

Used where the behaviour under test is what the engine does with a given draft (verification as
it streams, an obeyed planted instruction), which the bundled 135M model cannot be made to write
on demand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from resolvo.answers.llm.base import ChatMessage, GenerationParams, TextStream, Usage


class Scripted:
    name = "scripted"
    model = "scripted"
    tokens_exact = False
    context_window = None

    def __init__(self, reply: str = "") -> None:
        self.reply = reply
        self.delivered = 0
        """Words handed out by the last stream (generation stops early when the engine closes it)."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> TextStream:
        words = self.reply.split(" ")
        self.delivered = 0

        def produce(s: TextStream) -> Iterator[str]:
            for i, w in enumerate(words):
                self.delivered = i + 1
                yield w if i == 0 else " " + w
            s.usage = Usage(prompt_tokens=100, completion_tokens=len(words), estimated=True)
            s.finish_reason = "stop"

        return TextStream(produce)


def engine_with(backend: Scripted):  # type: ignore[no-untyped-def]
    from resolvo.answers.engine import AnswerEngine
    from resolvo.answers.services import answer_config
    from resolvo.knowledge import vectors

    embedder = vectors.answer_embedder()
    return AnswerEngine(
        backend=backend, config=answer_config(), embed=embedder.embed_documents, embed_known=embedder.embed_known
    )
