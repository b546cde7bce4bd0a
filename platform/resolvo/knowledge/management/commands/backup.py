"""``manage.py backup --to DIR [--vectors native|portable|none] [--no-media]``"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.types import TransientError
from resolvo.knowledge.backup import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Back up the database, the vector store and the uploaded files into a new timestamped folder "
        "under DIR, with a manifest and SHA256SUMS (docs/operations.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, type=Path, metavar="DIR", help="Folder to write the backup under")
        parser.add_argument(
            "--vectors",
            choices=["native", "portable", "none"],
            default="native",
            help="native: the engine's snapshot (default); portable: every point as JSON lines, restorable "
            "into any engine; none: leave them out (rebuild with reindex --all)",
        )
        parser.add_argument("--no-media", action="store_true", help="Leave the uploaded files out")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            result = backup_create(
                target=opts["to"],
                vectors_mode=opts["vectors"],
                media=not opts["no_media"],
                on_step=lambda step: self.stdout.write(f"Backing up the {step}…"),
            )
        except (BackupError, TransientError) as exc:
            raise CommandError(str(exc)) from None
        manifest = result.manifest
        vectors = manifest["vectors"]
        media = manifest["media"]
        self.stdout.write(
            f"Backup written to {result.folder}\n"
            f"  database: {manifest['database']['engine']}, "
            f"{manifest['counts'].get('knowledge.Document', 0)} document(s)\n"
            + (
                f"  vectors: {vectors['points']} point(s) of {vectors['collection']} ({vectors['format']})"
                + (f"; {vectors['note']}" if vectors["note"] else "")
                + "\n"
                if vectors
                else "  vectors: left out (rebuild with manage.py reindex --all --wait)\n"
            )
            + (f"  media: {media['files']} file(s), {media['bytes']:,} bytes" if media else "  media: left out")
        )
