"""The ceiling of ``rules_bench.py``: ``rules/default.json`` by hand, as fast as plain Python goes.

Written the way a performance-minded person would: every constant (sets, one regex per word
list, thresholds, due dates) built once per run, straight-line code with no containers built
per contact, text formatted only when the rule that needs it fires, and clamps as plain
comparisons. It reads typed facts (what a connector hands the engine) and builds exactly the
Decision crmsync builds, reason and tasks included; ``rules_bench.py`` checks that on every
record before timing anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from crmsync.model import Decision, TaskSpec
from crmsync.rules.compile import shorten
from crmsync.rules.dates import add_business_days

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
                miss, miss_because = "soft", "soft miss: lead status says bad timing"
                add("miss_soft_bad_timing")
            elif g("previous_status") == "opportunity" and last is not None and last < th60:
                miss = "soft"
                miss_because = ("soft miss: opportunity went cold (no activity for 60+ days, "
                                "last " + last.date().isoformat() + ")")
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
                texts.append(f"{pricing} pricing-page views (≥3)")
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

        # ICP tier (a declared output: written to the CRM)
        if icp_fit and (dm or inbound):
            tier = "A"
            add("tier_a_fit_with_authority")
        elif icp_fit:
            tier = "B"
            add("tier_b_fit")
        else:
            tier = "C"

        # status
        override = g("status_override")
        if override is not None and override.strip().lower() in statuses:
            status, headline = override.strip().lower(), "Status set by a rep (" + override + ")"
            add("status_override")
        elif g("not_a_fit") is True:
            status, headline = "disqualified", "Disqualified: a rep marked them not a fit"
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
                status = "disqualified"
                headline = "Disqualified: student or academic email address"
                add("dq_student")
            elif domain is not None and domain in competitor_set:
                status = "disqualified"
                headline = "Disqualified: works for a competitor (" + domain + ")"
                add("dq_competitor")
            elif employees is not None and employees < 10:
                status = "disqualified"
                headline = f"Disqualified: {employees} employees, under the minimum of 10"
                add("dq_too_small")
            elif has_open:
                status, headline = "opportunity", "Opportunity (deal in progress)"
                add("opportunity_open_deal")
            elif icp_size is False:
                status = "lead"
                headline = f"Lead (company size {employees} is outside 50-5,000)"
                add("lead_outside_icp_size")
            elif qualified and signals and miss != "hard":
                status = "opportunity"
                headline = "Opportunity (qualified, with buying signals)"
                add("opportunity_buying_signals")
            elif qualified:
                status, headline = "prospect", "Prospect (qualified, not yet an opportunity)"
                add("prospect_qualified")
            elif country is None or employees is None:
                status = "lead"
                headline = "Lead: ICP fit unknown until country and company size are recorded"
                add("lead_fit_unknown")
            elif icp_fit and not budget and not (dm or inbound):
                status, headline = "lead", "Lead: needs a confirmed budget and a decision maker"
                add("lead_needs_budget_and_authority")
            elif icp_fit and not budget:
                status, headline = "lead", "Lead: needs a confirmed budget"
                add("lead_needs_budget")
            elif icp_fit:
                status = "lead"
                headline = "Lead: needs a decision maker (director level or above)"
                add("lead_needs_authority")
            else:
                status = "lead"
                headline = ("Lead: not yet qualified (needs ICP fit, a confirmed budget and a "
                            "decision maker)")

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
        rest = miss_because
        if signal_text:
            rest = rest + "; " + signal_text if rest else signal_text
        if quals:
            rest = rest + "; " + quals if rest else quals
        if rest:
            reason = headline + ("; " if ": " in headline else ": ") + rest
            if len(reason) > 255:
                reason = shorten(reason)
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
                        version, digest, None, {"icp_tier": tier})

    return decide
