"""Signed tokens for the URLs a customer follows: unsubscribe, clicks, opens.

A token is ``<payload>.<mac>``: the payload a small JSON object in URL-safe base64,
the mac the first 16 bytes of HMAC-SHA256 over the token's purpose and the payload,
keyed by ``[server] secret``. Nothing in it names the customer (the payload holds a
send's idempotency key, whose row part is already a hash), it never expires (an
opt-out link must work years later), and a token made for one purpose is refused for
another. A forged, altered or truncated token reads as None: the caller records
nothing. Written by hand on the standard library's hmac: it is a dozen lines, and
itsdangerous would add its own timestamp and format for nothing we need.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, body: str) -> bytes:
    return hmac.new(secret, f"{purpose}.{body}".encode(), hashlib.sha256).digest()[:MAC_BYTES]


def make_token(secret: bytes, purpose: str, payload: dict[str, Any]) -> str:
    """A token carrying ``payload`` for ``purpose`` (``"u"``, ``"c"``, ``"o"``)."""
    body = _b64(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(secret, purpose, body))}"


def read_token(secret: bytes, purpose: str, token: str) -> dict[str, Any] | None:
    """The payload of a token made with this secret for this purpose, else None."""
    body, dot, mac = token.partition(".")
    if not dot or not body or len(token) > 4096:
        return None
    try:
        # Compared as text: base64 lets several spellings decode to the same bytes, and
        # an altered token must not read as the original.
        expected = _b64(_mac(secret, purpose, body))
        if not hmac.compare_digest(mac.encode("ascii"), expected.encode("ascii")):
            return None
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def link(public_url: str, secret: bytes, purpose: str, payload: dict[str, Any]) -> str:
    """The public URL of a token: ``https://crm.example.com/u/TOKEN``.

    The purpose is the path's first segment, so the endpoint's routes (``/u/``,
    ``/c/``, ``/o/``) and the tokens they read cannot disagree.
    """
    return f"{public_url.rstrip('/')}/{purpose}/{make_token(secret, purpose, payload)}"
