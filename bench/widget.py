"""The widget API under concurrent visitors, loopback only, bounded in requests and time.

    python bench/widget.py [--visitors 50] [--messages 3] [--max-tokens 32] [--skip-llamacpp]

N visitors at once, each booting, starting a conversation and posting M questions from the demo
set one after another, reading every streamed answer. Two backends, in the same run:
  (a) llama.cpp's OpenAI-compatible server with the bundled SmolLM2 model (real generation);
  (b) an OpenAI-compatible stand-in that streams a fixed answer at once: the platform alone.
For each: p50/p95 time to response headers (first byte) and to the first token event, answers
per second, errors (the bar is 0), and the platform process's peak memory. Then the bare backend
at the same concurrency (the same prompts, straight to it), so the platform's overhead before the
first token is its TTFT minus the bare backend's, and a ratio of the two. Last, where the time
before the first token goes, stage by stage (see ``breakdown``; results in docs/widget.md).

The platform runs as it ships: the embedded mode (SQLite, the in-process Qdrant engine) under
uvicorn in a subprocess, loaded with the demo help centre by ``manage.py demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _setup import REPO

ORIGIN = "http://127.0.0.1:8001"  # the demo widget's allowed origin
QUESTIONS = [json.loads(line)["question"] for line in (REPO / "demo" / "questions.jsonl").read_text().splitlines()]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- (b) an OpenAI-compatible backend that answers at once -------------------------------------


def instant_backend(port: int) -> threading.Thread:
    """Streams a fixed, passage-quoting answer word by word with no delay (chat completions)."""
    import uvicorn

    words = "The hub's status light blinks amber when it cannot reach the internet [1].".split()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"].endswith("/models"):
            payload = json.dumps({"data": [{"id": "instant"}]}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": payload})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for i, word in enumerate(words):
            chunk = {"choices": [{"index": 0, "delta": {"content": (" " if i else "") + word}, "finish_reason": None}]}
            await send(
                {"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(), "more_body": True}
            )
        end = {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 500, "completion_tokens": len(words)},
        }
        await send({"type": "http.response.body", "body": f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode()})

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return thread


# --- the platform --------------------------------------------------------------------------------


def base_env(data_dir: str, database_url: str) -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL", "QDRANT_URL", "DJANGO_SETTINGS_MODULE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(RESOLVO_DATA_DIR=data_dir, HF_HUB_OFFLINE="1", LOG_LEVEL="WARNING")
    if database_url:
        env.update(DATABASE_URL=database_url, DEBUG="1", CELERY_TASK_ALWAYS_EAGER="1")
    return env


def platform(
    data_dir: str, port: int, *, base_url: str, model: str, max_tokens: int, database_url: str
) -> subprocess.Popen[bytes]:
    env = {
        **base_env(data_dir, database_url),
        "LLM_BACKEND": "openai",
        "LLM_BASE_URL": base_url,
        "LLM_MODEL": model,
        "LLM_CONTEXT_WINDOW": "2048",
        "ANSWER_MAX_TOKENS": str(max_tokens),
        "ANSWER_CONTEXT_TOKENS": "700",
        "ANSWER_CONDENSE": "concat",
        "API_RATE_VISITOR": "100000/minute",
        "API_RATE_IP": "100000/minute",
        "API_RATE_ORGANIZATION": "100000/minute",
    }
    log = open(Path(data_dir) / f"uvicorn-{port}.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "resolvo.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/", process)
    return process


async def visitor(client: httpx.AsyncClient, key: str, messages: int, n: int, out: dict[str, list[float]]) -> None:
    try:
        boot = await client.post("/api/widget/v1/boot", json={"key": key})
        boot.raise_for_status()
        headers = {"Authorization": f"Bearer {boot.json()['visitor_token']}"}
        conversation = (await client.post("/api/widget/v1/conversations", headers=headers)).json()["id"]
        for i in range(messages):
            question = QUESTIONS[(n * messages + i) % len(QUESTIONS)]
            started = time.perf_counter()
            async with client.stream(
                "POST",
                f"/api/widget/v1/conversations/{conversation}/messages",
                json={"text": question},
                headers={**headers, "Idempotency-Key": f"{n}-{i}"},
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                response.raise_for_status()
                out["ttfb"].append((time.perf_counter() - started) * 1000)
                first = None
                event = ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                        now = (time.perf_counter() - started) * 1000
                        if event == "message":
                            out["message"].append(now)  # the answer's thread has started
                        elif event == "sources":
                            out["sources"].append(now)
                        if event in ("token", "error") and first is None:
                            first = now
                    elif line.startswith("data: ") and event == "error":
                        out["errors"].append(1)
                    elif line.startswith("data: ") and event == "done":
                        for stage, ms in json.loads(line[6:]).get("timings", {}).items():
                            out.setdefault(f"engine.{stage}", []).append(float(ms))
                if first is not None:
                    out["ttft"].append(first)
                out["answers"].append(1)
    except httpx.HTTPStatusError as exc:
        out["errors"].append(1)
        print(f"  visitor {n}: {exc.response.status_code} {exc.response.text[:200]}", file=sys.stderr)
    except (httpx.HTTPError, KeyError) as exc:
        out["errors"].append(1)
        print(f"  visitor {n}: {type(exc).__name__}: {exc}", file=sys.stderr)


async def load(base: str, key: str, visitors: int, messages: int) -> tuple[dict[str, list[float]], float]:
    out: dict[str, list[float]] = {"ttfb": [], "message": [], "sources": [], "ttft": [], "answers": [], "errors": []}
    limits = httpx.Limits(max_connections=visitors * 2, max_keepalive_connections=visitors)
    async with httpx.AsyncClient(base_url=base, headers={"Origin": ORIGIN}, timeout=600, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(visitor(client, key, messages, n, out) for n in range(visitors)))
        return out, time.perf_counter() - started


async def bare(base_url: str, model: str, visitors: int, max_tokens: int, prompt: str) -> list[float]:
    """Time to first token straight from the backend, the same concurrency and prompt size."""
    ttft: list[float] = []

    async def one(client: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        body = {
            "model": model,
            "stream": True,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        try:
            async with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: ") and '"content"' in line:
                        ttft.append((time.perf_counter() - started) * 1000)
                        break
        except httpx.HTTPError as exc:
            print(f"  bare backend: {type(exc).__name__}: {exc}", file=sys.stderr)

    async with httpx.AsyncClient(timeout=600) as client:
        await asyncio.gather(*(one(client) for _ in range(visitors)))
    return ttft


def run_case(name: str, data_dir: str, *, base_url: str, model: str, args: argparse.Namespace, key: str) -> None:
    port = free_port()
    process = platform(
        data_dir, port, base_url=base_url, model=model, max_tokens=args.max_tokens, database_url=args.database_url
    )
    try:
        # Warm up: the first answer loads the embedding model and the tokenizer into the process.
        asyncio.run(load(f"http://127.0.0.1:{port}", key, 1, 1))
        out, elapsed = asyncio.run(load(f"http://127.0.0.1:{port}", key, args.visitors, args.messages))
        peak = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    prompt = "Answer from the passages.\n" + " ".join(["The Lumen Hub status light shows its state."] * 60)
    bare_ttft = asyncio.run(bare(base_url, model, args.visitors, args.max_tokens, prompt))
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\n{name} ({database}): {args.visitors} visitors x {args.messages} messages in {elapsed:.1f} s")
    print(
        f"  answers {len(out['answers'])}, errors {len(out['errors'])}, {len(out['answers']) / elapsed:.2f} answers/s"
    )
    print(f"  first byte   p50 {pct(out['ttfb'], 50):8.1f} ms  p95 {pct(out['ttfb'], 95):8.1f} ms")
    print(f"  first token  p50 {pct(out['ttft'], 50):8.1f} ms  p95 {pct(out['ttft'], 95):8.1f} ms")
    print(f"  bare backend p50 {pct(bare_ttft, 50):8.1f} ms  p95 {pct(bare_ttft, 95):8.1f} ms (same concurrency)")
    over50 = pct(out["ttft"], 50) - pct(bare_ttft, 50)
    over95 = pct(out["ttft"], 95) - pct(bare_ttft, 95)
    print(f"  platform overhead before the first token: p50 {over50:.1f} ms, p95 {over95:.1f} ms")
    if bare_ttft and out["ttft"]:
        print(
            f"  ratio platform TTFT / bare TTFT (p50): {statistics.median(out['ttft']) / statistics.median(bare_ttft):.2f}"
        )
    print(f"  platform peak memory {peak:.0f} MB")
    breakdown(out)


# Where the time before the first token goes. Client-side marks are measured from the send;
# ``engine.*`` are the engine's own stage timings (AnswerTrace.timings, sent in ``done``):
# ``engine.first_token`` runs from the engine's start, so the first-token time minus it is what
# came before the engine (request handling, waiting for a stream thread, loading the history).
STAGES = [
    ("first byte (response headers)", "ttfb"),
    ("first frame (answer thread started)", "message"),
    ("sources sent (retrieval done)", "sources"),
    ("first token", "ttft"),
    ("engine: condense", "engine.condense"),
    ("engine: retrieve (embed + search)", "engine.retrieve"),
    ("engine: build prompt", "engine.prompt"),
    ("engine: start -> first token", "engine.first_token"),
    ("engine: generate (whole answer)", "engine.generate"),
    ("engine: generate + verify", "engine.verify"),
    ("engine: total", "engine.total"),
]


def breakdown(out: dict[str, list[float]]) -> None:
    print("  per stage, ms               p50       p95       max")
    for label, key in STAGES:
        values = out.get(key) or []
        if values:
            print(f"    {label:<36} {pct(values, 50):8.1f}  {pct(values, 95):8.1f}  {max(values):8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--skip-llamacpp", action="store_true")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL of an empty database (default: SQLite)")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="resolvo-bench-widget-")
    env = base_env(data_dir, args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "demo"], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    key = (
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from resolvo.organizations.models import Widget; print(Widget.objects.get(organization__slug='lumen').public_key)",
            ],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )  # fmt: skip  (Django's shell may print a line of its own first)

    port = free_port()
    instant_backend(port)
    time.sleep(1)
    run_case(
        "(b) instant backend: the platform alone",
        data_dir,
        base_url=f"http://127.0.0.1:{port}/v1",
        model="instant",
        args=args,
        key=key,
    )

    if args.skip_llamacpp:
        return
    from resolvo.answers.llm.hf_loading import locate

    model = locate("bundled:smollm2-135m-instruct")
    port = free_port()
    log = open(Path(data_dir) / "llamacpp.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(Path(model.path) / str(model.gguf_file)),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", server)
        run_case(
            "(a) llama.cpp server, bundled SmolLM2",
            data_dir,
            base_url=f"http://127.0.0.1:{port}/v1",
            model="smollm2",
            args=args,
            key=key,
        )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
