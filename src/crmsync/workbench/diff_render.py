"""Render a :func:`~crmsync.workbench.diff.compare` result: rich tables, or an HTML page.

Both show the same content; the HTML page adds charts (``crmsync.charts.figure``). rich and
Altair are imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_LABEL = {"status": "Status", "miss_type": "Miss type"}


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def render_text(result: dict[str, Any], console: Console) -> None:
    """Print the comparison as rich tables."""
    from rich.table import Table

    out = console.print
    old, new = result["old"], result["new"]
    out(f"rules diff: {old['file']} (version {old['version']}, {old['hash']}) → "
        f"{new['file']} (version {new['version']}, {new['hash']}) at {result['now']}",
        markup=False)
    out(f"{result['contacts']} contacts, {result['changed']} would change", markup=False)
    if result.get("skipped"):
        out(f"({result['skipped']} bad input lines skipped: see above)", markup=False)
    for output, matrix in result["transitions"].items():
        table = Table(title=f"{_LABEL.get(output, output)}: old (rows) → new (columns)",
                      title_justify="left")
        table.add_column("old \\ new")
        for value in matrix["values"]:
            table.add_column(value, justify="right")
        table.add_column("total", justify="right")
        for value in matrix["values"]:
            row = matrix["matrix"][value]
            cells = [(f"[bold]{n}[/]" if n and other != value else str(n) if n else "·")
                     for other, n in row.items()]
            table.add_row(value, *cells, str(matrix["before"][value]))
        table.add_row("total", *(str(matrix["after"][v]) for v in matrix["values"]),
                      str(result["contacts"]), style="dim")
        out(table)
        for move in matrix["moves"]:
            out(f"  {move['from']} → {move['to']}: {move['count']} "
                f"({_pct(move['share'])} of {move['from']}); e.g. {', '.join(move['samples'])}",
                markup=False)
            if move.get("explain"):
                out(f"    {move['explain']}", markup=False)
    score = result["score"]
    table = Table(title=f"Score: mean {score['old_mean']} → {score['new_mean']} "
                        f"({score['mean_shift']:+}); raised {score['raised']}, lowered "
                        f"{score['lowered']}, unchanged {score['unchanged']}",
                  title_justify="left")
    for name in ("band", "old", "new", "change"):
        table.add_column(name, justify="left" if name == "band" else "right")
    for band in score["bands"]:
        table.add_row(band["band"], str(band["old"]), str(band["new"]),
                      f"{band['new'] - band['old']:+}")
    out(table)
    out(f"Reasons changed: {result['reasons']['changed']}", markup=False)
    tasks = result["tasks"]
    out(f"Tasks: {tasks['total_creates']} would be created, {tasks['total_closes']} closed"
        + (f", {sum(tasks['left_open'].values())} obsolete but kept open"
           if tasks["left_open"] else ""), markup=False)
    for kind in ("creates", "closes", "left_open"):
        for purpose, n in tasks[kind].items():
            out(f"  {kind.replace('_', ' ')} {purpose}: {n}", markup=False)
    table = Table(title="Rules whose hits changed (biggest movers first)", title_justify="left")
    for name in ("rule", "output", "old", "new", "change"):
        table.add_column(name, justify="left" if name in ("rule", "output") else "right")
    by_id = {r["id"]: r for r in result["rules"]}
    for mover in result["movers"]:
        table.add_row(mover["id"], by_id[mover["id"]]["output"], _hits(by_id[mover["id"]]["old"]),
                      _hits(by_id[mover["id"]]["new"]), f"{mover['delta']:+}")
    if result["movers"]:
        out(table)
    else:
        out("Rule hits: no rule's hit count changed", markup=False)
    for key, label in (("dead", "No longer fire (dead)"),
                       ("never_fire_new", "Never fire under the new rules"),
                       ("added", "Added"), ("removed", "Removed")):
        if result[key]:
            out(f"{label}: {', '.join(result[key])}", markup=False)
    for guard in result.get("guards", ()):
        state = "[red]TRIPPED[/]" if guard["tripped"] else "[green]ok[/]"
        out(f"guard {escape_markup(guard['guard'])}: {state} ({guard['count']} of "
            f"{guard['base']}, {_pct(guard['share'])})")


def escape_markup(text: str) -> str:
    """``text`` safe inside rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _hits(value: int | None) -> str:
    return "—" if value is None else str(value)


# -- HTML ---------------------------------------------------------------------------------------


def _heatmap(output: str, matrix: dict[str, Any]) -> Any:
    import altair as alt

    rows = [{"old": old, "new": new, "contacts": n, "moved": old != new}
            for old, row in matrix["matrix"].items() for new, n in row.items()]
    order = matrix["values"]
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("new:N", sort=order, title=f"new {output}", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("old:N", sort=order, title=f"old {output}"))
    # The diagonal (unchanged) is plain grey, so the eye goes to the cells that move; those
    # are shaded by how many contacts move.
    kept = base.mark_rect(color="#d9d9d9").transform_filter("!datum.moved")
    moved = base.mark_rect().encode(
        color=alt.Color("contacts:Q", scale=alt.Scale(scheme="oranges"),
                        title="contacts moving")).transform_filter(
        "datum.moved && datum.contacts > 0")
    dark = max([r["contacts"] for r in rows if r["moved"]] or [0]) / 2
    text = base.mark_text().encode(
        text="contacts:Q",
        color=alt.condition(f"datum.moved && datum.contacts > {dark}", alt.value("white"),
                            alt.value("black")),
    ).transform_filter("datum.contacts > 0")
    return (kept + moved + text).properties(width=90 * len(order), height=36 * len(order))


