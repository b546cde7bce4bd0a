#!/usr/bin/env python
"""Django's command-line utility for Resolvo."""

import os
import sys
from pathlib import Path


def main() -> None:
    # The Django code lives in platform/resolvo; platform/ itself must not become the package
    # "platform", which would shadow the standard library module of that name.
    sys.path.insert(1, str(Path(__file__).resolve().parent / "platform"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "resolvo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
