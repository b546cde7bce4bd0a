from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ingestion.tags import TagError, validate_tags, validate_url_rules
from resolvo.knowledge import services
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.admin import TenantScopedAdmin


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files (Django's FileField takes one)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return super().clean(data, initial)


class TagsField(forms.CharField):
    """Tags typed as ``tv, galaxy-s10``; cleaned to a checked list (see :mod:`ingestion.tags`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            "Comma-separated tags (letters, digits, hyphens), e.g. tv, galaxy-s10. Answers can be scoped to them.",
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        try:
            return validate_tags(str(value or ""))
        except TagError as exc:
            raise forms.ValidationError(str(exc)) from None

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return sorted(initial or []) != self.to_python(data)
        except forms.ValidationError:
            return True


class UploadForm(forms.Form):
    documents = MultipleFileField(required=False)
    urls = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="One URL or sitemap per line."
    )
    tags = TagsField()


class KnowledgeBaseForm(forms.ModelForm):
    class Meta:
        model = KnowledgeBase
        fields = "__all__"  # noqa: DJ007 - the admin's own field list decides what is shown

    def clean_url_tag_rules(self) -> dict[str, list[str]]:
        try:
            return validate_url_rules(self.cleaned_data.get("url_tag_rules"))
        except TagError as exc:
            raise forms.ValidationError(str(exc)) from None


class DocumentForm(forms.ModelForm):
    tags = TagsField()

    class Meta:
        model = Document
        fields = "__all__"  # noqa: DJ007 - the admin's own field list decides what is shown


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(TenantScopedAdmin):
    form = KnowledgeBaseForm
    list_display = ["name", "organization", "created_at"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "organization__name"]
    actions = ["reindex"]

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/upload/", self.admin_site.admin_view(self.upload_view), name="knowledge_knowledgebase_upload"
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        kb = self.get_object(request, str(pk))
        if kb is None or not self.has_change_permission(request, kb):
            return HttpResponseRedirect(reverse("admin:knowledge_knowledgebase_changelist"))
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            count = 0
            tags = form.cleaned_data["tags"] or None  # none typed: a replaced document keeps its tags
            for upload in request.FILES.getlist("documents"):
                # Never read more than the limit into memory; the service records the refusal.
                services.document_upload(
                    knowledge_base=kb,
                    filename=upload.name or "upload",
                    content=upload.read(settings.INGEST_MAX_BYTES + 1),
                    declared_size=upload.size,
                    tags=tags,
                )
                count += 1
            for line in form.cleaned_data["urls"].splitlines():
                if line.strip():
                    services.source_add(knowledge_base=kb, url=line.strip(), tags=tags)
                    count += 1
            messages.success(request, f"{count} item(s) queued for ingestion.")
            return HttpResponseRedirect(
                reverse("admin:knowledge_document_changelist") + f"?knowledge_base__id__exact={kb.pk}"
            )
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "kb": kb,
            "opts": self.model._meta,
            "title": f"Upload to {kb}",
        }
        return TemplateResponse(request, "admin/knowledge/upload.html", context)

    @admin.action(description="Re-index all documents", permissions=["change"])
    def reindex(self, request: HttpRequest, queryset: QuerySet[KnowledgeBase]) -> None:
        total = sum(services.knowledge_base_reindex(knowledge_base=kb) for kb in queryset)
        messages.success(request, f"{total} document(s) queued for re-indexing.")


@admin.register(Document)
class DocumentAdmin(TenantScopedAdmin):
    form = DocumentForm
    tenant_path = "knowledge_base__organization"
    list_display = [
        "source",
        "knowledge_base",
        "tags",
        "status",
        "chunk_count",
        "chunks_done",
        "version",
        "byte_size",
        "updated_at",
    ]
    list_filter = [
        "status",
        "kind",
        ("knowledge_base__organization", admin.RelatedOnlyFieldListFilter),
        ("knowledge_base", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["knowledge_base__organization"]
    search_fields = ["source", "title"]
    readonly_fields = [
        "kind",
        "parent",
        "original_name",
        "warnings",
        "lease_token",
        "content_hash",
        "indexed_hash",
        "version",
        "status",
        "error",
        "chunk_count",
        "chunks_done",
        "attempts",
        "lease_until",
        "queued_at",
        "started_at",
        "finished_at",
        "parse_ms",
        "embed_ms",
        "index_ms",
        "mime_type",
        "byte_size",
        "source_tags",
    ]
    actions = ["retry", "delete_with_points"]

    def save_model(self, request: HttpRequest, obj: Document, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "tags" in form.changed_data:
            # Retags the stored chunks in place (a payload update, nothing re-embedded).
            services.document_tags_set(document=obj, tags=form.cleaned_data["tags"])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # documents arrive through the knowledge base's upload page

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would leave the vectors behind
        return actions

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_delete(document=obj)

    @admin.action(description="Retry ingestion", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for doc in queryset:
            services.document_retry(document=doc)
        messages.success(request, f"{queryset.count()} document(s) re-queued.")

    @admin.action(description="Delete documents and their indexed chunks", permissions=["delete"])
    def delete_with_points(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for doc in queryset:
            services.document_delete(document=doc)
        messages.success(request, "Deletion queued.")
