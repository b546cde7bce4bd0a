"""Serving a tuned adapter: the transformers backend loads it (merged into its own copy of the
weights) and answers with it; the openai backend asks a vLLM server for it by name, and loads it
into the server through vLLM's documented run-time endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from resolvo.answers.engine import NO_ANSWER
from resolvo.answers.llm.base import ChatMessage, GenerationParams, LLMRequestRejected, LLMUnavailable
from resolvo.answers.llm.hf_loading import BUNDLED_SMOLLM2
from resolvo.answers.llm.openai_backend import OpenAIBackend
from resolvo.answers.llm.transformers_backend import TransformersBackend
from resolvo.tuning.trainer import HParams, train

QUESTIONS = ["How do I reset it?", "Where is the power button?", "Which colours does it come in?", "Is it waterproof?"]


def chat(question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a support assistant. Answer from the passage only."},
        {"role": "user", "content": f'<passage n="1">The hub weighs 240 g.</passage>\nQuestion: {question}'},
    ]


@pytest.fixture(scope="module")
def abstaining_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real LoRA adapter taught to answer every question with the abstention."""
    out = tmp_path_factory.mktemp("adapter")
    examples = [[*chat(q), {"role": "assistant", "content": NO_ANSWER}] for q in QUESTIONS]
    hp = HParams(rank=8, alpha=16, learning_rate=3e-3, warmup_steps=0, gradient_accumulation=1, max_steps=12, epochs=3)
    result = train(model_name=BUNDLED_SMOLLM2, examples=examples, hparams=hp, out_dir=out)
    assert result.loss_last is not None and result.loss_first is not None and result.loss_last < result.loss_first
    return result.adapter_dir


def answer(backend: TransformersBackend, question: str) -> str:
    messages = [ChatMessage(m["role"], m["content"]) for m in chat(question)]  # type: ignore[arg-type]
    return "".join(backend.stream(messages, GenerationParams(max_tokens=16)))


@pytest.mark.slow
def test_the_transformers_backend_answers_with_the_adapter(abstaining_adapter: Path) -> None:
    base = TransformersBackend(BUNDLED_SMOLLM2)
    tuned = base.with_adapter("lumen-run1", str(abstaining_adapter))
    question = "How heavy is the hub?"  # never seen in training
    assert not answer(base, question).startswith("I don't know")
    assert answer(tuned, question).startswith("I don't know based on our documentation")
    assert tuned.adapter_name == "lumen-run1" and base.adapter is None
    # The base model is untouched by the merge: it still answers as before.
    assert not answer(base, question).startswith("I don't know")


def test_a_missing_adapter_is_reported_readably(tmp_path: Path) -> None:
    backend = TransformersBackend(BUNDLED_SMOLLM2).with_adapter("gone", str(tmp_path))
    with pytest.raises(LLMUnavailable, match=r"no LoRA adapter in .*adapter_config\.json is missing"):
        backend.load()


# --- openai backend against vLLM's documented LoRA API -----------------------------------------


