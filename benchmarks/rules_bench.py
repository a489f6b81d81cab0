"""Rule evaluation throughput: crmsync's compiled engine against peers and a hand-written ceiling.

Run: ``python benchmarks/rules_bench.py`` (needs ``pip install -e '.[bench]'``, or
``--skip-peers``; a few minutes).

One seeded population of realistic contacts is decided by:

* ``handwritten``: the default rules written by hand as the fastest plain Python we could
  (the ceiling): constants hoisted, one regex per word list, text built only when a rule
  fires; it builds exactly the same :class:`~crmsync.model.Decision`, reason and tasks
  included. Once with stdlib ``re`` for the title pattern, once with crmsync's RE2 matcher;
* ``crmsync``: ``RuleSet.evaluate`` on ``rules/default.json`` (compiled), on any input and on
  facts already coerced (``coerced=True``, what a run's field map hands it), and with
  ``explain``;
* ``crmsync interpreter``: the reference tree interpreter (what a naive engine costs);
* ``zen-engine``: GoRules JDM (Rust core), the default rules as one expression-node graph,
  and the same ZEN expressions compiled once and called directly (no graph per call);
* ``json-logic``: json-logic-qubit, one JSON-logic rule per output.

The JDM graph and the JSON-logic rules are generated from the validated rule tree, with the
same three-valued logic spelled out as explicit null checks (neither engine has it built in).
Peers decide status, miss type, score and the collected signal lists; they get their natural
input (dates as epoch seconds, prepared outside the timed loop). Every record's decisions are
checked to agree: the whole Decision for handwritten vs crmsync, status/miss type/score for
all.

A second table times ``crmsync evaluate`` on a JSON Lines file against a bare stdlib
``json`` read-and-write of the same file, and compares peak memory at two input sizes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crmsync.model import Decision, TaskSpec
from crmsync.rules import load_ruleset
from crmsync.rules.dates import add_business_days
from crmsync.rules.tree import All, AnyOf, FactRef, Leaf, Not, Ref, Tree, iter_leaves

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules" / "default.json"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

# -- a seeded population --------------------------------------------------------------------

_COUNTRIES = ["US"] * 30 + ["GB", "DE", "FR", "CA", "NL", "SE", "ES", "IT", "CH"] * 3 + [
    "BR", "IN", "JP", "AU", "MX", None, None, None]
_INDUSTRIES = ["Computer Software", "Financial Services", "Retail", "Manufacturing", "Logistics",
               "Hospital & Health Care", "Higher Education", "Government Administration", None]
_TITLES = ["VP of Sales", "Head of Marketing", "Director, IT", "CEO", "Founder", "Sales Manager",
           "Software Engineer", "Marketing Coordinator", "MBA Student", "Owner", "Analyst", None]
_DOMAINS = ["acme.io", "northwind.com", "globex.de", "initech.co.uk", "gmail.com", "yahoo.com",
            "mit.edu", "dealcraft.com", "umbrella.fr", "hooli.com", None]
_LOSS = ["Went with a competitor", "Budget frozen", "Timing - next quarter", "No decision",
         "Project cancelled", "Other", "Chose another solution", "Unresponsive", None]


def generate(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Return ``count`` realistic, typed contacts (what a connector hands the engine)."""
    rng = random.Random(seed)

    def maybe(value: Any, p_missing: float = 0.15) -> Any:
        return None if rng.random() < p_missing else value

    def when(max_days: int) -> datetime | None:
        return maybe(NOW - timedelta(days=rng.uniform(0, max_days)), 0.2)

    contacts = []
    for index in range(count):
        lost = rng.random() < 0.12
        contact = {
            "id": f"c{index}",
            "first_name": maybe(rng.choice(["Ada", "Lena", "Sam", "Jonas", "Priya"])),
            "company": maybe(rng.choice(["Acme", "Northwind", "Globex", "Initech"])),
            "email_domain": rng.choice(_DOMAINS),
            "title": rng.choice(_TITLES),
            "country": rng.choice(_COUNTRIES),
            "industry": rng.choice(_INDUSTRIES),
            "employees": maybe(rng.choice([3, 8, 25, 60, 120, 400, 900, 2500, 4800, 9000, 40000])),
            "decision_maker": maybe(rng.random() < 0.3, 0.5),
            "budget_confirmed": maybe(rng.random() < 0.4, 0.4),
            "form_submissions": maybe(rng.randint(0, 4)),
            "webinars_attended": maybe(rng.randint(0, 2)),
            "content_downloads": maybe(rng.randint(0, 3)),
            "page_views": maybe(rng.randint(0, 40)),
            "pricing_page_views": maybe(rng.choice([0, 0, 1, 2, 3, 5, 9])),
            "chat_conversations": maybe(rng.choice([0, 0, 0, 1, 2])),
            "trial_signup": maybe(rng.random() < 0.15, 0.3),
            "demo_requested": maybe(rng.random() < 0.1, 0.3),
            "case_study_requested": maybe(rng.random() < 0.05, 0.3),
            "inbound_from_decision_maker": maybe(rng.random() < 0.05, 0.3),
            "not_a_fit": maybe(rng.random() < 0.03, 0.6),
            "last_activity_at": when(200),
            "open_deals": maybe(rng.choice([0, 0, 0, 0, 1])),
            "won_deals": maybe(rng.choice([0, 0, 0, 0, 0, 1])),
            "lost_deals": 1 if lost else maybe(0),
            "closed_lost_reason": rng.choice(_LOSS) if lost else None,
            "competitor": (rng.choice(["Salesforce", None, None]) if lost else None),
            "deal_stage": maybe(rng.choice(["discovery", "proposal", "negotiation"]), 0.5),
            "lead_status": rng.choice(["NEW", "OPEN", "IN_PROGRESS", "BAD_TIMING", None]),
            "previous_status": rng.choice(["lead", "prospect", "opportunity", None]),
            "status_override": rng.choice([None] * 40 + ["prospect", "Opportunity"]),
        }
        contacts.append(contact)
    return contacts


