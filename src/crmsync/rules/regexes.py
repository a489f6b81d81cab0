"""Safe regular expressions for the ``matches`` operator.

A rule file must not be able to hang a sync run, so patterns that can backtrack
catastrophically are refused at validation time: back-references, and any repetition of a
group that itself repeats or offers alternatives (``(a+)+``, ``(a|ab)*``). At evaluation the
searched text is also capped at :data:`MAX_SUBJECT` characters.
"""

from __future__ import annotations

import re
from typing import Any

try:  # Python 3.11+: the parser moved to re._parser; sre_parse is its deprecated alias.
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
    from re import _constants as _sre_constants  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

#: Only this many leading characters of a value are searched.
MAX_SUBJECT = 1000
#: Longest pattern accepted.
MAX_PATTERN = 200

_REPEATS = {
    _sre_constants.MAX_REPEAT,
    _sre_constants.MIN_REPEAT,
    *([_sre_constants.POSSESSIVE_REPEAT] if hasattr(_sre_constants, "POSSESSIVE_REPEAT") else []),
}
_BACKREFS = {_sre_constants.GROUPREF, _sre_constants.GROUPREF_EXISTS}


class UnsafeRegexError(ValueError):
    """The pattern is invalid, or could take exponential time on some input."""


def compile_safe(pattern: str) -> re.Pattern[str]:
    """Compile ``pattern`` case-insensitively after checking it cannot backtrack badly.

    Raises:
        UnsafeRegexError: With a message a non-programmer can act on.
    """
    if len(pattern) > MAX_PATTERN:
        raise UnsafeRegexError(f"pattern is longer than {MAX_PATTERN} characters")
    try:
        parsed = _sre_parse.parse(pattern)
        compiled = re.compile(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError, ValueError) as error:
        raise UnsafeRegexError(f"not a valid regular expression: {error}") from None
    _check(list(parsed), inside_repeat=False)
    return compiled


def _check(items: list[Any], *, inside_repeat: bool) -> bool:
    """Walk parsed items; return whether they contain repetition or alternation."""
    risky = False
    for op, arg in items:
        if op in _BACKREFS:
            raise UnsafeRegexError("back-references (\\1, (?P=name)) are not allowed")
        if op in _REPEATS:
            low, high, body = arg
            repeats = high is _sre_constants.MAXREPEAT or high > 1
            inner = _check(list(body), inside_repeat=inside_repeat or repeats)
            if repeats and inner:
                raise UnsafeRegexError(
                    "a repeated group contains repetition or alternatives (like (a+)+ or "
                    "(a|ab)*), which can take exponential time; simplify the pattern"
                )
            risky = risky or repeats or inner
        elif op is _sre_constants.BRANCH:
            for branch in arg[1]:
                _check(list(branch), inside_repeat=inside_repeat)
            risky = True
        elif op is _sre_constants.SUBPATTERN:
            risky = _check(list(arg[-1]), inside_repeat=inside_repeat) or risky
        elif op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT):
            risky = _check(list(arg[1]), inside_repeat=inside_repeat) or risky
        elif op is _sre_constants.IN and len(arg) > 1:
            # A character class is one step; it is not an alternation of sub-patterns.
            continue
    return risky
