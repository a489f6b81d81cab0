"""The stdlib fast path of ``matches`` decides exactly as RE2 does, and only where it is linear."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.rules.regexes import compile_safe

#: Patterns the fast path takes (no repetition beyond ``?``, few alternatives, shared syntax).
FAST = [
    r"\b(chief|ceo|cto|cfo|vp|svp|vice president|head of|director|founder|co-founder|owner)\b",
    r"^c[a-z]o", r"vp\b", r"\bk\b", r"colou?r", r"[^a-z]vp", r"\d\d\d",
    r"a.b", r"(?:head|chief) of", r"\Bsales", r"s\w",
]
#: Patterns it leaves to RE2: repetition, syntax the engines read differently, many paths.
SLOW = [r"\w*\w*!", r"(a+)+$", r"vp\s", r"end$", r"[[:alpha:]]", r"(?i)vp", r"\Avp",
        "(ab|a)" * 9, r"direktör", r"a{2}"]

texts = st.text(alphabet=st.sampled_from(list("aAbBcCkKsSvVpP019 _-.!\n\t\x0b") +
                                         ["é", "Ö", "\u212a", "\u017f", "ß", "\u00a0"]),
                max_size=40)


@pytest.mark.parametrize("pattern", FAST)
def test_qualifying_patterns_take_the_fast_path(pattern) -> None:
    assert compile_safe(pattern).ascii_search is not None


@pytest.mark.parametrize("pattern", SLOW)
def test_other_patterns_stay_on_re2(pattern) -> None:
    assert compile_safe(pattern).ascii_search is None


@settings(max_examples=400, deadline=None)
@given(pattern=st.sampled_from(FAST), text=texts)
def test_the_fast_path_agrees_with_re2_on_any_text(pattern, text) -> None:
    regex = compile_safe(pattern)
    # Kelvin sign and long s fold to k and s in RE2; the fast path never sees them (not ASCII).
    assert bool(regex.search(text)) == bool(regex.search_prefix(text))


def test_titles_decide_the_same_whichever_engine_runs() -> None:
    regex = compile_safe(FAST[0])
    for title in ["VP of Sales", "Senior Director", "MVP", "Ärztlicher Direktor", "\u212aCEO",
                  "Head of IT", "co-founder", "CFO/COO", "vice  president"]:
        assert bool(regex.search(title)) == bool(regex.search_prefix(title)), title
