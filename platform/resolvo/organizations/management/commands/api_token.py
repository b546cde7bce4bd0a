"""``manage.py api_token create --org acme --user alice [--name ci]``: a personal token for the
REST API, printed once; ``api_token revoke --prefix rsv_AbCdEfGh``: revoke one (as its owner)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from resolvo.organizations.models import ApiToken
from resolvo.organizations.selectors import OrganizationNotFound, membership_get, organization_get
from resolvo.organizations.services import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "Create (printed once) or revoke a member's personal API token for /api/v1/."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token and print it once.")
        create.add_argument("--org", required=True, help="Organization slug")
        create.add_argument("--user", required=True, help="The member's username")
        create.add_argument("--name", default="API token", help="What the token is for")
        revoke = sub.add_parser("revoke", help="Revoke a token by its prefix.")
        revoke.add_argument("--prefix", required=True, help="The token's first 12 characters")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            try:
                organization = organization_get(slug=options["org"])
            except OrganizationNotFound as exc:
                raise CommandError(str(exc)) from None
            user = get_user_model().objects.filter(username=options["user"]).first()
            membership = membership_get(user=user, organization=organization) if user else None
            if membership is None:
                raise CommandError(f"{options['user']!r} is not a member of {organization.slug!r}.")
            token, raw = api_token_create(membership=membership, name=options["name"])
            self.stdout.write(f"{raw}\n")
            self.stderr.write(f"Token {token.prefix}… for {user} ({membership.role}); it is not shown again.")
            return
        found = list(ApiToken.objects.filter(prefix=options["prefix"]).select_related("membership__user")[:2])
        if len(found) != 1:
            raise CommandError(f"{'No' if not found else 'More than one'} token with prefix {options['prefix']!r}.")
        api_token_revoke(token=found[0], by=found[0].membership.user)
        self.stdout.write(f"Revoked {found[0].prefix}…\n")