class FakeVLLM:
    """vLLM's OpenAI-compatible server as documented for LoRA: ``--lora-modules`` names at start,
    ``POST /v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` with
    VLLM_ALLOW_RUNTIME_LORA_UPDATING, and a chat request's ``model`` picking base or adapter."""

    def __init__(self) -> None:
        self.base_model = "meta-llama/Llama-3.1-8B-Instruct"
        self.adapters: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])) or b"{}")
        self.requests.append({"path": h.path, "body": body})
        if h.path == "/v1/load_lora_adapter":
            name = body["lora_name"]
            if name in self.adapters:
                return self.reply(
                    h, 400, {"object": "error", "message": f"The lora adapter '{name}' has already been loaded."}
                )
            self.adapters[name] = body["lora_path"]
            return self.reply(h, 200, f"Success: LoRA adapter '{name}' added successfully.")
        if h.path == "/v1/unload_lora_adapter":
            if self.adapters.pop(body["lora_name"], None) is None:
                return self.reply(
                    h, 404, {"object": "error", "message": f"The lora adapter '{body['lora_name']}' cannot be found."}
                )
            return self.reply(h, 200, f"Success: LoRA adapter '{body['lora_name']}' removed successfully.")
        if h.path == "/v1/chat/completions":
            if body["model"] != self.base_model and body["model"] not in self.adapters:
                return self.reply(
                    h, 404, {"object": "error", "message": f"The model `{body['model']}` does not exist."}
                )
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.end_headers()
            for text in (f"served by {body['model']}", "."):
                chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}
                h.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            h.wfile.write(b"data: [DONE]\n\n")
            return None
        return self.reply(h, 404, {"message": "not found"})

    @staticmethod
    def reply(h: BaseHTTPRequestHandler, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture
def vllm() -> Iterator[tuple[FakeVLLM, str]]:
    fake = FakeVLLM()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            fake.handle(self)

        def do_GET(self) -> None:
            if self.path != "/v1/models":
                return fake.reply(self, 404, {"detail": "Not Found"})
            names = [fake.base_model, *fake.adapters]
            return fake.reply(self, 200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_openai_backend_selects_the_adapter_by_name(vllm: tuple[FakeVLLM, str]) -> None:
    fake, url = vllm
    base = OpenAIBackend(fake.base_model, base_url=url, max_retries=0)
    tuned = base.with_adapter("resolvo-lumen-run7", "/data/tuning/org-1/run-7/adapter")
    messages = [ChatMessage("user", "hi")]
    params = GenerationParams(max_tokens=8)
    with pytest.raises(LLMRequestRejected, match="does not exist"):
        "".join(tuned.stream(messages, params))  # not loaded on the server yet
    tuned.load_adapter("resolvo-lumen-run7", "/data/tuning/org-1/run-7/adapter")
    tuned.load_adapter("resolvo-lumen-run7", "/data/tuning/org-1/run-7/adapter")  # twice is fine
    assert fake.adapters == {"resolvo-lumen-run7": "/data/tuning/org-1/run-7/adapter"}
    assert "".join(tuned.stream(messages, params)) == "served by resolvo-lumen-run7."
    assert "".join(base.stream(messages, params)) == f"served by {fake.base_model}."
    assert tuned.request_body(messages, params)["model"] == "resolvo-lumen-run7"
    assert (tuned.base_model, tuned.adapter_name) == (fake.base_model, "resolvo-lumen-run7")
    assert tuned.served_models() == [fake.base_model, "resolvo-lumen-run7"]
    tuned.unload_adapter("resolvo-lumen-run7")
    tuned.unload_adapter("resolvo-lumen-run7")
    assert fake.adapters == {}


def test_a_server_without_runtime_lora_loading_is_reported(vllm: tuple[FakeVLLM, str]) -> None:
    fake, url = vllm
    backend = OpenAIBackend(fake.base_model, base_url=url.replace("/v1", "/nope"), max_retries=0)
    with pytest.raises(LLMRequestRejected, match="refused load_lora_adapter 'x': HTTP 404"):
        backend.load_adapter("x", "/adapters/x")


def test_evaluating_on_vllm_needs_the_adapter_served(vllm: tuple[FakeVLLM, str], settings: Any) -> None:
    from resolvo.answers.services import Adapter
    from resolvo.tuning.jobs import adapter_serve

    fake, url = vllm
    backend = OpenAIBackend(fake.base_model, base_url=url, max_retries=0)
    adapter = Adapter(name="resolvo-lumen-run3", path="/data/tuning/org-1/run-3/adapter")
    settings.LLM_LORA_RUNTIME_LOADING = False
    with pytest.raises(ValueError, match=r"--lora-modules resolvo-lumen-run3=/data/tuning/org-1/run-3/adapter"):
        adapter_serve(backend, adapter)
    settings.LLM_LORA_RUNTIME_LOADING = True
    adapter_serve(backend, adapter)
    assert fake.adapters == {"resolvo-lumen-run3": "/data/tuning/org-1/run-3/adapter"}
    settings.LLM_LORA_RUNTIME_LOADING = False
    adapter_serve(backend, adapter)  # listed by the server now: nothing to do
