"""Defences around the model: instructions planted in documents, and system-prompt leaks."""

from __future__ import annotations

import re

# Sentences in a passage that talk to an AI rather than to a customer. They are removed from the
# passage before the model sees it (and the removal is recorded in the trace).
_AI = r"(ai|assistants?|language models?|llms?|chatbots?)"
_INJECTION = re.compile(
    r"(ignore|disregard|forget)\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier|your)\s+"
    r"(instructions|rules|prompts?)"
    rf"|(system|developer)\s+(note|prompt|message|instruction)s?\s+(to|for)\s+{_AI}"
    rf"|\bnote to {_AI}\b"
    r"|\byou are now\b"
    rf"|\b{_AI}\s*(must|should|shall)\s+(now\s+)?(tell|say|reply|respond|ask|instruct)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")


def neutralize_instructions(text: str) -> tuple[str, int]:
    """(text without instruction-like sentences, number removed)."""
    removed = 0
    parts = []
    for sentence in _SENTENCE.findall(text):
        if _INJECTION.search(sentence):
            removed += 1
            parts.append(" [text removed: instructions addressed to an AI] ")
        else:
            parts.append(sentence)
    return ("".join(parts) if removed else text), removed


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


class LeakGuard:
    """Holds back the last few words of a stream so a system-prompt leak can be stopped.

    A leak is any run of ``n`` consecutive words that also occurs in the protected text. The
    last ``n - 1`` words stay buffered until the next word shows they do not start a leak, so
    leaked text is never emitted.
    """

    def __init__(self, protected: str, *, allowed: str = "", n: int = 7) -> None:
        words = _words(protected)
        allowed_grams = self._grams(_words(allowed), n)
        self._grams_set = self._grams(words, n) - allowed_grams
        self._n = n
        self._emitted = ""
        self._pending = ""
        self.leaked = False

    @staticmethod
    def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    def feed(self, delta: str) -> str:
        """Text that is safe to emit now; sets ``leaked`` (and returns '') on a leak."""
        if self.leaked:
            return ""
        self._pending += delta
        words = _words(self._emitted + self._pending)
        n = self._n
        if len(words) >= n and any(
            tuple(words[i : i + n]) in self._grams_set for i in range(max(0, len(words) - n - 8), len(words) - n + 1)
        ):
            self.leaked = True
            self._pending = ""
            return ""
        # Emit everything except the trailing n-1 words (and any partial word).
        keep = self._tail_start(self._pending, n - 1)
        out, self._pending = self._pending[:keep], self._pending[keep:]
        self._emitted += out
        return out

    def flush(self) -> str:
        if self.leaked:
            return ""
        out, self._pending = self._pending, ""
        self._emitted += out
        return out

    @staticmethod
    def _tail_start(text: str, words: int) -> int:
        """Index where the last ``words`` words (plus a trailing partial word) of ``text`` start."""
        matches = list(re.finditer(r"[A-Za-z0-9']+", text))
        if len(matches) <= words:
            return 0
        return matches[-words].start() if words else len(text)
