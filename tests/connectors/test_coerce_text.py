"""Coercion of text, the shape HubSpot sends every value in, at the edges of its fast paths.

``crmsync.coerce`` handles plain ASCII digit text and text booleans/datetimes before anything
else (the per-contact cost of a run); these cases pin that the policy in its docstring still
holds right next to that shortcut: signs, separators, padding, non-ASCII digits, length.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from crmsync.coerce import coerce


@pytest.mark.parametrize(("text", "expected"), [
    ("120", 120), (" 0042 ", 42), ("1,200", 1200), ("+5", 5), ("-3", -3), ("5.5", 5),
    ("12.0", 12), ("１２", 12),  # full-width digits are digits (as int() reads them)
    ("²", None), ("", None), ("  ", None), ("n/a", None), ("1e3", 1000),
    ("9" * 100, int("9" * 100)), ("9" * 101, None),
])
def test_int_text(text: str, expected: int | None) -> None:
    assert coerce(text, "int") == expected
    assert type(coerce(text, "int")) is (int if expected is not None else type(None))


@pytest.mark.parametrize(("text", "expected"), [
    ("120", 120), ("007", 7), ("-0.5", -0.5), ("1,234.5", 1234.5), ("nan", None),
    ("inf", None), ("9" * 101, None),
])
def test_number_text(text: str, expected: Any) -> None:
    assert coerce(text, "number") == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), (" TRUE ", True), ("Checked", True), ("1", True), ("y", True),
    ("false", False), ("Off", False), ("0", False), ("unchecked", False),
    ("maybe", None), ("", None), ("2", None),
])
def test_bool_text(text: str, expected: bool | None) -> None:
    assert coerce(text, "bool") is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-23T09:00:00Z", datetime(2026, 11, 23, 9, tzinfo=UTC)),
    (" 2026-11-23T09:00:00.000Z ", datetime(2026, 11, 23, 9, tzinfo=UTC)),
    ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
    ("1795424400000", datetime(2026, 11, 23, 9, tzinfo=UTC)),  # epoch ms, as HubSpot sends
    ("not a date", None), ("", None),
])
def test_datetime_text(text: str, expected: datetime | None) -> None:
    assert coerce(text, "datetime") == expected


def test_non_text_values_keep_their_rules() -> None:
    assert coerce(True, "int") is None and coerce(True, "bool") is True
    assert coerce(1, "bool") is True and coerce(0.0, "bool") is False
    assert coerce(5.9, "int") == 5 and coerce(float("nan"), "number") is None
    assert coerce(1795424400000, "datetime") == datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert coerce(False, "datetime") is None and coerce(12, "str") == "12"