# -- the ceiling: the default rules by hand, as fast as plain Python goes -------------------------
#
# Written the way a performance-minded person would: every constant (sets, one regex per word
# list, thresholds, due dates) built once per run, straight-line code with no containers built
# per contact, text formatted only when the rule that needs it fires, and clamps as plain
# comparisons. It reads typed facts (what a connector hands the engine) and builds exactly the
# Decision crmsync builds, reason and tasks included; ``rules_table`` checks that on every record.

SERVED = frozenset(["US", "CA", "GB", "IE", "DE", "FR", "NL", "BE", "SE", "DK", "NO", "FI",
                    "ES", "IT", "CH", "AT"])
PERSONAL = frozenset([
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "hotmail.com",
    "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "icloud.com", "me.com", "aol.com",
    "gmx.de", "gmx.net", "web.de", "proton.me", "protonmail.com", "mail.com", "yandex.com"])
COMPETITORS = frozenset(["pipelinepro.io", "dealcraft.com", "funnelforge.com"])
STATUSES = frozenset(["lead", "prospect", "opportunity", "disqualified"])
BAD_TIMING = frozenset(["bad_timing", "bad timing"])
STUDENT_DOMAINS = (".edu", ".ac.uk", ".edu.au")


def _any_of(words: tuple[str, ...]) -> Callable[[str], Any]:
    """One search for any of ``words`` (callers casefold the text): one scan, not one per word."""
    return re.compile("|".join(re.escape(w) for w in words)).search


EXCLUDED = _any_of(("education", "government", "public sector"))
HARD = _any_of((
    "competitor", "chose another", "chose a different", "went with", "selected another",
    "another vendor", "another solution", "alternative", "no longer need", "not needed anymore",
    "need went away", "project cancel", "cancelled", "canceled", "in-house", "in house",
    "build it ourselves", "built our own", "out of business", "went bankrupt", "shut down"))
SOFT = _any_of((
    "budget", "price", "pricing", "too expensive", "cost", "timing", "postpone", "next quarter",
    "next year", "not now", "later", "no decision", "undecided", "went dark", "unresponsive",
    "no response", "ghost", "more time", "not sure", "unsure", "value", "on hold"))
DM_TITLE = re.compile(r"\b(chief|ceo|cto|cfo|coo|cmo|cio|cro|vp|svp|evp|vice president|head of|"
                      r"director|founder|co-founder|owner|president|managing partner)\b",
                      re.IGNORECASE).search


