"""Settings for the test-suite: the real services of this machine (PostgreSQL, Redis).

Values already in the environment win, so CI or a developer can point the tests elsewhere.
"""

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("RESOLVO_DATA_DIR", tempfile.mkdtemp(prefix="resolvo-test-"))
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECURE_COOKIES", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("INGEST_MAX_RETRIES", "1")
os.environ.setdefault("INGEST_RETRY_BACKOFF", "0")
os.environ.setdefault("INGEST_FETCH_TIMEOUT", "2")
# The tests' web servers listen on 127.0.0.1 (plain http); tests of the refusals turn these off again.
os.environ.setdefault("INGEST_ALLOW_PRIVATE_NETWORKS", "1")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "1")
os.environ.setdefault("WEBHOOK_ALLOW_HTTP", "1")
# The multilingual vector quadruples ingestion time (docs/ingestion.md, "Other languages"): off for
# the suite, on (the default) in the tests of that path (tests/knowledge/test_multilingual.py).
os.environ.setdefault("EMBEDDING_MULTILINGUAL", "")

from resolvo.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
