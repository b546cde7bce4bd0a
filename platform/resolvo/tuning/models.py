"""Fine-tuning the organization's model on its own approved answers (docs/tuning.md).

A ``TuningRun`` is one LoRA training job and everything about it: the data snapshot it trained on
(copied into the run's folder, with its hash and the builder's report), the hyper-parameters and
limits, progress, the evaluation before and after, the gate's decision, and the adapter it
produced. At most one run per organization is *promoted*: answers for that organization use its
adapter. Rolling back is un-promoting it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from resolvo.organizations.models import Organization


class TuningRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        TRAINING = "training", "Training"
        EVALUATING = "evaluating", "Evaluating"
        SUCCEEDED = "succeeded", "Trained and evaluated"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tuning_runs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    base_model = models.CharField(max_length=300, help_text="The model the adapter is trained on (LLM_MODEL).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    hparams = models.JSONField(default=dict, help_text="LoRA and optimiser settings, and the run's limits.")
    dataset = models.JSONField(
        default=dict, help_text="The snapshot: files, sha256, example counts and the builder's report."
    )
    eval_set = models.JSONField(
        default=dict, blank=True, help_text="The fixed evaluation set: knowledge base id and questions file."
    )
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="Training loss, tokens, speed, memory.")
    evaluation = models.JSONField(
        default=dict, blank=True, help_text="Held-out and fixed-set metrics before and after, and the decision."
    )
    adapter_path = models.CharField(max_length=500, blank=True)
    adapter_name = models.CharField(
        max_length=100, blank=True, help_text="The name an OpenAI-compatible server serves the adapter under."
    )
    cancel_requested = models.BooleanField(default=False)
    promoted = models.BooleanField(default=False, db_index=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="The worker that claimed the run.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(promoted=True), name="tuning_one_promoted_run"
            )
        ]

    def __str__(self) -> str:
        return f"tuning run {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def decision(self) -> dict[str, object]:
        return dict(self.evaluation.get("decision") or {})

    @property
    def promotable(self) -> bool:
        return self.status == self.Status.SUCCEEDED and bool(self.decision.get("promote")) and not self.promoted
