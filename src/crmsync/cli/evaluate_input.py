"""What ``crmsync evaluate`` notices in its input without slowing down: facts no rule file or
field map knows (ignored by the engine) and values not of their fact's type (read as missing).

Both are legal: a contact file may carry extra columns, and an odd value must never stop an
evaluation (rules/README.md, "Missing and odd values"). But a sales-ops user testing a rule
change offline should not be left wondering why ``employees: "lots"`` decided as if blank.
Unknown names are checked on every line (one set difference); types only on the first
:data:`TYPE_SAMPLE` contacts, because coercing every value twice would cost as much as
deciding. Only fact names and line numbers are reported, never a value (contact data).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from crmsync.coerce import coerce
from crmsync.rules.validate_base import did_you_mean, kind_word

#: Contacts whose every value is checked against its fact's type.
TYPE_SAMPLE = 1000
#: Keys a contact line may carry besides facts.
_NOT_FACTS = frozenset({"id"})


class InputCheck:
    """Counts what :mod:`crmsync.cli.evaluate_input` looks for, line by line."""

    def __init__(self, fact_types: Mapping[str, str]) -> None:
        self._types = dict(fact_types)
        self._known = frozenset(self._types) | _NOT_FACTS
        self._knows_all = self._known.issuperset
        self._checked = 0
        self.unknown: dict[str, int] = {}  # fact name -> first line
        self.odd: Counter[str] = Counter()
        self._odd_first: dict[str, int] = {}

    def see(self, number: int, record: Mapping[str, Any]) -> None:
        """Look at one contact (line ``number``)."""
        if not self._knows_all(record):  # a bool, no set built: the common case is cheap
            for name in record.keys() - self._known:
                self.unknown.setdefault(name, number)
        if self._checked >= TYPE_SAMPLE:
            return
        self._checked += 1
        types = self._types
        for name, value in record.items():
            kind = types.get(name)
            if kind is not None and value is not None and coerce(value, kind) is None:
                self.odd[name] += 1
                self._odd_first.setdefault(name, number)

    def notes(self, source: str) -> list[str]:
        """One line per finding, for stderr (empty when the input was clean)."""
        lines = []
        if self.odd:
            scope = ("" if self._checked < TYPE_SAMPLE
                     else f" (the first {TYPE_SAMPLE:,} contacts checked)")
            found = "; ".join(
                f"{name} {count}× (expected {kind_word(self._types[name])}, first at "
                f"{source}:{self._odd_first[name]})" for name, count in self.odd.most_common())
            lines.append(f"crmsync: note: values read as missing, not of their fact's type"
                         f"{scope}: {found}")
        if self.unknown:
            named = []
            for name, line in sorted(self.unknown.items(), key=lambda item: item[1]):
                hint = did_you_mean(name, self._types)
                named.append(f"{name} (first at {source}:{line}{f'; {hint}' if hint else ''})")
            lines.append("crmsync: note: ignored, not a fact the rules or field map know: "
                         + ", ".join(named))
        return lines
