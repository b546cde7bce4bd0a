"""Shared argument handling for the knowledge commands."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from resolvo.knowledge.models import KnowledgeBase
from resolvo.organizations.models import Organization


def add_scope_arguments(parser: CommandParser) -> None:
    parser.add_argument("--org", required=True, help="Organization slug")
    parser.add_argument("--kb", required=True, help="Knowledge base name")


def resolve_scope(org_slug: str, kb_name: str, *, create: bool = False) -> KnowledgeBase:
    from resolvo.knowledge.services import knowledge_base_get

    if create:
        organization, _ = Organization.objects.get_or_create(slug=org_slug, defaults={"name": org_slug})
    else:
        found = Organization.objects.filter(slug=org_slug).first()
        if found is None:
            raise CommandError(f"No organization with slug {org_slug!r} (use --create to make it).")
        organization = found
    try:
        return knowledge_base_get(organization=organization, name=kb_name, create=create)
    except KnowledgeBase.DoesNotExist:
        raise CommandError(f"No knowledge base {kb_name!r} in {org_slug!r} (use --create to make it).") from None
