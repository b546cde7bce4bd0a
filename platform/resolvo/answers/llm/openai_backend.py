"""Generation on any OpenAI-compatible chat-completions server (vLLM, TGI, llama.cpp's server).

One streamed ``POST {base_url}/chat/completions`` per answer, read as server-sent events
(``data: {json}`` events, ended by ``data: [DONE]``), with httpx directly.

Failure semantics (every failure is ``LLMUnavailable`` with a message an admin can act on):

* Connection errors, dropped connections, HTTP 429 and 5xx are retried with exponential backoff
  (``retry_backoff_s`` doubling, honouring a short ``Retry-After``), up to ``max_retries`` times,
  but only while no text has been yielded: output is never duplicated. Once text has been
  yielded, a failure ends the stream with ``LLMUnavailable``.
* Other 4xx answers (unknown model, prompt too long) raise ``LLMRequestRejected`` without retry.
* ``GenerationParams.timeout_s`` is the stall budget: no bytes for that long (httpx read timeout)
  or no new text for that long while only keep-alive comments arrive both raise. A read timeout is
  not retried: the server was reached and has already had the full budget.

Token counting: the server's tokenizer is not available locally. With ``tokenizer`` configured (a
model name as in ``hf_loading``, normally the same checkpoint the server runs) counts are exact and
``tokens_exact`` is true; without it they are estimates of ``CHARS_PER_TOKEN`` characters per token
plus a fixed overhead per chat message, and ``tokens_exact`` is false. Usage comes from the server
(``stream_options.include_usage``); when a server does not report it, it is counted locally and
marked ``estimated`` unless the counts are exact.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import httpx

from resolvo.answers.llm.base import (
    ChatMessage,
    FinishReason,
    GenerationParams,
    LLMRequestRejected,
    LLMUnavailable,
    TextStream,
    Usage,
)
from resolvo.answers.llm.hf_loading import load_tokenizer
from resolvo.observability.requestid import request_id_headers  # X-Request-ID to the server (vLLM logs it)

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators around each chat message
REPLY_PRIMING_TOKENS = 3  # the template's opening of the assistant's turn
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 8.0


class _Retryable(Exception):
    """A failure that is safe to retry as long as nothing has been yielded yet."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OpenAIBackend:
    """A client for one model on an OpenAI-compatible server. Thread-safe; share one per process.

    ``base_url`` is the API root including the version, e.g. ``http://vllm:8000/v1``.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        tokenizer: str | None = None,
        context_window: int | None = None,
        connect_timeout_s: float = 5.0,
        max_retries: int = 2,
        retry_backoff_s: float = 0.5,
        include_usage: bool = True,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {max_retries}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.tokenizer_name = tokenizer
        self.context_window = context_window
        self.connect_timeout_s = connect_timeout_s
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.include_usage = include_usage
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def tokens_exact(self) -> bool:
        return self.tokenizer_name is not None

    @property
    def tokenizer(self) -> Any | None:
        """The configured local tokenizer, or ``None`` when counts are estimated."""
        return load_tokenizer(self.tokenizer_name) if self.tokenizer_name else None

    def count_tokens(self, text: str) -> int:
        tokenizer = self.tokenizer
        if tokenizer is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_chat_tokens(self, messages: Sequence[ChatMessage]) -> int:
        tokenizer = self.tokenizer
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            encoded = tokenizer.apply_chat_template(
                [asdict(m) for m in messages], add_generation_prompt=True, tokenize=True, return_dict=True
            )
            return len(encoded["input_ids"])
        per_message = sum(self.count_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages)
        return per_message + REPLY_PRIMING_TOKENS

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> TextStream:
        messages = list(messages)
        return TextStream(lambda out: self._generate(messages, params, out))

    def request_body(self, messages: Sequence[ChatMessage], params: GenerationParams) -> dict[str, Any]:
        """The JSON body of the chat-completions request for these messages and parameters."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def with_adapter(self, name: str, path: str) -> OpenAIBackend:
        """The same server, asking for the LoRA adapter it serves as ``name`` (vLLM selects an
        adapter by the request's ``model``; docs/tuning.md lists the server flags). ``path`` is
        where the adapter lies, for :meth:`load_adapter`."""
        backend = OpenAIBackend(
            name,
            base_url=self.base_url,
            api_key=self.api_key,
            tokenizer=self.tokenizer_name,
            context_window=self.context_window,
            connect_timeout_s=self.connect_timeout_s,
            max_retries=self.max_retries,
            retry_backoff_s=self.retry_backoff_s,
            include_usage=self.include_usage,
        )
        backend.adapter_name, backend.base_model = name, self.model
        return backend

    adapter_name: str = ""
    base_model: str = ""

    def load_adapter(self, name: str, path: str) -> None:
        """Ask the server to load a LoRA adapter at run time: vLLM's ``POST /v1/load_lora_adapter``
        (``{"lora_name", "lora_path"}``; the server needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``
        and ``--enable-lora``). ``path`` must be readable by the server. An adapter the server
        already has is not an error."""
        self._adapter_call("load_lora_adapter", {"lora_name": name, "lora_path": path}, fine="already been loaded")

    def unload_adapter(self, name: str) -> None:
        """``POST /v1/unload_lora_adapter``; an adapter the server does not have is not an error."""
        self._adapter_call("unload_lora_adapter", {"lora_name": name}, fine="cannot be found")

    def served_models(self) -> list[str]:
        """The model names the server serves (``GET /v1/models``; vLLM lists its LoRA adapters
        there beside the base model)."""
        where = f"LLM server {self.base_url}"
        try:
            response = self._http().get(
                f"{self.base_url}/models",
                headers={"Accept": "application/json"},
                timeout=httpx.Timeout(10.0, connect=self.connect_timeout_s),
            )
            response.raise_for_status()
            return [str(m["id"]) for m in response.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise LLMUnavailable(f"{where}: cannot list its models: {exc}") from exc

    def _adapter_call(self, endpoint: str, body: dict[str, str], *, fine: str) -> None:
        """POST to vLLM's adapter endpoint; an error answer naming this adapter and saying
        ``fine`` (already loaded, already gone) counts as success."""
        where = f"LLM server {self.base_url}"
        try:
            response = self._http().post(
                f"{self.base_url}/{endpoint}",
                json=body,
                headers={"Accept": "application/json"},
                timeout=httpx.Timeout(60.0, connect=self.connect_timeout_s),
            )
        except httpx.HTTPError as exc:
            raise LLMUnavailable(f"{where} unreachable for {endpoint}: {exc}") from exc
        if response.status_code == 200:
            return
        text = response.text[:300]
        if response.status_code in (400, 404) and fine in text and body["lora_name"] in text:
            return
        raise LLMRequestRejected(
            f"{where} refused {endpoint} {body.get('lora_name')!r}: HTTP {response.status_code} {text}"
        )

    def close(self) -> None:
        """Close pooled connections (a later call opens new ones)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- internals ------------------------------------------------------------------------------

    @property
    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                headers = {"Accept": "text/event-stream"}
                if self.api_key:
                    headers["Authorization"] = f"Bearer {self.api_key}"
                self._client = httpx.Client(headers=headers, follow_redirects=False)
            return self._client

    def _generate(self, messages: Sequence[ChatMessage], params: GenerationParams, out: TextStream) -> Iterator[str]:
        body = self.request_body(messages, params)
        timeout = httpx.Timeout(params.timeout_s, connect=self.connect_timeout_s)
        pieces: list[str] = []
        attempt = 0
        while True:
            try:
                response = self._open(body, timeout)
                try:
                    for delta in self._read(response, params, out):
                        pieces.append(delta)
                        yield delta
                finally:
                    response.close()
                break
            except _Retryable as failure:
                if pieces:
                    raise LLMUnavailable(f"{failure} after part of the answer was sent") from failure
                if attempt >= self.max_retries:
                    tries = "1 attempt" if attempt == 0 else f"{attempt + 1} attempts"
                    raise LLMUnavailable(f"{failure} ({tries})") from failure
                time.sleep(self._backoff(attempt, failure))
                attempt += 1
        if out.usage is None:
            out.usage = Usage(
                prompt_tokens=self.count_chat_tokens(messages),
                completion_tokens=self.count_tokens("".join(pieces)),
                estimated=not self.tokens_exact,
            )

    def _open(self, body: dict[str, Any], timeout: httpx.Timeout) -> httpx.Response:
        """Send the request; a 200 response is returned unread, anything else raises."""
        where = f"LLM server {self.base_url}"
        try:
            request = self._http().build_request(
                "POST", self._url, json=body, timeout=timeout, headers=request_id_headers()
            )
            response = self._http().send(request, stream=True)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise _Retryable(f"{where} could not be reached within {self.connect_timeout_s:g} s") from exc
            raise LLMUnavailable(f"{where} did not respond within {timeout.read:g} s") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"{where} is unreachable ({_describe(exc)})") from exc
        if response.status_code == 200:
            return response
        try:
            detail = _error_detail(response.read())
        except httpx.HTTPError:
            detail = "(no error body)"
        finally:
            response.close()
        status = response.status_code
        message = f"{where} answered HTTP {status}: {detail}"
        if status in RETRY_STATUSES or status >= 500:
            raise _Retryable(message, retry_after_s=_retry_after(response.headers.get("retry-after")))
        if status in (401, 403):
            raise LLMUnavailable(f"{message} (check the API key)")
        raise LLMRequestRejected(message)

    def _read(self, response: httpx.Response, params: GenerationParams, out: TextStream) -> Iterator[str]:
        """Yield the text deltas of a streamed chat completion; set usage and finish reason."""
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            yield from self._read_whole(response, out)
            return
        last_text_at = time.monotonic()
        finished = False

        def lines() -> Iterator[str]:
            # Checked on every line, so keep-alive comments without text cannot hold a stall open.
            for line in response.iter_lines():
                if time.monotonic() - last_text_at > params.timeout_s:
                    raise LLMUnavailable(
                        f"LLM server {self.base_url} sent no text for more than {params.timeout_s:g} s"
                    )
                yield line

        try:
            for data in _sse_data(lines()):
                if data == "[DONE]":
                    finished = True
                    break
                chunk = _parse_json(data)
                if "error" in chunk:
                    raise LLMUnavailable(f"LLM server reported an error mid-answer: {_error_text(chunk['error'])}")
                if chunk.get("usage"):
                    out.usage = _usage(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        last_text_at = time.monotonic()
                        yield text
                    if choice.get("finish_reason"):
                        out.finish_reason = _finish_reason(choice["finish_reason"])
                        finished = True
        except httpx.ReadTimeout as exc:
            raise LLMUnavailable(
                f"LLM server {self.base_url} stalled: nothing received for {params.timeout_s:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"LLM server {self.base_url} dropped the connection ({_describe(exc)})") from exc
        if not finished:
            raise _Retryable(f"LLM server {self.base_url} ended the stream before the answer was complete")

    def _read_whole(self, response: httpx.Response, out: TextStream) -> Iterator[str]:
        """A server that ignored ``stream: true`` and sent one JSON completion."""
        try:
            completion = _parse_json(response.read().decode("utf-8", errors="replace"))
        except httpx.TransportError as exc:
            raise _Retryable(f"LLM server {self.base_url} dropped the connection ({_describe(exc)})") from exc
        if completion.get("usage"):
            out.usage = _usage(completion["usage"])
        choices = completion.get("choices") or [{}]
        message = choices[0].get("message") or {}
        if choices[0].get("finish_reason"):
            out.finish_reason = _finish_reason(choices[0]["finish_reason"])
        if message.get("content"):
            yield str(message["content"])

    def _backoff(self, attempt: int, failure: _Retryable) -> float:
        delay = min(MAX_BACKOFF_S, self.retry_backoff_s * 2.0**attempt) * random.uniform(0.8, 1.2)
        if failure.retry_after_s is not None:
            delay = max(delay, min(failure.retry_after_s, MAX_BACKOFF_S))
        return delay


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The data of each server-sent event (multi-line data joined by newlines); comments skipped."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
    if data:
        yield "\n".join(data)


def _parse_json(data: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as exc:
        raise LLMUnavailable(f"LLM server sent something that is not JSON: {data[:200]!r}") from exc
    if not isinstance(parsed, dict):
        raise LLMUnavailable(f"LLM server sent an unexpected message: {data[:200]!r}")
    return parsed


def _usage(raw: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
    )


def _finish_reason(raw: str) -> FinishReason:
    return "length" if raw == "length" else "stop"


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def _error_detail(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text[:300] or "(empty body)"
    if isinstance(parsed, dict):
        if "error" in parsed:
            return _error_text(parsed["error"])[:300]
        if "detail" in parsed:
            return str(parsed["detail"])[:300]
    return text[:300]


def _retry_after(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None  # an HTTP date; the exponential backoff applies


def _describe(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__
