"""``manage.py check --deploy`` stays clean with the observability settings of a production run."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def test_check_deploy_is_clean_with_json_logs_and_a_metrics_token() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_SETTINGS_MODULE": "resolvo.settings",
        "DEBUG": "0",
        "SECRET_KEY": "x7Kq-2vN9!pL4sR8@wE1zT6&yU3iO0aS5dF(gH)jK*lZ^cV%bN$mQ#",
        "ALLOWED_HOSTS": "help.example.com",
        "SECURE_PROXY_SSL_HEADER": "1",
        "METRICS_TOKEN": "scrape-secret",
        "HEALTH_CHECK_TIMEOUT": "1.5",
    }
    for var in (
        "SECURE_SSL_REDIRECT",
        "SECURE_COOKIES",
        "SECURE_HSTS_SECONDS",
        "LOG_FORMAT",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    ):
        env.pop(var, None)
    code = (
        "import django, sys; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.management import call_command\n"
        "assert settings.LOG_FORMAT == 'json', settings.LOG_FORMAT\n"
        "assert settings.MIDDLEWARE[0].endswith('RequestIdMiddleware')\n"
        "call_command('check', '--deploy', '--fail-level', 'WARNING')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout + out.stderr


def test_a_bad_log_format_fails_at_start_up() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "resolvo.settings_test", "LOG_FORMAT": "xml"}
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode != 0 and "LOG_FORMAT" in out.stderr
