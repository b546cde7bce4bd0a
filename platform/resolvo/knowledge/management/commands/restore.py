"""``manage.py restore --from DIR [--yes] [--check] [--skip-vectors] [--skip-media]``"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.types import TransientError
from resolvo.knowledge.backup import BackupError, backup_restore, backup_verify, target_contents


class Command(BaseCommand):
    help = (
        "Restore a folder written by manage.py backup: the database, the uploaded files and the vectors "
        "replace this installation's. Stop the web server and the workers first (docs/operations.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", required=True, type=Path, metavar="DIR", help="Backup folder")
        parser.add_argument("--yes", action="store_true", help="Replace what this installation holds")
        parser.add_argument("--check", action="store_true", help="Only verify the backup's checksums and manifest")
        parser.add_argument(
            "--skip-vectors", action="store_true", help="Leave the vector store alone (then: reindex --all --wait)"
        )
        parser.add_argument("--skip-media", action="store_true", help="Leave the uploaded files alone")

    def handle(self, *args: Any, **opts: Any) -> None:
        source: Path = opts["source"]
        try:
            manifest = backup_verify(source=source)
            self.stdout.write(
                f"Backup {source.name}: made {manifest['created_at']} "
                f"by Resolvo {manifest['versions'].get('resolvo')}, "
                f"{manifest['counts'].get('knowledge.Document', 0)} document(s); every file matches its checksum."
            )
            if opts["check"]:
                return
            present = target_contents()
            if present and not opts["yes"]:
                raise CommandError(
                    "This installation already holds data, which the restore would replace: "
                    + "; ".join(present)
                    + ". Run again with --yes to replace it."
                )
            result = backup_restore(
                source=source,
                media=not opts["skip_media"],
                vectors_too=not opts["skip_vectors"],
                on_step=lambda step: self.stdout.write(f"Restoring the {step}…"),
            )
        except (BackupError, TransientError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Restored: {', '.join(result.restored)}.")
        for mismatch in result.mismatches:
            self.stdout.write(self.style.WARNING(f"  differs from the backup: {mismatch}"))
        if result.unapplied_migrations:
            self.stdout.write(
                f"This code has {result.unapplied_migrations} migration(s) the restored database has not run: "
                "run manage.py migrate."
            )
        if opts["skip_vectors"] or not result.manifest.get("vectors"):
            self.stdout.write("Rebuild the vectors from the documents: manage.py reindex --all --wait")
        else:
            self.stdout.write(
                "Check that every document's chunks are in the vector store (and queue those that are not): "
                "manage.py reindex --all --missing --wait"
            )
