"""Form tokens: every state-changing POST (undo, pause, resume, run now) carries one.

A token is an HMAC, under a key made at start-up, of the action and its target
(``undo:r20261207...``). A page of the console embeds it in its form; another site cannot read
that page (same-origin policy), so it cannot forge the POST, and a token for one action is worth
nothing for another. A restart makes old pages' tokens stale: the form is simply shown again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


class FormTokens:
    """Make and check form tokens under one random key."""

    def __init__(self, key: bytes | None = None) -> None:
        """Use ``key`` (tests), else 32 fresh random bytes."""
        self._key = key or secrets.token_bytes(32)

    def make(self, action: str, target: str) -> str:
        """Return the token of ``action`` on ``target``."""
        message = f"{action}\x00{target}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def check(self, action: str, target: str, token: str | None) -> bool:
        """True when ``token`` is the one :meth:`make` returns for ``action`` on ``target``."""
        return bool(token) and hmac.compare_digest(self.make(action, target), str(token))
