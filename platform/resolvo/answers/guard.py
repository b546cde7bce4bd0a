"""Defences around the model: instructions planted in documents, and system-prompt leaks."""

from __future__ import annotations

import re

# Sentences in a passage that talk to an AI (or about the conversation) rather than to a
# customer. They are removed from the passage before the model sees it, never quoted, and a
# model sentence that matches is never shown (the removals are recorded in the trace).
#
# Three signals, each in every language Resolvo has messages for (en, es, de, fr, pt, it, nl):
#   ADDRESSEE  the reader is an AI: assistant, AI, KI, IA, chatbot, language model ...
#   META       the text is about the conversation: instructions, prompt, rules, respond, reply,
#              "tell the customer", "when the user asks" ...
#   OVERRIDE   an attempt to change behaviour: ignore/forget previous ..., "you are now",
#              "from now on", "important note to" ...
# A sentence is instruction-like when it has OVERRIDE, or ADDRESSEE together with META. A user
# manual addresses the *reader* as "you" and never mentions an assistant's instructions, so the
# combination is rare in documentation (measured: no false positives on the E-Manual corpus).
_ADDRESSEE = (
    r"\b(ai|a\.i\.|assistants?|chat ?bots?|bots?|llms?|gpt|language models?|copilots?|automated agents?|ai agents?"
    r"|asistentes?|ia|inteligencia artificial|modelos? de (lenguaje|linguagem)|assistente|assistentes"
    r"|assistent(en)?|ki|sprachmodells?|künstliche intelligenz"
    r"|intelligence artificielle|modèles? de langage|agent conversationnel"
    r"|intelligenza artificiale|modell[oi] linguistic[oi]|taalmodel(len)?|kunstmatige intelligentie)\b"
)
_META = (
    r"\b(instructions?|prompts?|rules|guidelines|directives?|respond|reply|replies|responses?|answers?"
    r"|tell (the )?(customer|user|visitor|client)s?|say to|when (a |the )?(customer|user|visitor)s?"
    r"|instrucciones|indicaciones|reglas|responde[rn]?|contesta[rn]?|respuestas?|(al|los) (cliente|usuario)s?"
    r"|instruções|regras|responda|responder|resposta|(ao|os) (cliente|usuário)s?"
    r"|anweisung(en)?|regeln|antworte[nt]?|antwort(en)?|(dem|den) (kunden|nutzer|benutzer)"
    r"|consignes?|règles|réponds|répondez|répondre|réponses?|(au|aux) (client|utilisateur)s?"
    r"|istruzioni|regole|rispondi|rispondere|risposta|(al|ai) (cliente|utente|clienti|utenti)"
    r"|instructies|regels|antwoord(en)?|beantwoord|(de|aan) (klant|gebruiker)s?)\b"
)
_NOUNS = (
    r"(instructions?|rules|prompts?|guidelines|directives?|context|constraints|guardrails|messages"
    r"|instrucciones|reglas|indicaciones|instruções|regras|anweisungen|regeln|vorgaben"
    r"|consignes|règles|istruzioni|regole|instructies|regels)"
)
_VERBS = (
    r"(ignore|disregard|forget|override|bypass|ignora|olvida|omite|ignoriere|vergiss|missachte|ignorez|oublie|oubliez"
    r"|esqueça|desconsidere|dimentica|negeer|vergeet)"
)
_OVERRIDE = (
    rf"\b{_VERBS}\b.{{0,50}}\b{_NOUNS}\b"
    r"|\bnew (instructions|rules)\b|\b(system|developer) (note|prompt|message|instruction)s?\b"
    r"|\bimportant note to\b|\bnote to (the )?(ai|assistant|model|bot)s?\b"
    r"|\b(instructions|rules) (have been |were |are )?(updated|changed|replaced)\b"
    r"|\b(tell|inform) (all |the )?(users|customers|visitors)\b"
    # Documentation describes a product, not what to say "when the customer asks".
    r"|\bwhen (a |the )?(customer|user|visitor)s? (asks?|enquires|writes)\b"
    r"|\bcuando (el|un) (cliente|usuario) pregunte\b"
    r"|\bwenn (der|ein) (kunde|nutzer|benutzer)\b.{0,40}\bfragt\b|\bquand (le|un) (client|utilisateur) demande\b"
    r"|\bquando (o|um) (cliente|usuário) pergunt|\bquando (il|un) (cliente|utente) chiede\b"
    r"|\bals de (klant|gebruiker) vraagt\b"
)
# "From now on ..." and "you are now ..." are ordinary in manuals ("you are now in the e-Manual");
# they count only next to an addressee or a conversation word.
_SOFT = (
    r"\b(you are now|from now on|ahora eres|a partir de ahora|du bist jetzt|ab sofort|ab jetzt|tu es maintenant"
    r"|désormais|dorénavant|agora você é|a partir de agora|ora sei|d'ora in poi|da ora in poi|je bent nu|vanaf nu)\b"
)
# Product features called "assistant" are documentation, not an addressee.
_FEATURE = re.compile(
    r"\b(voice|google|digital|virtual|setup|upgrade|software|smart|installation|wizard|personal)\s+assistants?\b"
    r"|\bassistants? (vocal|de voz|vocale)s?\b|\bsprachassistent(en)?\b",
    re.IGNORECASE,
)
_ADDRESSEE_RE = re.compile(_ADDRESSEE, re.IGNORECASE)
_META_RE = re.compile(_META, re.IGNORECASE)
_OVERRIDE_RE = re.compile(_OVERRIDE, re.IGNORECASE)
_SOFT_RE = re.compile(_SOFT, re.IGNORECASE)
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=[^\s.!?]))+(?:[.!?]+|\n|$)")  # "forum.scam.example" is one word


def instruction_like(sentence: str) -> bool:
    """True when ``sentence`` speaks to an AI or tries to steer the conversation."""
    if _OVERRIDE_RE.search(sentence):
        return True
    plain = _FEATURE.sub(" ", sentence)
    addressed = bool(_ADDRESSEE_RE.search(plain))
    meta = bool(_META_RE.search(plain))
    return (addressed and meta) or (bool(_SOFT_RE.search(plain)) and (addressed or meta))


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def neutralize_instructions(text: str) -> tuple[str, int]:
    """(text without instruction-like sentences, number removed)."""
    removed = 0
    parts = []
    for sentence in _SENTENCE.findall(text):
        if instruction_like(sentence):
            removed += 1
            parts.append("\n" if sentence.endswith("\n") else " ")
        else:
            parts.append(sentence)
    return ("".join(parts) if removed else text), removed


_URL = re.compile(
    r"\b(?:https?://|www\.)\S+|\b[\w.+-]+@[\w-]+\.[\w.]+|\b[a-z0-9-]+\.(?:com|net|org|io|ru|biz|info|xyz|co|example)\b",
    re.IGNORECASE,
)
_PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")


def novel_contacts(sentence: str, passages: str) -> list[str]:
    """Links, e-mail addresses and phone numbers in ``sentence`` that no passage contains.

    An answer may only send a customer where the documentation does, whatever language the
    sentence is in: this is the check that stops a followed instruction ("write to
    refunds@evil.example") even when its wording slipped past :func:`instruction_like`.
    """
    haystack = re.sub(r"\s+", "", passages.lower())
    found = [m.group().rstrip(".,;:)") for m in _URL.finditer(sentence)]
    found += [m.group() for m in _PHONE.finditer(sentence)]
    return [f for f in found if re.sub(r"\s+", "", f.lower()) not in haystack]


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
