"""Safe regular expressions for the ``matches`` operator: RE2, linear in the text, always.

A rule file must not be able to hang a sync run. Python's ``re`` backtracks: patterns as
innocent-looking as ``\\w*\\w*\\w*\\w*\\w*!`` take seconds on an 80-character title, and no
syntactic filter catches every such pattern. So ``matches`` runs on RE2 (``google-re2``),
whose automaton matches in time linear in the text for every pattern it accepts. What RE2
cannot run in linear time it refuses to compile, and validation reports that with a hint:
back-references (``\\1``, ``(?P=name)``), look-ahead and look-behind (``(?=``, ``(?!``,
``(?<=``, ``(?<!``), possessive repeats (``a++``) and atomic groups.

Other limits, which bound the cost per value rather than its growth: patterns are at most
:data:`MAX_PATTERN` characters and only the first :data:`MAX_SUBJECT` characters of a value are
searched. Matching ignores case (Unicode case folding); ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are
ASCII classes in RE2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: Only this many leading characters of a value are searched.
MAX_SUBJECT = 1000
#: Longest pattern accepted.
MAX_PATTERN = 200

#: Features RE2 refuses (they need backtracking), as found in the pattern text -> what to tell
#: the person who wrote it. Consulted only after RE2 has refused the pattern, whose own
#: message is terse ("invalid perl operator: (?P").
_UNSUPPORTED: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(found), message, hint) for found, message, hint in (
        (r"\\[1-9]", "back-references (\\1, \\2, ...) are not supported",
         "match the repeated text explicitly, e.g. (ab)(ab) instead of (ab)\\1"),
        (r"\(\?P=", "named back-references ((?P=name)) are not supported",
         "match the repeated text explicitly"),
        (r"\(\?=", "look-ahead ((?=...)) is not supported",
         "combine two comparisons instead: {\"all\": [{... \"matches\": \"a\"}, "
         "{... \"matches\": \"b\"}]}"),
        (r"\(\?!", "negative look-ahead ((?!...)) is not supported",
         "put {\"not\": {\"fact\": ..., \"matches\": ...}} next to the positive pattern"),
        (r"\(\?<[=!]", "look-behind ((?<=...) or (?<!...)) is not supported",
         "combine two comparisons with \"all\" and \"not\" instead"),
        (r"\(\?>", "atomic groups ((?>...)) are not supported",
         "drop the (?> ... ) around the group: matching never backtracks here"),
        (r"[*+?}]\+", "possessive repeats (a++, a*+) are not supported",
         "write a+ or a*: matching never backtracks here, so they are not needed"),
        (r"\\Z", "this escape sequence is not supported", "write \\z for the end of the text"),
    )
)


class UnsafeRegexError(ValueError):
    """The pattern is invalid, or uses a feature that cannot run in linear time.

    Attributes:
        hint: What to write instead, when there is a known rewrite.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class SafeRegex:
    """A compiled ``matches`` pattern: case-insensitive, linear-time search.

    Attributes:
        pattern: The pattern as written in the rule file.
        search_prefix: ``search_prefix(text)`` is truthy when the pattern occurs in ``text``
            (callers cut ``text`` to :data:`MAX_SUBJECT` characters); the compiled evaluator
            binds it directly.
    """

    __slots__ = ("pattern", "search_prefix")

    def __init__(self, pattern: str, search_prefix: Callable[[str], Any]) -> None:
        self.pattern = pattern
        self.search_prefix = search_prefix

    def search(self, text: str) -> Any:
        """Return a truthy value when the pattern occurs in the first MAX_SUBJECT characters."""
        return self.search_prefix(text[:MAX_SUBJECT])

    def __repr__(self) -> str:
        return f"SafeRegex({self.pattern!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SafeRegex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(("SafeRegex", self.pattern))


def compile_safe(pattern: str) -> SafeRegex:
    """Compile ``pattern`` for case-insensitive, linear-time searching with RE2.

    Raises:
        UnsafeRegexError: With a message (and usually a hint) a non-programmer can act on.
    """
    import re2  # imported on first use: commands that never validate rules skip its start-up

    if len(pattern) > MAX_PATTERN:
        raise UnsafeRegexError(f"pattern is longer than {MAX_PATTERN} characters",
                               "split it into several comparisons combined with \"any\"")
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print to stderr; the error is reported, located
    try:
        re2.compile(pattern, options)  # for its error message; the Set below has none
        searcher = re2.Set.SearchSet(options)
        searcher.Add(pattern)
        searcher.Compile()
    except re2.error as error:
        raise _explain(pattern, error) from None
    except (ValueError, TypeError, OverflowError) as error:  # e.g. a lone surrogate
        raise UnsafeRegexError(f"not a valid regular expression: {error}") from None
    return SafeRegex(pattern, searcher.Match)


def _explain(pattern: str, error: Exception) -> UnsafeRegexError:
    raw = error.args[0] if error.args else ""
    detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for found, message, hint in _UNSUPPORTED:
        if found.search(pattern):
            return UnsafeRegexError(message, hint)
    return UnsafeRegexError(f"not a valid regular expression: {detail}",
                            "see https://github.com/google/re2/wiki/Syntax")
