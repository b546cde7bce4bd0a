"""Resolvo's ingestion library: parse -> split -> embed -> index.

A plain Python library with no Django import, so it can be tested, benchmarked and reused on its
own. Each stage is a small typed module; the Django side (``platform/resolvo/knowledge``) and the Celery
tasks (``workers/``) only orchestrate it.
"""