def make_handwritten(
    now: datetime, version: str, digest: str, title_search: Callable[[str], Any] = DM_TITLE,
) -> Callable[[Mapping], Decision]:
    """The default rules by hand for one run's ``now`` (``title_search`` finds a decision
    maker's title; the stdlib regex by default)."""
    day = timedelta(days=1)
    th14, th30, th60, th90 = now - 14 * day, now - 30 * day, now - 60 * day, now - 90 * day
    today = now.date()
    due1, due2, due3, due5, due15 = (add_business_days(today, n) for n in (1, 2, 3, 5, 15))
    body_opportunity = ("Be direct: confirm the decision process and timeline, propose a next "
                        "step with a date, and move it to a proposal.")
    body_nurture = ("). Be consultative: ask about their priorities, share a relevant guide or "
                    "customer story, offer a short call.")
    body_soft = ("). Keep nurturing: send a case study or proof of value, re-check their needs "
                 "and timing, consider adjusted terms. No pressure.")
    body_review = ("') did not match a known soft or hard reason. Update it so the miss type is "
                   "right.")
    body_hard = (". Record the competitor and reason and share them with product marketing. Stop "
                 "active selling; a check-in in 6-12 months is optional.")
    served_set, personal_set, competitor_set, statuses = SERVED, PERSONAL, COMPETITORS, STATUSES
    excluded_search, hard_search, soft_search = EXCLUDED, HARD, SOFT

    def decide(c: Mapping[str, Any]) -> Decision:
        g = c.get
        rules: list[str] = []
        add = rules.append
        title = g("title")
        dm_flag = g("decision_maker")
        if dm_flag is True:
            is_dm: bool | None = True
        elif title is not None and title_search(title[:1000]) is not None:
            is_dm = True
        elif dm_flag is False and title is not None:
            is_dm = False
        else:
            is_dm = None
        country = g("country")
        employees = g("employees")
        industry = g("industry")
        excluded = None if industry is None else excluded_search(industry.casefold()) is not None
        icp_size = None if employees is None else 50 <= employees <= 5000
        icp_fit = (country is not None and country in served_set and icp_size is True
                   and excluded is not True)
        budget = g("budget_confirmed")
        inbound = g("inbound_from_decision_maker")

        # miss type
        reason_text = g("closed_lost_reason")
        lost_deals = g("lost_deals")
        won_deals = g("won_deals")
        open_deals = g("open_deals")
        competitor = g("competitor")
        last = g("last_activity_at")
        has_lost = reason_text is not None or (lost_deals is not None and lost_deals >= 1)
        hard_reason = soft_reason = False
        if reason_text is not None:
            folded = reason_text.casefold()
            hard_reason = hard_search(folded) is not None
            soft_reason = soft_search(folded) is not None
        has_open = open_deals is not None and open_deals >= 1
        miss = "none"
        miss_because = ""
        if won_deals is not None and won_deals >= 1:
            add("miss_won_customer")
        elif has_open:
            add("miss_deal_still_open")
        elif has_lost:
            if competitor is not None:
                miss, miss_because = "hard", "hard miss: chose " + competitor
                add("miss_hard_competitor")
            elif hard_reason:
                miss, miss_because = "hard", "hard miss: " + reason_text
                add("miss_hard_reason")
            elif soft_reason:
                miss, miss_because = "soft", "soft miss: " + reason_text
                add("miss_soft_reason")
            else:
                miss = "soft"
                miss_because = ("soft miss: loss reason not recognised ("
                                + (reason_text or "none recorded") + "), review it")
                add("miss_soft_unrecognised_reason")
        else:
            lead_status = g("lead_status")
            if lead_status is not None and lead_status.strip().casefold() in BAD_TIMING:
                miss, miss_because = "soft", "soft miss: bad timing"
                add("miss_soft_bad_timing")
            elif g("previous_status") == "opportunity" and last is not None and last < th60:
                miss = "soft"
                miss_because = ("soft miss: opportunity went cold (no activity since "
                                + last.date().isoformat() + ")")
                add("miss_soft_opportunity_went_cold")

        # buying signals (labels and texts only built when a signal fires)
        trial = g("trial_signup") is True
        demo = g("demo_requested") is True
        case = g("case_study_requested") is True
        pricing = g("pricing_page_views")
        many_pricing = pricing is not None and pricing >= 3
        chat = g("chat_conversations")
        chatted = chat is not None and chat >= 1
        inbound = inbound is True
        signals = trial or demo or case or many_pricing or chatted or inbound or has_open
        signal_text = ""
        labels = ""
        if signals:
            texts = []
            names = []
            if trial:
                texts.append("trial signup")
                names.append("trial signup")
                add("signal_trial")
            if demo:
                texts.append("demo request")
                names.append("demo request")
                add("signal_demo")
            if case:
                texts.append("case-study request")
                names.append("case-study request")
                add("signal_case_study")
            if many_pricing:
                texts.append(f"{pricing} pricing-page views")
                names.append("pricing page")
                add("signal_pricing_page")
            if chatted:
                texts.append(f"{chat} chat conversation(s)")
                names.append("chat")
                add("signal_chat")
            if inbound:
                texts.append("decision maker reached out")
                names.append("decision maker reached out")
                add("signal_inbound_decision_maker")
            if has_open:
                texts.append("open deal (" + (g("deal_stage") or "stage unknown") + ")")
                names.append("open deal")
                add("signal_open_deal")
            signal_text = " + ".join(texts)
            labels = ", ".join(names)

        # qualification
        budget = budget is True
        dm = is_dm is True
        quals = ""
        if icp_fit:
            quals = "ICP fit"
            add("qual_icp_fit")
        if budget:
            quals = quals + " + budget confirmed" if quals else "budget confirmed"
            add("qual_budget")
        if dm:
            quals = quals + " + decision maker" if quals else "decision maker"
            add("qual_decision_maker")
        qualified = icp_fit and budget and (dm or inbound)

        # status
        override = g("status_override")
        if override is not None and override.strip().lower() in statuses:
            status, headline = override.strip().lower(), "Status set by hand (" + override + ")"
            add("status_override")
        elif g("not_a_fit") is True:
            status, headline = "disqualified", "Disqualified: marked not a fit"
            add("dq_not_a_fit")
        elif country is not None and country not in served_set:
            status = "disqualified"
            headline = "Disqualified: country " + country + " is not served"
            add("dq_country")
        elif excluded:
            status, headline = "disqualified", "Disqualified: excluded industry (" + industry + ")"
            add("dq_industry")
        else:
            domain = g("email_domain")
            if domain is not None and domain in personal_set:
                status = "disqualified"
                headline = "Disqualified: personal email address (" + domain + ")"
                add("dq_personal_email")
            elif (title is not None and "student" in title.casefold()) or (
                    domain is not None and domain.strip().casefold().endswith(STUDENT_DOMAINS)):
                status, headline = "disqualified", "Disqualified: student"
                add("dq_student")
            elif domain is not None and domain in competitor_set:
                status = "disqualified"
                headline = "Disqualified: works for a competitor (" + domain + ")"
                add("dq_competitor")
            elif employees is not None and employees < 10:
                status = "disqualified"
                headline = f"Disqualified: only {employees} employees"
                add("dq_too_small")
            elif has_open:
                status, headline = "opportunity", "Opportunity"
                add("opportunity_open_deal")
            elif icp_size is False:
                status = "lead"
                headline = f"Lead (company size {employees} is outside 50-5,000)"
                add("lead_outside_icp_size")
            elif qualified and signals and miss != "hard":
                status, headline = "opportunity", "Opportunity"
                add("opportunity_buying_signals")
            elif qualified:
                status, headline = "prospect", "Prospect"
                add("prospect_qualified")
            else:
                status, headline = "lead", "Lead"

        # score
        score = 0
        if icp_fit:
            score = 20
            add("score_icp_fit")
        if dm:
            score += 10
            add("score_decision_maker")
        if budget:
            score += 10
            add("score_budget")
        value = g("form_submissions")
        if value is not None and value >= 1:
            score += 5
            add("score_form")
        value = g("webinars_attended")
        if value is not None and value >= 1:
            score += 5
            add("score_webinar")
        value = g("content_downloads")
        if value is not None and value >= 1:
            score += 5
            add("score_download")
        value = g("page_views")
        if value is not None and value >= 10:
            score += 5
            add("score_site_visits")
        if last is not None and last >= th30:
            score += 10
            add("score_recent_activity")
        if trial:
            score += 15
            add("score_trial")
        if demo:
            score += 15
            add("score_demo")
        if many_pricing:
            score += 10
            add("score_pricing")
        if case:
            score += 5
            add("score_case_study")
        if chatted:
            score += 5
            add("score_chat")
        if inbound:
            score += 10
            add("score_inbound_decision_maker")
        if last is not None and last < th90:
            score -= 15
            add("score_inactive")
        if status == "disqualified":
            score -= 100
            add("score_disqualified")
        if score < 0:
            score = 0
        elif score > 100:
            score = 100

        # reason
        rest = signal_text
        if quals:
            rest = rest + "; " + quals if rest else quals
        if miss_because:
            rest = rest + "; " + miss_because if rest else miss_because
        if rest:
            reason = headline + ("; " if ": " in headline else ": ") + rest
            if len(reason) > 255:
                reason = reason[:254] + "…"
        else:
            reason = headline

        # tasks
        tasks: tuple[TaskSpec, ...] = ()
        if status == "opportunity":
            if miss == "none":
                tasks = (TaskSpec(
                    "opportunity_follow_up",
                    "Call " + (g("first_name") or "the contact") + " at "
                    + (g("company") or "their company") + " today: buying signals",
                    "Hot opportunity: " + (labels or "open deal") + ". " + body_opportunity,
                    due1, "high", "direct", "task_opportunity_follow_up", True),)
                add("task_opportunity_follow_up")
        elif status == "prospect" and miss == "none" and (last is None or last < th14):
            tasks = (TaskSpec(
                "prospect_nurture",
                "Check in with " + (g("first_name") or "the contact") + " at "
                + (g("company") or "their company"),
                "Qualified prospect with no activity for 14 days or more (last: "
                + (last.date().isoformat() if last is not None else "never") + body_nurture,
                due3, "normal", "consultative", "task_prospect_nurture", True),)
            add("task_prospect_nurture")
        if miss != "none":
            company = g("company")
            if miss == "soft":
                extra = []
                if status != "disqualified":
                    extra.append(TaskSpec(
                        "soft_miss_reengagement",
                        "Re-engage " + (g("first_name") or "the contact") + " at "
                        + (company or "their company"),
                        "Soft miss (" + (reason_text or "stalled") + body_soft,
                        due15, "normal", "consultative", "task_soft_miss_reengage", True))
                    add("task_soft_miss_reengage")
                if has_lost and (reason_text is None or not (hard_reason or soft_reason)):
                    extra.append(TaskSpec(
                        "loss_reason_review",
                        "Record a clear loss reason for " + (company or "this contact"),
                        "The lost deal's reason ('" + (reason_text or "none") + body_review,
                        due2, "low", "consultative", "task_review_loss_reason", True))
                    add("task_review_loss_reason")
                if extra:
                    tasks = (*tasks, *extra)
            else:
                tasks = (*tasks, TaskSpec(
                    "loss_analysis",
                    "Loss analysis: why " + (company or "this account") + " said no",
                    "Hard miss: " + (competitor or "no competitor recorded") + "; reason: "
                    + (reason_text or "not recorded") + body_hard,
                    due5, "low", "consultative", "task_hard_miss_analysis", False))
                add("task_hard_miss_analysis")
        return Decision(g("id") or "", status, miss, score, reason, tuple(rules), tasks,
                        version, digest, None)

    return decide


