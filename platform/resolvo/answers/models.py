"""Every answer leaves a trace, so an admin can see why the assistant said what it said."""

from __future__ import annotations

from django.db import models

from resolvo.knowledge.models import KnowledgeBase
from resolvo.organizations.models import Organization


class AnswerTrace(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="answer_traces")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="answer_traces")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    channel = models.CharField(max_length=32, default="api", help_text="Where the question came from.")
    question = models.TextField()
    history = models.JSONField(default=list, blank=True, help_text="Earlier turns given to the engine.")
    standalone_query = models.TextField(blank=True)
    retrieved = models.JSONField(default=list, blank=True, help_text="[{chunk_id, source, rank, score, similarity}]")
    passages = models.JSONField(
        default=list, blank=True, help_text="The numbered passages as the model read them (n, chunk, text)."
    )
    answer = models.TextField(blank=True)
    draft = models.TextField(blank=True, help_text="The model's text when verification replaced it with a quote.")
    citations = models.JSONField(default=list, blank=True)
    dropped_citations = models.JSONField(default=list, blank=True)
    abstained = models.BooleanField(default=False)
    outcome = models.CharField(
        max_length=16, blank=True, help_text="answered, quoted, abstained, clarified or error.", db_index=True
    )
    language = models.CharField(max_length=8, blank=True, help_text="The customer's language (ISO 639-1).")
    gate = models.JSONField(default=dict, blank=True, help_text="The answer/abstain/clarify assessment.")
    abstain_reason = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    backend = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True, help_text="Milliseconds per stage.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return self.question[:80]
