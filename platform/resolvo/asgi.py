"""The ASGI application (uvicorn serves it in both topologies, so answers stream unbuffered)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "resolvo.settings")
application = get_asgi_application()