# -- translating the validated tree for the peers ----------------------------------------------


def _epoch(value: datetime) -> float:
    return value.timestamp()


def peer_input(contact: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The same contact as JSON-friendly data: dates as epoch seconds, plus ``__now``."""
    data = {k: (_epoch(v) if isinstance(v, datetime) else v) for k, v in contact.items()}
    data["__now"] = _epoch(now)
    return data


class ZenTranslator:
    """Validated tree -> one JDM expression node (ZEN expression language)."""

    def __init__(self, tree: Tree, *, earlier: str = "$.") -> None:
        self.tree = tree
        self.local: dict[str, str] = {}
        self.earlier = earlier  # how an expression reads a key computed before it

    @staticmethod
    def lit(value: Any) -> str:
        if isinstance(value, datetime):
            return repr(value.timestamp())
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            # ZEN string literals take backslashes verbatim; pick the quote the text lacks.
            return f'"{value}"' if "'" in value else f"'{value}'"
        return repr(value)

    def ref(self, name: str) -> str:
        return self.local.get(name, name)

    def cond(self, node: Any) -> tuple[str, str]:
        if isinstance(node, All | AnyOf):
            parts = [self.cond(i) for i in node.items]
            t_join, f_join = (" and ", " or ") if isinstance(node, All) else (" or ", " and ")
            return ("(" + t_join.join(p[0] for p in parts) + ")",
                    "(" + f_join.join(p[1] for p in parts) + ")")
        if isinstance(node, Not):
            t, f = self.cond(node.item)
            return f, t
        if isinstance(node, Ref):
            return self.cond(self.tree.conditions[node.name])
        return self.leaf(node)

    def leaf(self, leaf: Leaf) -> tuple[str, str]:
        v, op, o = self.ref(leaf.name), leaf.op, leaf.operand
        nn = f"{v} != null"
        if leaf.kind == "list":
            if op == "contains":
                return f"({self.lit(o)} in {v})", f"(not ({self.lit(o)} in {v}))"
            return ((f"(len({v}) > 0)", f"(len({v}) == 0)") if op == "exists"
                    else (f"(len({v}) == 0)", f"(len({v}) > 0)"))
        if op == "exists":
            return f"({nn})", f"({v} == null)"
        if op == "missing":
            return f"({v} == null)", f"({nn})"
        cmp = {"is": ("==", "!="), "is_not": ("!=", "=="), "at_least": (">=", "<"),
               "at_most": ("<=", ">"), "more_than": (">", "<="), "less_than": ("<", ">=")}
        if op in cmp:
            other = self.ref(o.name) if isinstance(o, FactRef) else self.lit(o)
            guard = f"{nn} and {other} != null" if isinstance(o, FactRef) else nn
            return (f"({guard} and {v} {cmp[op][0]} {other})",
                    f"({guard} and {v} {cmp[op][1]} {other})")
        if op in ("in", "not_in"):
            items = "[" + ", ".join(self.lit(i) for i in sorted(o, key=str)) + "]"
            t, f = f"({nn} and {v} in {items})", f"({nn} and not ({v} in {items}))"
            return (t, f) if op == "in" else (f, t)
        if op == "between":
            inside = f"{v} >= {self.lit(o[0])} and {v} <= {self.lit(o[1])}"
            return f"({nn} and {inside})", f"({nn} and not ({inside}))"
        if op in ("within_days", "older_than_days"):
            limit = f"(__now - {o.total_seconds()})"
            t, f = f"({nn} and {v} >= {limit})", f"({nn} and {v} < {limit})"
            return (t, f) if op == "within_days" else (f, t)
        if op == "matches":
            hit = f"matches(lower({v}), {self.lit(o.pattern)})"
        elif op == "contains":
            hit = "(" + " or ".join(f"contains(lower({v}), {self.lit(n)})" for n in o) + ")"
        elif op in ("starts_with", "ends_with"):
            fn = "startsWith" if op == "starts_with" else "endsWith"
            hit = "(" + " or ".join(f"{fn}(lower(trim({v})), {self.lit(n)})" for n in o) + ")"
        else:
            hit = f"(lower(trim({v})) in [{', '.join(self.lit(n) for n in sorted(o))}])"
        return f"({nn} and {hit})", f"({nn} and not {hit})"

    def expressions(self) -> list[tuple[str, str]]:
        """``(key, expression)`` pairs, evaluated in order; later ones read earlier via ``$``."""
        out = []
        for derived in self.tree.derived.values():
            t, f = self.cond(derived.when)
            out.append((derived.name, f"{t} ? true : ({f} ? false : null)"))
            self.local[derived.name] = f"{self.earlier}{derived.name}"
        for decision in self.tree.decisions:
            if decision.hit == "first":
                expr = self.lit(decision.default)
                for rule in reversed(decision.rules):
                    t = self.cond(rule.when)[0] if rule.when else "true"
                    if isinstance(rule.then, FactRef):
                        src = self.ref(rule.then.name)
                        allowed = "[" + ", ".join(self.lit(s) for s in decision.closed_set) + "]"
                        t = f"({t} and {src} != null and lower(trim({src})) in {allowed})"
                        value = f"lower(trim({src}))"
                    else:
                        value = self.lit(rule.then)
                    expr = f"({t} ? {value} : {expr})"
            elif decision.hit == "sum":
                terms = [str(decision.default or 0)] + [
                    f"({self.cond(r.when)[0]} ? {r.add} : 0)" for r in decision.rules]
                total = " + ".join(terms)
                expr = f"max([{decision.minimum}, min([{decision.maximum}, {total}])])"
            else:
                items = ", ".join(f"({self.cond(r.when)[0]} ? {self.lit(r.then)} : null)"
                                  for r in decision.rules)
                expr = f"filter([{items}], # != null)"
            out.append((decision.output, expr))
            self.local[decision.output] = f"{self.earlier}{decision.output}"
        return out

    def graph(self) -> dict[str, Any]:
        """The JDM document."""
        position = {"x": 0, "y": 0}
        expressions = [{"id": f"e{i}", "key": key, "value": value}
                       for i, (key, value) in enumerate(self.expressions())]
        return {
            "nodes": [
                {"id": "in", "type": "inputNode", "name": "contact", "position": position},
                {"id": "rules", "type": "expressionNode", "name": "default rules",
                 "position": position, "content": {"expressions": expressions}},
                {"id": "out", "type": "outputNode", "name": "decision", "position": position},
            ],
            "edges": [{"id": "a", "sourceId": "in", "targetId": "rules", "type": "edge"},
                      {"id": "b", "sourceId": "rules", "targetId": "out", "type": "edge"}],
        }


class JsonLogicTranslator:
    """Validated tree -> one JSON-logic rule per derived fact and output, applied in order."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    @staticmethod
    def lit(value: Any) -> Any:
        return value.timestamp() if isinstance(value, datetime) else value

    def var(self, name: str) -> dict[str, Any]:
        return {"var": name}

    def cond(self, node: Any) -> tuple[Any, Any]:
        if isinstance(node, All | AnyOf):
            parts = [self.cond(i) for i in node.items]
            t_op, f_op = ("and", "or") if isinstance(node, All) else ("or", "and")
            return {t_op: [p[0] for p in parts]}, {f_op: [p[1] for p in parts]}
        if isinstance(node, Not):
            t, f = self.cond(node.item)
            return f, t
        if isinstance(node, Ref):
            return self.cond(self.tree.conditions[node.name])
        return self.leaf(node)

    def leaf(self, leaf: Leaf) -> tuple[Any, Any]:
        v, op, o = self.var(leaf.name), leaf.op, leaf.operand
        nn = {"!=": [v, None]}

        def guarded(expr: Any) -> Any:
            return {"and": [nn, expr]}

        if leaf.kind == "list":
            if op == "contains":
                return {"in": [o, v]}, {"!": {"in": [o, v]}}
            t, f = {"!!": [v]}, {"!": [v]}
            return (t, f) if op == "exists" else (f, t)
        if op == "exists":
            return nn, {"==": [v, None]}
        if op == "missing":
            return {"==": [v, None]}, nn
        cmp = {"is": ("===", "!=="), "is_not": ("!==", "==="), "at_least": (">=", "<"),
               "at_most": ("<=", ">"), "more_than": (">", "<="), "less_than": ("<", ">=")}
        if op in cmp:
            if isinstance(o, FactRef):
                other = self.var(o.name)
                both = {"and": [nn, {"!=": [other, None]}]}
                return ({"and": [both, {cmp[op][0]: [v, other]}]},
                        {"and": [both, {cmp[op][1]: [v, other]}]})
            return guarded({cmp[op][0]: [v, self.lit(o)]}), guarded({cmp[op][1]: [v, self.lit(o)]})
        if op in ("in", "not_in"):
            items = sorted(o, key=str)
            t, f = guarded({"in": [v, items]}), guarded({"!": {"in": [v, items]}})
            return (t, f) if op == "in" else (f, t)
        if op == "between":
            inside = {"<=": [self.lit(o[0]), v, self.lit(o[1])]}
            return guarded(inside), guarded({"!": inside})
        if op in ("within_days", "older_than_days"):
            limit = {"-": [{"var": "__now"}, o.total_seconds()]}
            t, f = guarded({">=": [v, limit]}), guarded({"<": [v, limit]})
            return (t, f) if op == "within_days" else (f, t)
        lower = {"method": [v, "lower"]}
        stripped = {"method": [{"method": [v, "strip"]}, "lower"]}
        if op == "matches":
            hit: Any = {"regex_search": [o.pattern, v]}
        elif op == "contains":
            hit = {"or": [{"in": [n, lower]} for n in o]}
        elif op in ("starts_with", "ends_with"):
            method = "startswith" if op == "starts_with" else "endswith"
            hit = {"or": [{"method": [stripped, method, [n]]} for n in o]}
        else:
            hit = {"in": [stripped, sorted(o)]}
        return guarded(hit), guarded({"!": hit})

    def rules(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for derived in self.tree.derived.values():
            t, f = self.cond(derived.when)
            out.append((derived.name, {"if": [t, True, f, False, None]}))
        for decision in self.tree.decisions:
            if decision.hit == "first":
                branches: list[Any] = []
                for rule in decision.rules:
                    t = self.cond(rule.when)[0] if rule.when else True
                    if isinstance(rule.then, FactRef):
                        src = self.var(rule.then.name)
                        normal = {"method": [{"method": [src, "strip"]}, "lower"]}
                        t = {"and": [t, {"!=": [src, None]},
                                     {"in": [normal, list(decision.closed_set)]}]}
                        branches += [t, normal]
                    else:
                        branches += [t, rule.then]
                out.append((decision.output, {"if": [*branches, decision.default]}))
            elif decision.hit == "sum":
                total = {"+": [decision.default or 0] + [
                    {"if": [self.cond(r.when)[0], r.add, 0]} for r in decision.rules]}
                out.append((decision.output,
                            {"max": [decision.minimum, {"min": [decision.maximum, total]}]}))
            else:
                out.append((decision.output, {"merge": [
                    {"if": [self.cond(r.when)[0], [r.then], []]} for r in decision.rules]}))
        return out


# -- measuring ---------------------------------------------------------------------------------


def rules_table(count: int, peer_count: int, repeats: int,
                peers: bool = True) -> list[tuple[str, float, str]]:
    """Measure every engine; verify agreement; return ``(name, records/s, note)`` rows."""
    rules = load_ruleset(RULES)
    contacts = generate(count)
    hand = make_handwritten(NOW, rules.version, rules.content_hash)
    # The same ceiling with the linear-time matcher crmsync must use for rule-file patterns.
    title_leaf = next(leaf for leaf in iter_leaves(rules.tree) if leaf.op == "matches")
    hand_re2 = make_handwritten(NOW, rules.version, rules.content_hash,
                                title_search=title_leaf.operand.search_prefix)

    # Agreement first: the whole Decision against both ceilings, the coerced-facts path and
    # the interpreter, on every record.
    for contact in contacts:
        mine = rules.evaluate(contact, now=NOW)
        if (mine != hand(contact) or mine != hand_re2(contact)
                or mine != rules.evaluate(contact, now=NOW, coerced=True)
                or mine != rules.interpret(contact, now=NOW)):
            raise SystemExit(f"disagreement on {contact['id']}:\n{mine}\n{hand(contact)}")

    evaluate, interpret = rules.evaluate, rules.interpret
    few = contacts[:peer_count]

    def each(function: Callable[..., Any], items: list[Any], **kwargs: Any) -> Callable[[], None]:
        # Decisions are dropped as they are made, as in a streaming run (keeping them all
        # would mostly measure the garbage collector walking the kept traces).
        def run() -> None:
            for item in items:
                function(item, **kwargs)
        return run

    engines: list[tuple[str, Callable[[], None], int, str]] = [
        ("handwritten Python (ceiling)", each(hand, contacts), count,
         "same Decision; stdlib re for the title"),
        ("handwritten, RE2 title match", each(hand_re2, contacts), count,
         "the ceiling with crmsync's regex engine"),
        ("crmsync compiled", each(evaluate, contacts, now=NOW), count,
         "rules/default.json, any input"),
        ("crmsync compiled, coerced facts", each(evaluate, contacts, now=NOW, coerced=True),
         count, "evaluate(coerced=True): run path"),
        ("crmsync compiled, explain=True", each(evaluate, few, now=NOW, explain=True),
         peer_count, "full trace"),
        ("crmsync interpreter (tree walk)", each(interpret, few, now=NOW), peer_count,
         "reference / naive engine"),
    ]
    if peers:
        engines += _peer_engines(rules, contacts, peer_count, each)
    # Rounds interleave the engines, so a busy neighbour slows all of them alike; the best
    # round of each engine is reported. CPU time of this process, not wall time: on a shared
    # machine a descheduled round would otherwise count another program's work.
    best = {name: float("inf") for name, *_ in engines}
    for _ in range(repeats):
        for name, run, _n, _note in engines:
            gc.collect()
            started = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - started)
    return [(name, n / best[name], note) for name, _run, n, note in engines]


def _peer_engines(rules: Any, contacts: list[dict[str, Any]], peer_count: int,
                  each: Callable[..., Callable[[], None]],
                  ) -> list[tuple[str, Callable[[], None], int, str]]:
    """zen-engine and json-logic on the same rules, checked to agree first."""
    import json_logic
    import zen

    peers_in = [peer_input(c, NOW) for c in contacts[:peer_count]]
    engine = zen.ZenEngine()
    zen_decision = engine.create_decision(json.dumps(ZenTranslator(rules.tree).graph()))
    compiled_zen = [(key, zen.compile_expression(expr))
                    for key, expr in ZenTranslator(rules.tree, earlier="").expressions()]

    def run_zen_expressions(data: dict[str, Any]) -> dict[str, Any]:
        context = dict(data)
        for key, expression in compiled_zen:
            context[key] = expression.evaluate(context)
        return context

    json_logic.add_operation(
        "regex_search", lambda pattern, s: re.search(pattern, s[:1000], re.I) is not None)
    logic = JsonLogicTranslator(rules.tree).rules()

    def run_logic(data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        for key, rule in logic:
            data[key] = json_logic.jsonLogic(rule, data)
        return data

    keys = ("status", "miss_type", "score", "buying_signals", "qualification")
    for contact, data in zip(contacts, peers_in, strict=False):
        mine = rules.evaluate(contact, now=NOW)
        ours = (mine.status, mine.miss_type, mine.score)
        zen_out = zen_decision.evaluate(data)["result"]
        logic_out = run_logic(data)
        for name, out in (("zen-engine", zen_out), ("json-logic", logic_out),
                          ("zen expressions", run_zen_expressions(data))):
            theirs = (out["status"], out["miss_type"], int(out["score"]))
            if theirs != ours:
                raise SystemExit(f"{name} disagrees on {contact['id']}: {theirs} != {ours}")
        assert all(k in zen_out for k in keys)

    return [
        ("zen-engine (GoRules JDM)", each(zen_decision.evaluate, peers_in), peer_count,
         "status, miss, score, lists"),
        ("zen-engine compiled expressions", each(run_zen_expressions, peers_in), peer_count,
         "same expressions, no JDM graph"),
        ("json-logic-qubit", each(run_logic, peers_in), peer_count,
         "status, miss, score, lists"),
    ]


def ceiling_table(rules_path: Path, count: int, repeats: int) -> list[tuple[str, float, str]]:
    """Only the ceiling against ``RuleSet.evaluate``: also runs on older crmsync versions, for
    before/after figures (``PYTHONPATH=<old checkout>/src ... --ceiling-only --rules <its
    default.json>``). Agreement is checked on status, miss type, score and fired rules (texts
    may differ between versions of the default rules)."""
    import inspect

    rules = load_ruleset(rules_path)
    contacts = generate(count)
    hand = make_handwritten(NOW, rules.version, rules.content_hash)
    for contact in contacts:
        mine, theirs = rules.evaluate(contact, now=NOW), hand(contact)
        if (mine.status, mine.miss_type, mine.score, mine.rules) != (
                theirs.status, theirs.miss_type, theirs.score, theirs.rules):
            raise SystemExit(f"disagreement on {contact['id']}:\n{mine}\n{theirs}")
    evaluate = rules.evaluate
    runs: list[tuple[str, Callable[[], None], str]] = [
        ("handwritten Python (ceiling)", lambda: [hand(c) for c in contacts], ""),
        ("crmsync compiled", lambda: [evaluate(c, now=NOW) for c in contacts], "any input"),
    ]
    if "coerced" in inspect.signature(evaluate).parameters:
        runs.append(("crmsync compiled, coerced facts",
                     lambda: [evaluate(c, now=NOW, coerced=True) for c in contacts],
                     "evaluate(coerced=True)"))
    best = {name: float("inf") for name, *_ in runs}
    for _ in range(repeats):
        for name, run, _note in runs:
            gc.collect()
            started = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - started)
    return [(name, count / best[name], note) for name, _run, note in runs]


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def io_table(count: int) -> list[tuple[str, float, str]]:
    """``crmsync evaluate`` on ``count`` JSON lines vs. a bare stdlib json read + write."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "contacts.jsonl"
        with open(source, "w", encoding="utf-8") as handle:
            for contact in generate(count, seed=11):
                handle.write(json.dumps(contact, default=_json_default) + "\n")
        baseline_script = (
            "import json,sys\n"
            "with open(sys.argv[1]) as src, open(sys.argv[2], 'w') as out:\n"
            "    for line in src:\n"
            "        out.write(json.dumps(json.loads(line)) + '\\n')\n"
        )
        baseline = _timed([sys.executable, "-c", baseline_script, str(source), os.devnull])
        crmsync_cli = [sys.executable, "-m", "crmsync", "evaluate", "--rules", str(RULES),
                       "--input", str(source), "--now", "2026-01-05T09:00:00Z", "--output"]
        ours = _timed([*crmsync_cli, str(Path(tmp) / "out.jsonl")])
        rows.append((f"stdlib json read+write, {count:,} lines", baseline[0], f"{baseline[1]} MB"))
        rows.append((f"crmsync evaluate, {count:,} lines", ours[0], f"{ours[1]} MB peak RSS"))
        big = Path(tmp) / "big.jsonl"
        with open(source, "rb") as src_handle:
            chunk = src_handle.read()
        with open(big, "wb") as handle:
            for _ in range(5):
                handle.write(chunk)
        bigger = _timed([*crmsync_cli, os.devnull, "--input", str(big)])
        rows.append((f"crmsync evaluate, {5 * count:,} lines", bigger[0],
                     f"{bigger[1]} MB peak RSS"))
    return rows


def _timed(command: list[str]) -> tuple[float, int]:
    """Run ``command``; return (seconds, peak RSS in MB) of that child alone."""
    script = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, *command], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1]) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="contacts for fast engines")
    parser.add_argument("--peer-count", type=int, default=2_000, help="contacts for slow ones")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (best kept)")
    parser.add_argument("--io-count", type=int, default=100_000)
    parser.add_argument("--skip-io", action="store_true")
    parser.add_argument("--skip-peers", action="store_true",
                        help="leave out zen-engine and json-logic (no [bench] extra needed)")
    parser.add_argument("--ceiling-only", action="store_true",
                        help="only the ceiling vs RuleSet.evaluate (works on older versions)")
    parser.add_argument("--rules", type=Path, default=RULES, help="rule file (--ceiling-only)")
    args = parser.parse_args()

    if args.ceiling_only:
        rows = ceiling_table(args.rules, args.count, args.repeats)
        print(f"crmsync at {Path(sys.modules['crmsync'].__file__).parent}, {args.rules}")
        for name, rate, note in rows:
            print(f"{name:34} {rate:12,.0f} {rate / rows[0][1]:10.1%}  {note}")
        return
    rows = rules_table(args.count, args.peer_count, args.repeats, peers=not args.skip_peers)
    ceiling = rows[0][1]
    print(f"Rule evaluation, rules/default.json, single core, {sys.version.split()[0]} "
          f"(all engines agree on every record)")
    print(f"{'engine':34} {'records/s':>12} {'vs ceiling':>11}  note")
    for name, rate, note in rows:
        print(f"{name:34} {rate:12,.0f} {rate / ceiling:10.1%}  {note}")
    if args.skip_io:
        return
    print()
    io_rows = io_table(args.io_count)
    base = io_rows[0][1]
    print("crmsync evaluate (JSON Lines in and out) vs a bare stdlib json read+write")
    print(f"{'run':40} {'seconds':>8} {'vs stdlib':>10}  memory")
    for (name, seconds, note), lines in zip(io_rows, (1, 1, 5), strict=True):
        # The 5x file is compared with 5x the stdlib time: the cost per line.
        print(f"{name:40} {seconds:8.2f} {seconds / (base * lines):9.2f}x  {note}")


if __name__ == "__main__":
    main()