def _bands(score: dict[str, Any]) -> Any:
    import altair as alt

    rows = [{"band": b["band"], "rules": side, "contacts": b[side]}
            for b in score["bands"] for side in ("old", "new")]
    return alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("band:N", sort=[b["band"] for b in score["bands"]], title="score band"),
        xOffset=alt.XOffset("rules:N", sort=["old", "new"]),
        y=alt.Y("contacts:Q", title="contacts"),
        color=alt.Color("rules:N", sort=["old", "new"], title="rules"),
    ).properties(width=320, height=200)


def _movers(result: dict[str, Any]) -> Any:
    import altair as alt

    rows = [{"rule": m["id"], "change": m["delta"]} for m in result["movers"]]
    return alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("change:Q", title="hits, new − old"),
        y=alt.Y("rule:N", sort=[m["id"] for m in result["movers"]], title=None),
    ).properties(width=320, height=max(40, 22 * len(rows)))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(result: dict[str, Any]) -> str:
    """The comparison as one self-contained HTML page (inline SVG charts, no scripts)."""
    from crmsync.charts import CHART_CSS, figure

    old, new = result["old"], result["new"]
    parts = [f"<h1>Rule diff: {escape(old['file'])} → {escape(new['file'])}</h1>",
             f"<p>{result['contacts']} contacts, {result['changed']} would change "
             f"(evaluated at {escape(result['now'])}; old version {escape(old['version'])}, "
             f"new version {escape(new['version'])}).</p>"]
    for output, matrix in result["transitions"].items():
        label = _LABEL.get(output, output)
        parts.append(f"<h2>{escape(label)} transitions</h2>")
        parts.append(figure(_heatmap(output, matrix),
                            caption=f"{label}: contacts by old (rows) and new (columns) value"))
        parts.append(_table(
            ["from", "to", "contacts", "share of from", "samples", "explain"],
            [[m["from"], m["to"], m["count"], _pct(m["share"]), ", ".join(m["samples"]),
              m.get("explain", "")] for m in matrix["moves"]]))
    score = result["score"]
    parts.append("<h2>Score</h2>")
    parts.append(f"<p>Mean {score['old_mean']} → {score['new_mean']} "
                 f"({score['mean_shift']:+}); raised {score['raised']}, lowered "
                 f"{score['lowered']}, unchanged {score['unchanged']}.</p>")
    parts.append(figure(_bands(score), caption="Contacts per score band, old and new rules"))
    parts.append(_table(["band", "old", "new"],
                        [[b["band"], b["old"], b["new"]] for b in score["bands"]]))
    tasks = result["tasks"]
    parts.append("<h2>Reasons and tasks</h2>")
    parts.append(f"<p>Reasons changed: {result['reasons']['changed']}. Tasks created: "
                 f"{tasks['total_creates']}, closed: {tasks['total_closes']}.</p>")
    parts.append(_table(["change", "purpose", "contacts"],
                        [[kind.replace("_", " "), purpose, n]
                         for kind in ("creates", "closes", "left_open")
                         for purpose, n in tasks[kind].items()]))
    parts.append("<h2>Rules</h2>")
    if result["movers"]:
        parts.append(figure(_movers(result), caption="Rules whose hit counts moved the most"))
    parts.append(_table(["rule", "output", "old hits", "new hits", "change"],
                        [[r["id"], r["output"], _hits(r["old"]), _hits(r["new"]),
                          f"{r['delta']:+}"] for r in result["rules"]]))
    for key, label in (("dead", "No longer fire (dead)"),
                       ("never_fire_new", "Never fire under the new rules")):
        if result[key]:
            parts.append(f"<p>{escape(label)}: {escape(', '.join(result[key]))}</p>")
    if result.get("guards"):
        parts.append("<h2>Guards</h2>")
        parts.append(_table(["guard", "contacts", "of", "share", "tripped"],
                            [[g["guard"], g["count"], g["base"], _pct(g["share"]),
                              "yes" if g["tripped"] else "no"] for g in result["guards"]]))
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
             "padding:0 1rem}table{border-collapse:collapse;margin:.5rem 0}"
             "td,th{border:1px solid #8884;padding:.2rem .5rem;text-align:left}"
             "@media (prefers-color-scheme: dark){body{background:#111;color:#ddd}}")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>crmsync rules diff</title>"
            f"<style>{style}\n{CHART_CSS}</style></head><body>"
            + "".join(parts) + "</body></html>\n")


__all__ = ["render_html", "render_text"]
