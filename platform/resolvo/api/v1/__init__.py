"""The agents' REST API, ``/api/v1/``: tickets, messages, notes, contacts, conversations,
knowledge bases and documents, for a member's personal API token (docs/api.md).

``api.py`` builds the NinjaAPI and its URLs; ``auth.py`` is the door (token, role, rate limit,
body size); ``errors.py`` the one error body; ``pagination.py`` the cursors; ``schemas.py`` what
goes in and out; one module of endpoints per noun. Endpoints are thin adapters over the apps'
selectors (every lookup takes the token's organization) and services.
"""
