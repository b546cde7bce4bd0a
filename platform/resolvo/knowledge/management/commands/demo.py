"""``manage.py demo``: the demo organization with the Lumen help centre, ready to ask.

Idempotent: unchanged articles are not re-embedded on a second run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from resolvo.organizations.models import Membership, Organization
from resolvo.organizations.services import membership_set

DEMO_DIR = Path(settings.REPO_DIR) / "demo" / "helpcentre"


class Command(BaseCommand):
    help = "Create the demo organization 'lumen' and ingest the bundled Lumen help centre."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--admin-password",
            default=None,
            help="Create the superuser 'admin' with this password (default 'admin', only when DEBUG is on)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        org, _ = Organization.objects.get_or_create(slug="lumen", defaults={"name": "Lumen Home"})
        password = opts["admin_password"] or ("admin" if settings.DEBUG else None)
        User = get_user_model()
        if password and not User.objects.filter(username="admin").exists():
            user = User.objects.create_superuser("admin", "admin@example.com", password)
            membership_set(organization=org, user=user, role=Membership.Role.OWNER)
            self.stdout.write("Created superuser 'admin'.")
        call_command(
            "ingest", "--org", "lumen", "--kb", "help", "--create", "--wait", str(DEMO_DIR), stdout=self.stdout
        )
