"""``--fail-on`` guards of ``crmsync rules diff``: a pull request check's tripwires (pure).

A guard reads ``OUTPUT:FROM->TO>LIMIT``: ``status:opportunity->disqualified>5%`` trips when
more than 5 % of the contacts that were opportunities become disqualified; ``>20`` is an
absolute count; ``>=`` is accepted too. ``*`` stands for any value on either side (any value
*other* than the other side's, so ``status:*->disqualified`` counts newly disqualified
contacts, and its share is of the whole population).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from crmsync.workbench.diff import MATRIX_OUTPUTS

_GUARD = re.compile(
    r"^\s*(?P<output>[a-z_]+)\s*:\s*(?P<old>[\w*]+)\s*->\s*(?P<new>[\w*]+)\s*"
    r"(?P<op>>=|>)\s*(?P<limit>\d+(?:\.\d+)?)\s*(?P<percent>%?)\s*$")
EXAMPLE = "status:opportunity->disqualified>5%"


class GuardSyntaxError(ValueError):
    """A guard that does not parse; ``hint`` says how to write it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Guard:
    """One parsed guard."""

    text: str
    output: str
    old: str
    new: str
    inclusive: bool
    limit: float
    percent: bool

    def check(self, result: dict[str, Any]) -> dict[str, Any]:
        """Evaluate against a :func:`~crmsync.workbench.diff.compare` result."""
        matrix = result["transitions"][self.output]["matrix"]
        count = base = 0
        for old, row in matrix.items():
            if self.old not in ("*", old):
                continue
            base += sum(row.values())
            for new, n in row.items():
                if self.new in ("*", new) and old != new:
                    count += n
        share = count / base if base else 0.0
        measured = share * 100 if self.percent else count
        tripped = measured >= self.limit if self.inclusive else measured > self.limit
        return {"guard": self.text, "count": count, "base": base, "share": round(share, 4),
                "tripped": tripped}


def parse_guard(text: str) -> Guard:
    """Parse one ``--fail-on`` value, or raise :class:`GuardSyntaxError`."""
    match = _GUARD.match(text)
    if match is None:
        raise GuardSyntaxError(
            f"cannot read the guard {text!r}",
            f"write OUTPUT:FROM->TO>LIMIT, like {EXAMPLE!r} (a share of the FROM contacts) "
            "or 'status:*->disqualified>20' (a count)")
    output = match["output"]
    if output not in MATRIX_OUTPUTS:
        raise GuardSyntaxError(f"the guard {text!r} names the output {output!r}",
                               f"guards watch {' or '.join(MATRIX_OUTPUTS)}"
                               f"{_did_you_mean(output, list(MATRIX_OUTPUTS))}")
    for side in ("old", "new"):
        value = match[side]
        if value != "*" and value not in MATRIX_OUTPUTS[output]:
            raise GuardSyntaxError(
                f"the guard {text!r}: {value!r} is not a {output} value",
                f"{output} is one of {', '.join(MATRIX_OUTPUTS[output])} (or *)"
                f"{_did_you_mean(value, list(MATRIX_OUTPUTS[output]))}")
    if match["old"] == match["new"]:
        raise GuardSyntaxError(f"the guard {text!r} watches no change ({match['old']} to "
                               "itself)", f"name two different values, like {EXAMPLE!r}")
    limit = float(match["limit"])
    if match["percent"] and limit > 100:
        raise GuardSyntaxError(f"the guard {text!r} can never trip (over 100%)",
                               "a share is between 0% and 100%")
    return Guard(text.strip(), output, match["old"], match["new"], match["op"] == ">=",
                 limit, bool(match["percent"]))


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


__all__ = ["EXAMPLE", "Guard", "GuardSyntaxError", "parse_guard"]
