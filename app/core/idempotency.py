"""The `Idempotency-Key` convention, the domain-free part: the header, its shape, and the
fingerprint that tells "the same request again" from "another request with the same key".

Where the keys are kept (a table, in the same transaction as the work they guard) belongs to
the domain that does the work; see app/wallet/idempotency.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255  # Stripe's limit; a UUID is the usual choice


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    fingerprint: str


def fingerprint(secret: str, scope: str, data: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of the operation (`scope`, e.g. "POST /payments") and its canonical JSON.

    Keyed, not a bare hash: the data may hold a card number, and a plain SHA-256 of one is
    reversed by trying the few million numbers that share its brand prefix and last four."""
    canonical = json.dumps(
        {"scope": scope, "data": data}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def idempotent_request(
    key: str | None, *, secret: str, scope: str, data: Mapping[str, Any]
) -> IdempotentRequest | None:
    """The key and fingerprint of a request, or None when the client sent no key."""
    if key is None:
        return None
    return IdempotentRequest(key=key, fingerprint=fingerprint(secret, scope, data))
