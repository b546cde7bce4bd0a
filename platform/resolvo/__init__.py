"""Resolvo's Django project. Importing it binds Celery's shared tasks to the project's app."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
