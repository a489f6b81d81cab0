"""Layer 2 of rule-file validation, outputs: lists, decisions, templates, the reason, tasks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from crmsync.rules.templates import TemplateSyntaxError, parse_template
from crmsync.rules.tree import Decision, FactRef, Rule, TaskRule, Template
from crmsync.rules.validate_base import (
    _INVALID,
    BUILTIN_OUTPUTS,
    CheckerBase,
    _comparable,
    _dict,
    _list,
    _literal_kind,
    did_you_mean,
    kind_word,
)


class DecisionChecks(CheckerBase):
    """Checks of lists, outputs, decisions and their rules, templates, the reason and tasks."""

    def _lists(self, raw: Any) -> None:
        for name, items in _dict(raw).items():
            if isinstance(items, list):
                self.lists[name] = items

    def _declare_outputs(self, raw: Any) -> None:
        for index, decision in enumerate(_list(raw)):
            if not isinstance(decision, dict):
                continue
            output, hit = decision.get("output"), decision.get("hit")
            pointer = f"/decisions/{index}"
            if not isinstance(output, str) or hit not in ("first", "sum", "collect"):
                continue
            if output in self.outputs:
                self.error(f"{pointer}/output", f"output '{output}' is decided twice")
                continue
            if output in self.facts:
                self.error(f"{pointer}/output", f"output '{output}' has the name of a fact; "
                                                "give it another name")
                continue
            if output in BUILTIN_OUTPUTS:
                want_hit, kind, closed = BUILTIN_OUTPUTS[output]
                if hit != want_hit:
                    self.error(f"{pointer}/hit", f"'{output}' must use hit policy '{want_hit}'")
            elif output in self.declared_outputs:
                kind, closed = self._declared_kind(self.declared_outputs[output], hit, pointer)
            elif hit == "sum":
                kind, closed = "int", None
            elif hit == "collect":
                kind, closed = "list", None
            else:
                kind, closed = _literal_kind(decision.get("default")) or "str", None
            self.outputs[output] = (hit, kind, closed)
            self.output_order.append(output)
        if isinstance(raw, list) and "status" not in self.outputs and not any(
            isinstance(d, dict) and d.get("output") == "status" for d in raw
        ):
            self.error("/decisions", "no decision for 'status'; every rule set decides the "
                                     "status (lead, prospect, opportunity or disqualified)")


    # -- decisions, reason, tasks --------------------------------------------------------

    def _decisions(self, raw: Any) -> list[Decision]:
        decided: set[str] = set()
        result = []
        for index, item in enumerate(_list(raw)):
            output = _dict(item).get("output")
            if not isinstance(output, str) or output not in self.outputs:
                continue
            decision = self._decision(item, f"/decisions/{index}", output, set(decided))
            decided.add(output)
            if decision is not None:
                result.append(decision)
        return result

    def _decision(self, raw: dict[str, Any], pointer: str, output: str,
                  available: set[str]) -> Decision | None:
        hit, kind, closed = self.outputs[output]
        default: Any = None
        if hit == "first":
            if "default" not in raw:
                self.error(pointer, f"a 'first' decision needs a \"default\" (the value of "
                                    f"'{output}' when no rule fires)")
            else:
                default = self._output_value(raw["default"], output, kind, closed,
                                             f"{pointer}/default", allow_fact=False)
        elif hit == "sum":
            default = raw.get("default", 0)
            if isinstance(default, bool) or not isinstance(default, int):
                self.error(f"{pointer}/default", "a 'sum' default is a whole number")
                default = 0
        elif "default" in raw:
            self.error(f"{pointer}/default", "a 'collect' decision starts empty; remove "
                                             "\"default\"", key=True)
        for bound in ("min", "max"):
            if bound in raw and hit != "sum":
                self.error(f"{pointer}/{bound}", f"'{bound}' applies only to 'sum' decisions",
                           key=True)
        minimum, maximum = raw.get("min"), raw.get("max")
        if isinstance(minimum, int) and isinstance(maximum, int) and minimum > maximum:
            self.error(f"{pointer}/min", f"min {minimum} is above max {maximum}")
        template_names = self._template_names(available)
        default_because = self._template(raw.get("default_because", ""),
                                         f"{pointer}/default_because", template_names)
        rules: list[Rule] = []
        catch_all: str | None = None
        seen_conditions: dict[str, str] = {}
        for r_index, rule_raw in enumerate(_list(raw.get("rules"))):
            r_ptr = f"{pointer}/rules/{r_index}"
            if not isinstance(rule_raw, dict) or not isinstance(rule_raw.get("id"), str):
                continue
            rule_id = rule_raw["id"]
            if catch_all is not None and hit == "first":
                self.error(f"{r_ptr}/id", f"rule '{rule_id}' can never fire: rule '{catch_all}' "
                                          "above it has no condition, so it always decides",
                           "move this rule above it, or delete it")
            when_raw = rule_raw.get("when")
            if hit == "first" and when_raw is not None:
                fingerprint = json.dumps(when_raw, sort_keys=True)
                if fingerprint in seen_conditions:
                    self.error(f"{r_ptr}/when", f"rule '{rule_id}' can never fire: rule "
                                                f"'{seen_conditions[fingerprint]}' above it has "
                                                "the same condition")
                seen_conditions.setdefault(fingerprint, rule_id)
            when = None
            if when_raw is not None:
                when = self._condition(when_raw, f"{r_ptr}/when", outputs=available)
            then: Any = None
            add = 0
            if hit == "first":
                if "add" in rule_raw:
                    self.error(f"{r_ptr}/add", "'add' belongs in a 'sum' decision; use \"then\"",
                               key=True)
                if "then" not in rule_raw:
                    self.error(r_ptr, f"missing \"then\": the value of '{output}' this rule sets")
                else:
                    then = self._output_value(rule_raw["then"], output, kind, closed,
                                              f"{r_ptr}/then", allow_fact=True)
                if when_raw is None and not isinstance(then, FactRef):
                    catch_all = rule_id
            elif hit == "sum":
                if "then" in rule_raw:
                    self.error(f"{r_ptr}/then", "a 'sum' rule adds points: use \"add\"", key=True)
                if "add" not in rule_raw:
                    self.error(r_ptr, "missing \"add\": the points this rule adds")
                add = rule_raw.get("add", 0) if isinstance(rule_raw.get("add"), int) else 0
            else:
                if "add" in rule_raw:
                    self.error(f"{r_ptr}/add", "'add' belongs in a 'sum' decision", key=True)
                then = rule_raw.get("then", rule_id)
                if isinstance(then, bool) or not isinstance(then, str | int | float):
                    self.error(f"{r_ptr}/then", "a collected value is text or a number")
                    then = rule_id
                else:
                    self._check_collected_value(output, then,
                                                f"{r_ptr}/then" if "then" in rule_raw else r_ptr)
            because = self._template(rule_raw.get("because", ""), f"{r_ptr}/because",
                                     template_names)
            rules.append(Rule(rule_id, r_ptr, when, then, add, because))
        return Decision(output, hit, kind, pointer, tuple(rules), default, default_because,
                        minimum if isinstance(minimum, int) else None,
                        maximum if isinstance(maximum, int) else None, closed)

    def _output_value(self, raw: Any, output: str, kind: str, closed: tuple[str, ...] | None,
                      pointer: str, *, allow_fact: bool) -> Any:
        if allow_fact and isinstance(raw, dict) and set(raw) == {"fact"}:
            if closed is not None and output in self.declared_outputs:
                # The closed-set fast path of status (lower-cased fact text) does not fit
                # values people spell as they like ("Tier 1"): a rule sets a listed value.
                self.error(pointer, f"'{output}' has declared \"values\"; a rule sets one of "
                                    "them, not a fact's value",
                           f"write one of: {', '.join(closed)}, or drop \"values\" from "
                           f"outputs.{output} to copy the fact")
                return None
            fact_kind = self._fact_kind(raw["fact"], f"{pointer}/fact")
            if fact_kind is not None and not _comparable(kind, fact_kind):
                self.error(pointer, f"'{output}' is {kind_word(kind)}; fact '{raw['fact']}' is "
                                    f"{kind_word(fact_kind)}")
            return FactRef(raw["fact"]) if fact_kind else None
        if closed is not None:
            if raw not in closed:
                self.error(pointer, f"{json.dumps(raw)} is not a valid {output}; expected one "
                                    f"of: {', '.join(closed)}",
                           did_you_mean(str(raw), closed))
                return closed[0]
            return raw
        value = self._literal(raw, kind, output, pointer)
        return None if value is _INVALID else value

    def _template_names(self, outputs: Iterable[str]) -> set[str]:
        return {*self.facts, *self.derived_raw, *outputs}

    def _template(self, raw: Any, pointer: str, names: set[str]) -> Template:
        if not isinstance(raw, str):
            return Template(())
        try:
            template = parse_template(raw)
        except TemplateSyntaxError as error:
            self.error(pointer, f"bad placeholder: {error}")
            return Template(())
        template = self._inline_named_values(template, pointer)
        for name in template.names:
            if name not in names:
                hint = (self._unknown_plain_placeholder_hint(name)
                        or did_you_mean(name, names))
                if name in self.outputs:
                    hint = f"output '{name}' is decided later; only earlier outputs can be used"
                self.error(pointer, f"placeholder {{{name}}} names no fact or output", hint)
            elif name in self.facts:
                self.facts_used.add(name)
            elif name in self.derived_raw:
                self._resolve_derived(name)
        return template

    def _reason(self, raw: Any, decisions: list[Decision]) -> tuple[str, ...]:
        if raw is None:
            return ("status", *(d.output for d in decisions if d.hit == "collect"))
        result = []
        for index, name in enumerate(_list(raw)):
            if not isinstance(name, str) or name not in self.outputs:
                self.error(f"/reason/{index}", f"unknown output {json.dumps(name)}",
                           did_you_mean(str(name), self.outputs))
            else:
                result.append(name)
        return tuple(result)

    def _tasks(self, raw: Any) -> list[TaskRule]:
        result = []
        every_output = set(self.outputs)
        names = self._template_names(every_output)
        for index, item in enumerate(_list(raw)):
            pointer = f"/tasks/{index}"
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            when = None
            if "when" in item:
                when = self._condition(item["when"], f"{pointer}/when", outputs=every_output)
            due = item.get("due_in_business_days", 0)
            result.append(TaskRule(
                id=item["id"],
                pointer=pointer,
                purpose=str(item.get("purpose", "")),
                when=when,
                subject=self._template(item.get("subject", ""), f"{pointer}/subject", names),
                body=self._template(item.get("body", ""), f"{pointer}/body", names),
                due_in_business_days=due if isinstance(due, int) else 0,
                priority=str(item.get("priority", "normal")),
                approach=str(item.get("approach", "consultative")),
                close_when_obsolete=bool(item.get("close_when_obsolete", False)),
                because=self._template(item.get("because", ""), f"{pointer}/because", names),
            ))
        return result

    def _unique_ids(self, decisions: list[Decision], tasks: list[TaskRule]) -> None:
        seen: dict[str, str] = {}
        for rule_id, pointer in [(r.id, r.pointer) for d in decisions for r in d.rules] + [
            (t.id, t.pointer) for t in tasks
        ]:
            if rule_id in seen:
                line, col = self.smap.locate(seen[rule_id] + "/id")
                self.error(f"{pointer}/id", f"duplicate rule id '{rule_id}' (first used at "
                                            f"line {line})")
            else:
                seen[rule_id] = pointer
