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

from resolvo.knowledge.models import KnowledgeBase
from resolvo.organizations.models import Membership, Organization, Widget
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
        if password and not User.objects.filter(username="agent").exists():
            agent = User.objects.create_user(
                "agent", "agent@example.com", "agent", first_name="Sam", last_name="Rivera"
            )
            membership_set(organization=org, user=agent, role=Membership.Role.AGENT)
            self.stdout.write("Created the agent 'agent' (password 'agent').")
        self._helpdesk(org)
        call_command(
            "ingest", "--org", "lumen", "--kb", "help", "--create", "--wait", str(DEMO_DIR), stdout=self.stdout
        )
        widget, created = Widget.objects.get_or_create(
            organization=org,
            name="Lumen help centre",
            defaults={
                "allowed_origins": "\n".join(
                    f"http://{host}:{settings.DEMO_SITE_PORT}" for host in ("127.0.0.1", "localhost")
                ),
                "greeting": "Hi! I answer from the Lumen help centre. What can I help you with?",
                "colour": "#0f766e",
                "launcher_text": "Ask Lumen",
            },
        )
        if created:
            widget.knowledge_bases.set(KnowledgeBase.objects.filter(organization=org, name="help"))
            self.stdout.write(f"Created the demo widget (key {widget.public_key}).")

    def _helpdesk(self, org: Organization) -> None:
        """SLA targets and a few canned responses, so the agent dashboard has its tools."""
        from resolvo.tickets.models import CannedResponse, Priority, SLAPolicy

        targets = {
            Priority.URGENT: (30, 240),
            Priority.HIGH: (60, 480),
            Priority.NORMAL: (240, 1440),
            Priority.LOW: (480, 4320),
        }
        for priority, (first, resolution) in targets.items():
            SLAPolicy.objects.get_or_create(
                organization=org,
                priority=priority,
                defaults={"first_response_minutes": first, "resolution_minutes": resolution},
            )
        canned = {
            "hello": ("Greeting", "Hi {customer_name}, this is {agent_name} from {organization}. "),
            "reset": (
                "Factory reset steps",
                "To reset the hub, hold the button on its back for 10 seconds until the ring blinks white, "
                "then set it up again in the Lumen app.",
            ),
            "thanks": ("Closing", "Glad that is sorted! If anything else comes up, just write here. {agent_name}"),
        }
        for shortcut, (title, text) in canned.items():
            CannedResponse.objects.get_or_create(
                organization=org, shortcut=shortcut, defaults={"title": title, "text": text}
            )
