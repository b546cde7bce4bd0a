#!/usr/bin/env python
"""Django's command-line utility for Resolvo (the ``resolvo`` package is installed from
platform/resolvo by ``pip install -e .``; see pyproject.toml)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "resolvo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
