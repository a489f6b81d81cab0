"""Scrub credentials out of text before it reaches a terminal, a log or an error message.

Used by the CLI's last-resort error handler (an SDK's exception may quote a request header), by
the log handlers and by anything that shows a URL (state store, CRM base URL). Imports only the
standard library, so every layer may use it.

What is replaced by ``***``:

- ``Bearer``/``OAuth`` tokens and the value of any ``Authorization:`` header;
- URL passwords (``scheme://user:***@host``) and credential-looking query parameters
  (``?password=***``, ``token``, ``access_token``, ``api_key``, ``sig``...);
- HubSpot private-app tokens (``pat-na1-…``) and Salesforce session ids (``00D…!…``).

Redaction is deliberately greedy: showing ``***`` where nothing secret was is harmless, the
opposite is not.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus, urlsplit, urlunsplit

MASK = "***"

#: Query parameter / ``key=value`` names whose values are credentials (compared lower-case).
CREDENTIAL_KEYS = frozenset({
    "password", "passwd", "pass", "pwd", "token", "access_token", "refresh_token", "id_token",
    "auth_token", "session_token", "security_token", "secret", "client_secret", "key", "apikey",
    "api_key", "hapikey", "private_key", "sig", "signature", "sessionid", "session_id", "sid",
    "credential", "credentials", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "assertion",
})

_KEY_ALTERNATION = "|".join(sorted((re.escape(k) for k in CREDENTIAL_KEYS), key=len, reverse=True))

# Order matters: headers first (they swallow the scheme word), then token shapes.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: <anything up to the end of the line or a closing quote>
    (re.compile(r"""(?i)(\bauthorization['"]?\s*[:=]\s*['"]?)([^'"\r\n]+)"""), r"\1" + MASK),
    # Bearer/OAuth tokens wherever they appear (b'Bearer pat-…\r' in an SDK's ValueError).
    (re.compile(r"""(?i)\b(bearer|oauth)(\s+)[^\s'",;)\]}]+"""), r"\1\2" + MASK),
    # user:password@host in any URL-looking text.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*):[^\s@/'\"]*@"), r"\1:" + MASK + "@"),
    # key=value pairs, in query strings and in prose / DSNs ("password=…", "?token=…").
    (re.compile(rf"""(?i)(?<![\w-])({_KEY_ALTERNATION})(\s*=\s*)(?!\*\*\*)[^\s&#;,'"<>)\]}}]+"""),
     r"\1\2" + MASK),
    # JSON / dict reprs: "token": "…", 'password': '…'.
    (re.compile(rf"""(?i)(['"](?:{_KEY_ALTERNATION})['"]\s*:\s*['"])[^'"]*(['"])"""),
     r"\1" + MASK + r"\2"),
    # HubSpot private-app / personal access tokens.
    (re.compile(r"\bpat-[a-z]{2,3}\d?-[A-Za-z0-9-]+"), "pat-" + MASK),
    # Salesforce session ids / access tokens: org id (00D + 12 or 15 chars) ! opaque part.
    (re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-]+"), "00D" + MASK),
]


def redact_text(text: str) -> str:
    """Return ``text`` with every credential-looking substring replaced by ``***``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _is_credential(raw_key: str) -> bool:
    return unquote_plus(raw_key).lower() in CREDENTIAL_KEYS


def redact_url(url: str) -> str:
    """Return ``url`` with its password and credential query parameters replaced by ``***``.

    A URL that cannot be parsed is shown as ``***`` altogether.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:{MASK}@{host}"
        if port is not None:
            netloc += f":{port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in CREDENTIAL_KEYS for k, _ in pairs):
            # Rebuild by hand so that the mask is not percent-encoded and other values keep
            # their original spelling.
            query = "&".join(
                f"{raw.split('=', 1)[0]}={MASK}" if _is_credential(raw.split("=", 1)[0]) else raw
                for raw in query.split("&")
            )
    if netloc == parts.netloc and query == parts.query:
        return url  # urlunsplit would turn sqlite:/// into sqlite:/
    return urlunsplit(parts._replace(netloc=netloc, query=query))


__all__ = ["CREDENTIAL_KEYS", "MASK", "redact_text", "redact_url"]
