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

try:  # Python 3.11+: the parser moved to re._parser; sre_parse is its deprecated alias.
    from re import _constants as _C  # type: ignore[attr-defined]
    from re import _parser as _P  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants as _C  # type: ignore[no-redef]
    import sre_parse as _P  # type: ignore[no-redef]

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
        search_prefix: RE2's search: ``search_prefix(text)`` is not None when the pattern occurs
            in ``text`` (callers cut ``text`` to :data:`MAX_SUBJECT` characters); the compiled
            evaluator binds it directly.
        ascii_search: The same search on stdlib ``re``, for ASCII text only, when the pattern
            cannot backtrack badly and means the same to both engines (see "a faster path"
            below); else ``None``.
    """

    __slots__ = ("ascii_search", "pattern", "search_prefix")

    def __init__(self, pattern: str, search_prefix: Callable[[str], Any],
                 ascii_search: Callable[[str], Any] | None = None) -> None:
        self.pattern = pattern
        self.search_prefix = search_prefix
        self.ascii_search = ascii_search

    def search(self, text: str) -> Any:
        """Return a value that is not None when the pattern occurs in the first MAX_SUBJECT
        characters."""
        text = text[:MAX_SUBJECT]
        if self.ascii_search is not None and text.isascii():
            return self.ascii_search(text)
        return self.search_prefix(text)

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
    return SafeRegex(pattern, searcher.Match, _ascii_search(pattern))


def _explain(pattern: str, error: Exception) -> UnsafeRegexError:
    raw = error.args[0] if error.args else ""
    detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for found, message, hint in _UNSUPPORTED:
        if found.search(pattern):
            return UnsafeRegexError(message, hint)
    return UnsafeRegexError(f"not a valid regular expression: {detail}",
                            "see https://github.com/google/re2/wiki/Syntax")


# -- a faster path for patterns that cannot backtrack badly, on ASCII text ------------------------
#
# RE2's Python binding costs about 1 µs a search, stdlib ``re`` about 0.6 µs on a title. For a
# pattern with no repetition (optional parts aside) and few alternatives, a backtracking engine
# tries a bounded number of paths at each position, so its time is linear in the text too. On
# ASCII text, with ASCII classes and case folding, such a pattern means exactly what it means to
# RE2: so it runs on stdlib ``re`` there, and on RE2 for any other text.

#: Most paths a backtracking search may try at one position for the fast path.
MAX_PATHS = 256
#: Escapes whose meaning is the same in RE2 and in stdlib ``re`` with ``re.ASCII``. Not ``\s``:
#: RE2's excludes the vertical tab, Python's does not.
_SAME_ESCAPES = frozenset("bBwWdD")


def _same_syntax(pattern: str) -> bool:
    """Whether ``pattern`` uses only syntax both engines read alike (checked conservatively)."""
    if not pattern.isascii() or "[:" in pattern or "$" in pattern:
        return False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            following = pattern[index + 1: index + 2]
            if not following or (following.isalnum() and following not in _SAME_ESCAPES):
                return False
            index += 2
            continue
        if char == "(" and pattern[index + 1: index + 2] == "?" and (
            pattern[index + 2: index + 3] != ":"
        ):
            return False  # flags, named groups and the like: leave them to RE2
        index += 1
    return True


def _paths(items: Any) -> int | None:
    """Paths a backtracking search can take through ``items`` at one position (``None``:
    unbounded, i.e. something repeats, or an element outside the shared syntax)."""
    total = 1
    for op, arg in items:
        if op in (_C.LITERAL, _C.NOT_LITERAL, _C.ANY):
            count: int | None = 1
        elif op is _C.IN:
            count = 1 if all(
                kind is not _C.CATEGORY or value in _SAME_CATEGORIES for kind, value in arg
            ) else None
        elif op is _C.AT:
            count = 1 if arg in _SAME_ANCHORS else None
        elif op is _C.BRANCH:
            counts = [_paths(branch) for branch in arg[1]]
            count = None if None in counts else sum(counts)  # type: ignore[arg-type]
        elif op is _C.SUBPATTERN:
            _group, add_flags, del_flags, body = arg
            count = _paths(body) if not (add_flags or del_flags) else None
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT):
            low, high, body = arg
            inner = _paths(body) if high <= 1 else None
            count = None if inner is None else inner + (1 if low == 0 else 0)
        else:
            count = None
        if count is None:
            return None
        total *= count
        if total > MAX_PATHS:
            return None
    return total


def _ascii_search(pattern: str) -> Callable[[str], Any] | None:
    """stdlib ``re`` search for ``pattern`` when it qualifies for the fast path, else None."""
    if not _same_syntax(pattern):
        return None
    try:
        parsed = _P.parse(pattern, re.IGNORECASE | re.ASCII)
        compiled = re.compile(pattern, re.IGNORECASE | re.ASCII)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    return compiled.search if _paths(list(parsed)) is not None else None


_SAME_CATEGORIES = frozenset({_C.CATEGORY_DIGIT, _C.CATEGORY_NOT_DIGIT, _C.CATEGORY_WORD,
                              _C.CATEGORY_NOT_WORD})
_SAME_ANCHORS = frozenset({_C.AT_BOUNDARY, _C.AT_NON_BOUNDARY, _C.AT_BEGINNING})
