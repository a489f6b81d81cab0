"""``to_bool`` and ``to_datetime`` answer text as the plain regex and set-test policy does.

Their text cases skip work for what HubSpot sends (exact ``true``/``false``; ASCII text that is
not epoch digits skips the ``_DIGITS`` regex). The references below are the plain spellings of
the policy; they must agree on every generated value.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from typing import Any

from crmsync.coerce import _FALSE, _TRUE, _from_epoch_ms, to_bool, to_datetime

_DIGITS = re.compile(r"^-?\d{1,16}$")


def _bool_reference(value: Any) -> bool | None:
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
    return to_bool(value)


def _datetime_reference(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return to_datetime(value)
    text = value.strip()
    if not text or len(text) > 100:
        return None
    if _DIGITS.match(text):
        return _from_epoch_ms(int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_PIECES = ["true", "TRUE", "false", "Yes", "n", "on", "OFF", "1", "0", "checked", "unchecked",
           "t", "f", "-", "--", "+", "12", "1700000000000", "9" * 16, "9" * 17, "٣", "１",
           "²", "2026-11-23", "T09:00:00", "Z", "+02:00", ".5", " ", "\n", "\t", "x", "ü", ""]


def _texts(rng: random.Random, count: int) -> list[str]:
    out = list(_PIECES)
    for _ in range(count):
        out.append("".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 3))))
    return out


class _Text(str):
    pass


def test_text_coercions_equal_their_plain_references() -> None:
    rng = random.Random(5)
    texts = _texts(rng, 20000)
    texts += [_Text(t) for t in texts[:200]]
    for text in texts:
        assert to_bool(text) is _bool_reference(text), text
        got, want = to_datetime(text), _datetime_reference(text)
        assert got == want and type(got) is type(want), text
