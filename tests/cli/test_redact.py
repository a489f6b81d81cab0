"""crmsync.redact: every credential shape we know of is masked, and ordinary text is left alone."""

from __future__ import annotations

import pytest

from crmsync.config import redact_url as config_redact_url
from crmsync.redact import redact_text, redact_url

PAT = "pat-na1-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
SF_SESSION = "00D5g000004ABCD!AQ4AQH8rXyz.abcDEF_123"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"ValueError: Invalid header value b'Bearer {PAT}\\r'", PAT),
        (f"Invalid leading whitespace in header Authorization: 'Bearer {SF_SESSION}\\n'",
         SF_SESSION),
        ("InvalidHeader: Invalid return character or leading space in header: Authorization",
         None),
        ("{'Authorization': 'OAuth abc.def.ghi', 'Accept': 'json'}", "abc.def.ghi"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("postgresql://crm:s3cr3t@db.example:5432/x", "s3cr3t"),
        ("cannot open postgresql+psycopg://db/x?password=hunter2&sslmode=require", "hunter2"),
        ("GET https://api.example/v3?hapikey=abc123def&limit=10", "abc123def"),
        ("https://files.example/x?X-Amz-Signature=deadbeef", "deadbeef"),
        ('host=db user=crm password=hunter2 dbname=x', "hunter2"),
        ('{"access_token": "eyJhbGciOi", "instance_url": "https://x"}', "eyJhbGciOi"),
        (f"token {PAT} refused", PAT),
        (f"session {SF_SESSION} expired", SF_SESSION),
    ],
)
def test_redact_text_masks_credentials(text: str, secret: str | None) -> None:
    redacted = redact_text(text)
    if secret is not None:
        assert secret not in redacted
    assert "***" in redacted or secret is None


@pytest.mark.parametrize(
    "text",
    [
        "rules.json:100:10: error: unknown fact 'emplyees' (at /rules/0)",
        "record 003000000000001 rejected: REQUIRED_FIELD_MISSING [LastName]",
        "another run (r-20261123-abc) is syncing this CRM; nothing done",
        "retrying in 4 s (2/5): HTTP 429 from api.hubapi.com",
        "task_key=abc status=ok read=150",
    ],
)
def test_redact_text_leaves_ordinary_messages_alone(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://crm:s3cr3t@db:5432/x", "postgresql+psycopg://crm:***@db:5432/x"),
        ("postgresql://db/x?password=hunter2", "postgresql://db/x?password=***"),
        ("postgresql://db/x?sslmode=require&PWD=a&user=crm", "postgresql://db/x?sslmode=require&PWD=***&user=crm"),
        ("https://h/p?api_key=1&token=2&sig=3&page=4", "https://h/p?api_key=***&token=***&sig=***&page=4"),
        ("https://h/p?api%5Fkey=1", "https://h/p?api%5Fkey=***"),
        ("sqlite:///.crmsync/state.db", "sqlite:///.crmsync/state.db"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://[::1]:99999/x", "***"),  # unparseable port: show nothing
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_config_redact_url_is_the_same_function() -> None:
    assert config_redact_url is redact_url


def test_redact_imports_only_the_standard_library() -> None:
    import ast
    import sys
    from pathlib import Path

    import crmsync.redact as module

    tree = ast.parse(Path(module.__file__).read_text("utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
