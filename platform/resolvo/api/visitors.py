"""Who is talking to the widget API: signed visitor tokens and the host page's identity proof.

A visitor token is ``django.core.signing``-signed (the project's SECRET_KEY, a salt of its own)
and names the widget, the widget key it was made with and the visitor (plus the verified user id,
if any). It lives in the host page's localStorage and comes back as a bearer header: no cookies,
no credentialed CORS. Rotating a widget's key invalidates its tokens.

Identity verification: the host page signs its user id with the widget's secret,
``hex(HMAC-SHA256(secret, user_id))``, and the widget passes both at boot; compared in constant
time. In ``required`` mode an unverified boot is refused outright.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.core import signing

from resolvo.organizations.models import Widget
from resolvo.organizations.selectors import WidgetRefused

_SALT = "resolvo.widget.visitor"
MAX_AGE_SECONDS = 180 * 24 * 3600


@dataclass(frozen=True)
class Visitor:
    widget: Widget
    visitor_id: str
    user_id: str = ""


def _key_tag(widget: Widget) -> str:
    return hashlib.sha256(widget.public_key.encode()).hexdigest()[:12]


def visitor_token(visitor: Visitor) -> str:
    return signing.dumps(
        {"w": visitor.widget.pk, "k": _key_tag(visitor.widget), "v": visitor.visitor_id, "u": visitor.user_id},
        salt=_SALT,
        compress=True,
    )


def visitor_from_token(token: str, *, widget: Widget | None = None) -> Visitor:
    """The visitor a token names; WidgetRefused when it is forged, expired, or made with a key
    that has since been rotated (or for another widget than ``widget``)."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        raise WidgetRefused("The visitor session is not valid; reload the page.") from None
    if widget is None:
        widget = Widget.objects.select_related("organization").filter(pk=data.get("w"), active=True).first()
    if widget is None or widget.pk != data.get("w") or data.get("k") != _key_tag(widget):
        raise WidgetRefused("The visitor session is not valid; reload the page.")
    return Visitor(widget=widget, visitor_id=str(data["v"]), user_id=str(data.get("u") or ""))


def new_visitor_id() -> str:
    return "v_" + secrets.token_urlsafe(16)


def identity_check(widget: Widget, *, user_id: str | None, user_hash: str | None) -> str:
    """The verified user id ("" for an anonymous visitor), or WidgetRefused."""
    if widget.identity == Widget.Identity.OFF:
        return ""
    if not user_id or not user_hash:
        if widget.identity == Widget.Identity.REQUIRED:
            raise WidgetRefused("This chat needs you to be signed in on the site.")
        return ""
    expected = hmac.new(widget.identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, user_hash.strip().lower()):
        raise WidgetRefused("The identity signature does not match.")
    return user_id
