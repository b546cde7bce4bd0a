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
    """Stops a stream before it repeats the protected text (the system prompt).

    A leak is any run of ``n`` consecutive words that also occurs in the protected text. Words are
    held back only while the words at the end of the stream could still grow into such a run
    (they are a prefix of one), so ordinary answers flow with at most a word of delay, and
    leaked text is never emitted.
    """

    def __init__(self, protected: str, *, allowed: str = "", n: int = 7) -> None:
        allowed_grams = self._grams(_words(allowed), n)
        grams = self._grams(_words(protected), n) - allowed_grams
        self._prefixes = {g[:k] for g in grams for k in range(1, n)}
        self._grams_set = grams
        self._n = n
        self._emitted_words: list[str] = []
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
        matches = list(_WORD_RE.finditer(self._pending))
        # The last word may still be growing unless the text after it is a separator.
        complete = matches if matches and matches[-1].end() < len(self._pending) else matches[:-1]
        words = self._emitted_words + [m.group().lower() for m in complete]
        n = self._n
        for end in range(max(n, len(self._emitted_words) + 1), len(words) + 1):
            if tuple(words[end - n : end]) in self._grams_set:
                self.leaked = True
                self._pending = ""
                return ""
        # Hold back the longest run of trailing complete words that could start a leak.
        hold = 0
        for k in range(min(n - 1, len(words)), 0, -1):
            if tuple(words[-k:]) in self._prefixes:
                hold = k
                break
        cut_words = len(complete) - hold
        if cut_words <= 0:
            return ""
        if hold:
            cut = complete[cut_words].start()
        elif len(complete) < len(matches):
            cut = matches[-1].start()  # keep the growing word back
        else:
            cut = len(self._pending)
        out, self._pending = self._pending[:cut], self._pending[cut:]
        self._emitted_words += [m.group().lower() for m in complete[:cut_words]]
        return out

    def flush(self) -> str:
        if self.leaked:
            return ""
        out, self._pending = self._pending, ""
        return out


_WORD_RE = re.compile(r"[A-Za-z0-9']+")
