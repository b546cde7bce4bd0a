"""Resolvo's Django project (installed as the ``resolvo`` package from ``platform/resolvo``).

It never imports ``workers.tasks``: background work is sent by name (:mod:`resolvo.background`).
"""
