"""Reads for tuning: the organization's runs, and the adapter its answers use now."""

from __future__ import annotations

from django.db.models import QuerySet

from resolvo.answers.services import Adapter
from resolvo.organizations.models import Organization
from resolvo.tuning.models import TuningRun


def promoted_adapter(*, organization_id: int) -> Adapter | None:
    """The adapter of the organization's promoted run, or ``None`` (answers use the base model).
    One indexed query; called once per answer."""
    row = (
        TuningRun.objects.filter(organization_id=organization_id, promoted=True)
        .values_list("adapter_name", "adapter_path")
        .first()
    )
    return Adapter(name=row[0], path=row[1]) if row and row[1] else None


def runs_for_organization(*, organization: Organization) -> QuerySet[TuningRun]:
    return TuningRun.objects.filter(organization=organization).select_related("created_by")


def run_in_organization(*, organization: Organization, run_id: int) -> TuningRun:
    """The run with this id in this organization; ``TuningRun.DoesNotExist`` otherwise."""
    return TuningRun.objects.get(organization=organization, pk=run_id)
