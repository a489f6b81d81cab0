"""HubSpot response bodies as the connector parses them (connectors.hubspot.wire._json)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest

from crmsync.connectors.hubspot.wire import _json


@dataclass
class Body:
    """What the SDK hands back with ``_preload_content=False``: the body as bytes."""

    data: bytes


@pytest.mark.parametrize("text", [
    '{"results": [{"id": "101", "properties": {"email": "a@b.c", "n": "12"}}], '
    '"paging": {"next": {"after": "100"}}}',
    '{"results": [{"from": {"id": "7"}, "to": [{"toObjectId": 9007199254740993}]}]}',
    '{"total": 0, "results": []}',
    '{"s": "caf\\u00e9 \\ud83d\\ude00"}',
])
def test_bodies_parse_as_json_parses_them(text: str) -> None:
    assert _json(Body(text.encode())) == json.loads(text)


def test_what_python_json_takes_and_stricter_parsers_refuse_still_parses() -> None:
    assert math.isnan(_json(Body(b'{"score": NaN}'))["score"])
    assert _json(Body(b'{"name": "\\ud800"}')) == {"name": "\ud800"}


def test_an_empty_or_non_object_body_is_an_empty_answer_and_garbage_still_raises() -> None:
    assert _json(Body(b"")) == {}
    assert _json(Body(b"[1, 2]")) == {}
    with pytest.raises(ValueError):
        _json(Body(b"<html>bad gateway</html>"))
