"""Knowledge bases and the documents in them. A document row is also its ingestion job."""

from __future__ import annotations

from django.db import models

from ingestion.tags import merge_tags
from resolvo.organizations.models import Organization


class KnowledgeBase(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="knowledge_bases")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    url_tag_rules = models.JSONField(
        default=dict,
        blank=True,
        help_text='Tags for web pages by URL path prefix, e.g. {"/docs/tv/": ["tv"]} (see docs/ingestion.md).',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="kb_unique_name")]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.name}"


def document_upload_path(document: Document, filename: str) -> str:
    return f"documents/{document.knowledge_base.organization_id}/{document.knowledge_base_id}/{filename}"


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PARSING = "parsing", "Parsing"
        EMBEDDING = "embedding", "Embedding"
        INDEXED = "indexed", "Indexed"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"

    class Kind(models.TextChoices):
        FILE = "file", "File"
        URL = "url", "URL"
        SITEMAP = "sitemap", "Sitemap"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.FILE)
    source = models.CharField(max_length=1000, help_text="File name or URL; unique in its knowledge base.")
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="pages",
        help_text="The sitemap this page was found in.",
    )
    file = models.FileField(upload_to=document_upload_path, blank=True, max_length=500)
    title = models.CharField(max_length=500, blank=True)
    url = models.URLField(max_length=1000, blank=True, help_text="Where a customer can read the original.")
    tags = models.JSONField(
        default=list,
        blank=True,
        help_text="Tags given by people (upload form, API, folder name): lowercase slugs like 'galaxy-s10'.",
    )
    source_tags = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text=(
            "Tags the source gives itself: front matter (tags, product, manual) and the knowledge base's URL "
            "rules; found again at each ingestion."
        ),
    )
    mime_type = models.CharField(max_length=100, blank=True)
    byte_size = models.PositiveBigIntegerField(default=0)
    content_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the source bytes.")
    indexed_hash = models.CharField(max_length=64, blank=True, help_text="content_hash of the indexed version.")
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker holds the job until then.")
    lease_token = models.PositiveBigIntegerField(
        default=0, help_text="Raised on every claim; a run writes only while the token is still its own."
    )
    warnings = models.TextField(blank=True, help_text="What ingestion changed to make the document fit, if anything.")
    original_name = models.CharField(
        max_length=1000, blank=True, help_text="The uploaded file's name, when it had to be shortened."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    parse_ms = models.PositiveIntegerField(null=True, blank=True)
    embed_ms = models.PositiveIntegerField(null=True, blank=True)
    index_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["knowledge_base", "source"]
        constraints = [models.UniqueConstraint(fields=["knowledge_base", "source"], name="document_unique_source")]
        indexes = [models.Index(fields=["knowledge_base", "status"])]

    def __str__(self) -> str:
        return self.source

    @property
    def organization_id(self) -> int:
        return int(self.knowledge_base.organization_id)

    @property
    def all_tags(self) -> list[str]:
        """What every chunk's payload carries: the people's tags and the document's own."""
        return merge_tags(self.tags or [], self.source_tags or [])

    @property
    def is_sitemap(self) -> bool:
        return self.kind == self.Kind.SITEMAP

    @property
    def is_active(self) -> bool:
        return self.status in {self.Status.QUEUED, self.Status.PARSING, self.Status.EMBEDDING}
