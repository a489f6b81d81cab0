"""A strict JSON parser that remembers where every value and key came from.

The standard library's parser forgets positions, and a rule-file error must point at
``file:line:col``. This small recursive-descent parser returns the same Python values as
:func:`json.loads` plus a source map: JSON pointer -> (line, column) of each value, and
``pointer + "#key"`` -> position of each object key. Both are 1-based, as editors count.

It also rejects what :func:`json.loads` silently accepts but a person editing rules never
means: duplicate keys, ``NaN``/``Infinity``, and nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: Deeper documents are refused (also keeps the recursive parser far from Python's limit).
MAX_DEPTH = 64

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_STRING_CHUNK = re.compile(r'[^"\\\x00-\x1f]*')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class JSONPositionError(ValueError):
    """Broken JSON, located.

    Attributes:
        line: 1-based line of the problem.
        col: 1-based column of the problem.
        msg: What is wrong, in words.
    """

    def __init__(self, msg: str, line: int, col: int, pointer: str = "",
                 hint: str | None = None) -> None:
        super().__init__(f"{line}:{col}: {msg}")
        self.msg = msg
        self.line = line
        self.col = col
        #: The JSON pointer of the innermost value being read ("" for the document itself).
        self.pointer = pointer
        #: What usually causes this mistake, when the parser can tell.
        self.hint = hint


@dataclass
class SourceMap:
    """Positions of values (by JSON pointer) and of object keys (by ``pointer + '#key'``)."""

    text: str
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    def locate(self, pointer: str, *, key: bool = False) -> tuple[int, int]:
        """Return ``(line, col)`` of the value (or key) at ``pointer``.

        Falls back to the nearest located ancestor, so a pointer to something that does not
        exist (a missing property) still lands on the object that lacks it.
        """
        if key and pointer + "#key" in self.positions:
            return self.positions[pointer + "#key"]
        while pointer:
            if pointer in self.positions:
                return self.positions[pointer]
            pointer = pointer.rsplit("/", 1)[0]
        return self.positions.get("", (1, 1))


def escape_pointer_token(token: str | int) -> str:
    """Escape one RFC 6901 reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")


def to_pointer(path: Any) -> str:
    """Return the RFC 6901 pointer of a sequence of keys and indexes."""
    return "".join("/" + escape_pointer_token(part) for part in path)


