"""Who is talking to the widget API: signed visitor tokens and the host page's identity proof.

A visitor token is ``django.core.signing``-signed (the project's SECRET_KEY, a salt of its own)
and names the widget, the widget key it was made with and the visitor (plus the verified user id,
if any). It lives in the host page's localStorage and comes back as a bearer header: no cookies,
no credentialed CORS. Rotating a widget's key invalidates its tokens.

Identity verification, two ways with the same per-widget secret; the page sends one of them:

- HMAC: the host page signs its user id, ``hex(HMAC-SHA256(secret, user_id))``, and the widget
  passes both at boot; compared in constant time. The proof never expires.
- JWT: the host page's server signs a short-lived token (HS256, claims ``sub`` = the user id,
  ``exp``, ``iat``; optionally ``email`` and ``name``) and the widget passes it at boot. Verified
  with PyJWT, the algorithm pinned to HS256 (never ``none``, never the token header's choice),
  ``exp`` and ``sub`` required, :data:`JWT_LEEWAY_SECONDS` of clock skew allowed, and a token that
  lives longer than :data:`JWT_MAX_LIFETIME_SECONDS` refused: a leaked token is good for minutes.

Sending both is refused as ambiguous. A proof that is sent and fails is refused in ``optional``
mode too; in ``required`` mode a boot without a proof is refused outright; ``off`` ignores both.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt
from django.core import signing

from resolvo.organizations.models import Widget
from resolvo.organizations.selectors import WidgetRefused

_SALT = "resolvo.widget.visitor"
MAX_AGE_SECONDS = 180 * 24 * 3600

# Identity JWTs: the host signs one per page view, so minutes are plenty. A protocol bound, not a
# deployment knob: a longer-lived token is a longer-lived credential if it leaks from the page.
JWT_ALGORITHMS = ("HS256",)
JWT_LEEWAY_SECONDS = 30
JWT_MAX_LIFETIME_SECONDS = 10 * 60
# Conversation.contact_id holds at most this many characters.
USER_ID_MAX_CHARS = 200


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


def identity_check(widget: Widget, *, user_id: str | None, user_hash: str | None, user_jwt: str | None = None) -> str:
    """The verified user id ("" for an anonymous visitor), or WidgetRefused.

    ``user_jwt`` is the alternative to ``user_id`` + ``user_hash``; a page that sends both is
    refused (which proof to trust would be a guess)."""
    if widget.identity == Widget.Identity.OFF:
        return ""
    if user_jwt and (user_id or user_hash):
        raise WidgetRefused("Send either user_jwt or user_id with user_hash, not both.")
    if user_jwt:
        return _checked_user_id(identity_jwt_user_id(widget, token=user_jwt))
    if not user_id or not user_hash:
        if widget.identity == Widget.Identity.REQUIRED:
            raise WidgetRefused("This chat needs you to be signed in on the site.")
        return ""
    expected = hmac.new(widget.identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, user_hash.strip().lower()):
        raise WidgetRefused("The identity signature does not match.")
    return _checked_user_id(user_id)


def identity_jwt_user_id(widget: Widget, *, token: str) -> str:
    """The ``sub`` of an identity JWT signed with ``widget``'s secret, or WidgetRefused saying why
    (expired, bad signature, another algorithm, a missing claim, too long-lived)."""
    try:
        claims = jwt.decode(
            token.strip(),
            widget.identity_secret,
            algorithms=JWT_ALGORITHMS,
            options={"require": ["exp", "sub"], "verify_signature": True},
            leeway=JWT_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise WidgetRefused("The identity token has expired; the site must sign a fresh one.") from None
    except jwt.InvalidSignatureError:
        raise WidgetRefused("The identity token's signature does not match.") from None
    except jwt.InvalidAlgorithmError:
        raise WidgetRefused("The identity token must be signed with HS256.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise WidgetRefused(f"The identity token has no {exc.claim!r} claim.") from None
    except jwt.PyJWTError:
        raise WidgetRefused("The identity token is not valid.") from None
    # PyJWT has checked that both are integers (as int() reads them) and refused an iat in the
    # future. With iat the lifetime is the signer's own statement; without it, what is left of the
    # token now, allowing for the same clock skew.
    exp = int(claims["exp"])
    iat = claims.get("iat")
    lifetime = exp - int(iat) if iat is not None else exp - time.time() - JWT_LEEWAY_SECONDS
    if lifetime > JWT_MAX_LIFETIME_SECONDS:
        raise WidgetRefused(
            f"The identity token lives longer than {JWT_MAX_LIFETIME_SECONDS // 60} minutes; sign short-lived tokens."
        )
    return str(claims["sub"])


def _checked_user_id(user_id: str) -> str:
    if not user_id.strip():
        raise WidgetRefused("The identity names no user.")
    if len(user_id) > USER_ID_MAX_CHARS:
        raise WidgetRefused(f"The user id is longer than {USER_ID_MAX_CHARS} characters.")
    return user_id
