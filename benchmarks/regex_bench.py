"""The ``matches`` operator on hostile input: Python's backtracking ``re`` vs what crmsync uses.

Run on demand: ``python benchmarks/regex_bench.py [--budget SECONDS]`` (about a minute).

Part 1, a pathological pattern (issue 13 item 4: ``\\w*\\w*\\w*\\w*\\w*!``, which the old
validator accepted) searched in titles of growing length that contain no ``!``: seconds per
search for stdlib ``re`` (its time grows with the fifth power of the length; lengths past the
budget are not run and shown as "skipped") against microseconds for crmsync's matcher (RE2:
linear). Part 2, the everyday case: the decision-maker title pattern of ``rules/default.json``
on realistic titles: stdlib ``re``, RE2 alone, and crmsync's matcher (which runs a pattern like
this one, with no repetition, on stdlib ``re`` for ASCII text, see ``crmsync/rules/regexes.py``).
Ratios are side by side.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable

from crmsync.rules.regexes import MAX_SUBJECT, compile_safe

PATHOLOGICAL = r"\w*\w*\w*\w*\w*!"
LENGTHS = (10, 20, 30, 40, 60, 80, 300, 1000)
TITLE_PATTERN = (r"\b(chief|ceo|cto|cfo|coo|cmo|cio|cro|vp|svp|evp|vice president|head of|"
                 r"director|founder|co-founder|owner|president|managing partner)\b")
TITLES = ["VP of Sales", "Head of Operations", "Operations Manager", "Senior Software Engineer",
          "Director, Finance", "Marketing Coordinator (EMEA region, part-time)", "",
          "Founder & CEO", "Account Executive", "Chief Revenue Officer"]


def per_call(search: Callable[[str], object], text: str, budget: float) -> float:
    """Seconds per search of ``text`` (repeated until about ``budget``/10 s have passed)."""
    calls, started = 0, time.perf_counter()
    while True:
        search(text)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= budget / 10 or elapsed * (calls + 1) / calls > budget:
            return elapsed / calls


def show(seconds: float | None) -> str:
    if seconds is None:
        return "skipped"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} µs"


def pathological(budget: float) -> None:
    stdlib = re.compile(PATHOLOGICAL, re.IGNORECASE)
    safe = compile_safe(PATHOLOGICAL)
    print(f"pattern {PATHOLOGICAL!r} on 'aaa…a' (no '!'), one search; stdlib skipped once a "
          f"search would exceed {budget:g} s")
    print(f"{'length':>7}  {'stdlib re':>12}  {'crmsync (RE2)':>14}  {'re / RE2':>10}")
    last: float | None = 0.0
    for length in LENGTHS:
        text = "a" * length
        # Five nested stars: time ~ length**5, so the next length costs a few times the last.
        slow: float | None = None
        if last is not None and last * 5 < budget:
            slow = per_call(lambda t: stdlib.search(t[:MAX_SUBJECT]), text, budget)
        last = slow
        fast = per_call(safe.search, text, 0.5)
        ratio = f"{slow / fast:,.0f}x" if slow is not None else "-"
        print(f"{length:>7}  {show(slow):>12}  {show(fast):>14}  {ratio:>10}")


def everyday() -> None:
    stdlib = re.compile(TITLE_PATTERN, re.IGNORECASE)
    safe = compile_safe(TITLE_PATTERN)
    re2_only = safe.search_prefix
    for title in TITLES:  # the engines must agree before anything is timed
        found = stdlib.search(title) is not None
        assert found == (re2_only(title) is not None) == (safe.search(title) is not None), title
    searches = (lambda t: stdlib.search(t[:MAX_SUBJECT]), lambda t: re2_only(t[:MAX_SUBJECT]),
                safe.search)
    rounds = []
    for _ in range(5):  # interleaved rounds, best of 5
        row = []
        for search in searches:
            started = time.perf_counter()
            for _ in range(2000):
                for title in TITLES:
                    search(title)
            row.append((time.perf_counter() - started) / (2000 * len(TITLES)))
        rounds.append(row)
    slow, re2_time, ours = (min(r[i] for r in rounds) for i in range(3))
    print(f"\ndefault.json's decision-maker pattern on {len(TITLES)} everyday titles "
          "(mean per search, best of 5)")
    print(f"{'stdlib re':>12}  {'RE2 alone':>12}  {'crmsync':>12}  {'RE2 / re':>9}  "
          f"{'crmsync / re':>12}")
    print(f"{show(slow):>12}  {show(re2_time):>12}  {show(ours):>12}  "
          f"{re2_time / slow:>8.2f}x  {ours / slow:>11.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0,
                        help="longest single stdlib search to run, seconds (default 10)")
    args = parser.parse_args()
    pathological(args.budget)
    everyday()


if __name__ == "__main__":
    main()