def parse(text: str) -> tuple[Any, SourceMap]:
    """Parse ``text`` as one JSON document.

    Returns:
        The value and its source map.

    Raises:
        JSONPositionError: The text is not valid JSON (or has duplicate keys, NaN, or
            excessive nesting), with the 1-based line and column of the first problem.
    """
    parser = _Parser(text)
    return parser.document(), parser.source_map


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.source_map = SourceMap(text)
        # The innermost value being read: where a syntax error is (left as it is on failure).
        self.pointer = ""
        # Offsets of line starts, for offset -> (line, col) by bisection.
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def where(self, offset: int) -> tuple[int, int]:
        from bisect import bisect_right

        line = bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1

    def fail(self, msg: str, offset: int | None = None, *,
             hint: str | None = None) -> JSONPositionError:
        line, col = self.where(self.pos if offset is None else offset)
        return JSONPositionError(msg, line, col, self.pointer, hint)

    def skip_ws(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def document(self) -> Any:
        if self.text.startswith("\ufeff"):
            self.pos = 1
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.fail("the file is empty; expected a JSON object")
        value = self.value("", 0)
        self.skip_ws()
        if self.pos < len(self.text):
            raise self.fail("unexpected text after the end of the JSON document")
        return value

    def value(self, pointer: str, depth: int) -> Any:
        outer, self.pointer = self.pointer, pointer
        result = self._value(pointer, depth)
        self.pointer = outer
        return result

    def _value(self, pointer: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        self.source_map.positions[pointer] = self.where(self.pos)
        text = self.text
        if self.pos >= len(text):
            raise self.fail("unexpected end of file; expected a value")
        char = text[self.pos]
        if char == "{":
            return self.obj(pointer, depth)
        if char == "[":
            return self.array(pointer, depth)
        if char == '"':
            return self.string()
        for word, result in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, self.pos):
                self.pos += len(word)
                return result
        match = _NUMBER.match(text, self.pos)
        if match and match.end() > self.pos:
            self.pos = match.end()
            if match.group(1) or match.group(2):
                number = float(match.group(0))
                if number in (float("inf"), float("-inf")):
                    raise self.fail("number is too large", match.start())
                return number
            return int(match.group(0))
        if text.startswith(("NaN", "Infinity", "-Infinity"), self.pos):
            raise self.fail("NaN and Infinity are not JSON numbers")
        if char in "'":
            raise self.fail("strings must use double quotes (\")",
                            hint='JSON writes text as "text"')
        if char in "}]":
            raise self.fail(f"unexpected '{char}'; expected a value (trailing comma?)")
        raise self.fail(f"unexpected character {char!r}; expected a value")

    def obj(self, pointer: str, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        self.pos += 1
        self.skip_ws()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return result
        while True:
            self.skip_ws()
            if not self.text.startswith('"', self.pos):
                if self.text.startswith("}", self.pos):
                    raise self.fail("trailing comma before '}'")
                raise self.fail("expected a property name in double quotes",
                                hint="a comma with nothing after it, or a name without double "
                                     'quotes? JSON writes "name": value')
            key_offset = self.pos
            key = self.string()
            child = pointer + "/" + escape_pointer_token(key)
            if key in result:
                raise self.fail(f"duplicate key {key!r}", key_offset)
            self.source_map.positions[child + "#key"] = self.where(key_offset)
            self.skip_ws()
            if not self.text.startswith(":", self.pos):
                raise self.fail(f"expected ':' after the key {key!r}")
            self.pos += 1
            self.skip_ws()
            result[key] = self.value(child, depth + 1)
            self.skip_ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return result
            raise self.fail("expected ',' or '}' after a property (missing comma?)")

    def array(self, pointer: str, depth: int) -> list[Any]:
        result: list[Any] = []
        self.pos += 1
        self.skip_ws()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return result
        while True:
            self.skip_ws()
            if self.text.startswith("]", self.pos):
                raise self.fail("trailing comma before ']'")
            result.append(self.value(f"{pointer}/{len(result)}", depth + 1))
            self.skip_ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return result
            raise self.fail("expected ',' or ']' after an item (missing comma?)")

    def string(self) -> str:
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        text = self.text
        while True:
            chunk = _STRING_CHUNK.match(text, self.pos)
            parts.append(chunk.group(0))  # type: ignore[union-attr]
            self.pos = chunk.end()  # type: ignore[union-attr]
            if self.pos >= len(text):
                raise self.fail("unterminated string", start)
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(parts)
            if char == "\\":
                escape = text[self.pos + 1 : self.pos + 2]
                if escape in _ESCAPES:
                    parts.append(_ESCAPES[escape])
                    self.pos += 2
                elif escape == "u":
                    digits = text[self.pos + 2 : self.pos + 6]
                    if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                        raise self.fail("invalid \\u escape")
                    code = int(digits, 16)
                    self.pos += 6
                    if 0xD800 <= code < 0xDC00 and text.startswith("\\u", self.pos):
                        low_digits = text[self.pos + 2 : self.pos + 6]
                        if len(low_digits) == 4 and all(
                            c in "0123456789abcdefABCDEF" for c in low_digits
                        ):
                            low = int(low_digits, 16)
                            if 0xDC00 <= low < 0xE000:
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                                self.pos += 6
                    # A lone surrogate cannot be encoded later; keep the text printable.
                    parts.append("\ufffd" if 0xD800 <= code < 0xE000 else chr(code))
                else:
                    raise self.fail(f"invalid escape '\\{escape}'")
            else:
                raise self.fail("control character in string (use \\n for a line break)")
