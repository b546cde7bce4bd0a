"""Shared argument handling for the commands that work on one knowledge base."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from resolvo.knowledge.models import KnowledgeBase
from resolvo.knowledge.selectors import KnowledgeBaseNotFound, knowledge_base_for_operator
from resolvo.organizations.selectors import OrganizationNotFound


def add_scope_arguments(parser: CommandParser) -> None:
    parser.add_argument("--org", required=True, help="Organization slug")
    parser.add_argument("--kb", required=True, help="Knowledge base name")


def scope_from_options(org_slug: str, kb_name: str) -> KnowledgeBase:
    """The knowledge base the command works on, through the tenant gate's selectors."""
    try:
        return knowledge_base_for_operator(org_slug=org_slug, name=kb_name)
    except (OrganizationNotFound, KnowledgeBaseNotFound) as exc:
        raise CommandError(f"{exc} (ingest --create makes it).") from None
