"""What a person sees in the terminal: the run's summary and its progress bar."""

from __future__ import annotations

import contextlib
import io
import math
import sys

from .results import Results


def fmt(x, spec: str) -> str:
    """A number for the terminal: ``format(x, spec)``, never a negative zero; a dash for
    null or NaN (censored or undefined), yes/no for a flag."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    out = format(x, spec)
    if out.startswith("-") and not out.strip("-+0.,"):  # -0.001 is "0.00" ("+0.00" with "+"), not "-0.00"
        out = ("+" if "+" in spec else "") + out[1:]
    return out


def pct(x) -> str:
    """A share for the terminal that never rounds up to 100% or down to 0%: 0.99995 is
    ">99.9%", 0.0002 is "<0.1%"; a dash for null."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x >= 1:
        return "100%"
    if x <= 0:
        return "0%"
    if x > 0.999:
        return ">99.9%"
    if x < 0.001:
        return "<0.1%"
    return f"{x:.1%}"


def summary_data(results: Results) -> dict:
    """The summary as plain data (``mcengine summary --json``), all trajectories pooled:
    per threshold, the frontier's date (p5/p50/p95, calendar years) and every other row's
    lead time (years), with p_reached; per access budget, the diffusion date per threshold;
    per actor or group rank with ``access_via`` and channel (``trained``, ``released``),
    the date by that channel in the trajectories where it came first (calendar year; its
    p_reached is the share of trajectories where it did); the counts of organisations. Per
    regime (if any) the same: the frontier's date and the lead times per threshold, the
    diffusion dates, the channels and the counts. Null where a quantile falls among censored
    trajectories. ``reached_at_start``: the median date is the start (at least half the
    trajectories have it reached already)."""
    m = results.metadata
    events = results.events.to_pylist()
    access = results.access.to_pylist()
    counted = [] if results.counts is None else [r for r in results.counts.to_pylist() if r["basis"] == "reached"]
    part = lambda regime: _part(
        m,
        [r for r in events if r["regime"] == regime],
        [r for r in access if r["regime"] == regime],
        [r for r in counted if r["regime"] == regime],
    )
    pooled = part(None)
    regimes = []
    for name in results.regimes():
        p = part(name)
        regimes.append(
            {
                "regime": name,
                "frontier_date": {t["threshold"]: t["frontier_date"] for t in p["thresholds"]},
                "lead_time": {t["threshold"]: t["lead_time"] for t in p["thresholds"]},
                **{k: p[k] for k in ("diffusion", "channels", "counts")},
            }
        )
    return {
        "scenario": m["scenario"],
        "trajectories": m["trajectories"],
        "seed": m["seed"],
        "start": m.get("start"),
        "horizon": m.get("horizon"),
        "device": f"{m['platform']} ({m['device_kind']})",
        "thresholds": pooled["thresholds"],
        "diffusion": pooled["diffusion"],
        "regimes": regimes,
        "counts": pooled["counts"],
        "channels": pooled["channels"],
    }


def _part(m: dict, events: list[dict], access: list[dict], counted: list[dict]) -> dict:
    """The summary of one regime's rows (or of the pooled rows): thresholds (frontier date
    and lead times), diffusion, channels and counts, as in :func:`summary_data`."""
    start = m.get("start")
    resolution = m.get("resolution_years") or 0.0
    at_start = lambda r: start is not None and r["p50"] is not None and r["p50"] - start <= resolution
    stats = lambda r: {**{k: r[k] for k in ("p_reached", "p5", "p50", "p95")}, "reached_at_start": at_start(r)}
    label = lambda r: f"{r['actor']} #{r['rank']}" if r["row_kind"] == "group" else r["actor"]
    ev = [r for r in events if r["channel"] is None]
    dates = {(label(r), r["threshold"]): r for r in ev if r["metric"] == "t_first"}
    thresholds = []
    for r in ev:
        if r["metric"] == "t_first" and r["actor"] == "frontier":
            leads = {
                label(x): {**stats(x), "reached_at_start": at_start(dates.get((label(x), x["threshold"]), x))}
                for x in ev
                if x["metric"] == "lead_time" and x["threshold"] == r["threshold"]
            }
            thresholds.append(
                {
                    "threshold": r["threshold"],
                    "flop": r["threshold_flop"],
                    "kind": r["threshold_kind"],
                    "frontier_date": stats(r),
                    "lead_time": leads,
                }
            )
    diffusion = [
        {"budget_usd": b, "dates": {r["threshold"]: stats(r) for r in access if r["budget_usd"] == b}}
        for b in dict.fromkeys(r["budget_usd"] for r in access)
    ]
    by_channel = [r for r in events if r["channel"] is not None and r["metric"] == "t_first"]
    channels = [
        {
            "actor": actor,
            "channel": channel,
            "dates": {r["threshold"]: stats(r) for r in by_channel if (label(r), r["channel"]) == (actor, channel)},
        }
        for actor, channel in dict.fromkeys((label(r), r["channel"]) for r in by_channel)
    ]
    counts = []
    first = start if start is not None else min((r["year"] for r in counted), default=0.0)
    shown = [first + k for k in COUNT_YEARS if any(r["year"] == first + k for r in counted)]
    for name in dict.fromkeys(r["threshold"] for r in counted):
        by_year = {r["year"]: r for r in counted if r["threshold"] == name}
        counts.append(
            {"threshold": name, "by_year": {f"{y:g}": {k: by_year[y][k] for k in ("p5", "p50", "p95")} for y in shown}}
        )
    return {"thresholds": thresholds, "diffusion": diffusion, "channels": channels, "counts": counts}


COUNT_YEARS = (2, 4, 6, 8, 10)  # years after the start shown in the summary's counts


def date_text(x: dict, at_start: str = "at start") -> str:
    """A median date for the terminal; the median of a threshold reached at the start reads
    ``at_start`` rather than the start year (or a lead of +0.00)."""
    return at_start if x.get("reached_at_start") else fmt(x["p50"], ".2f")


def with_share(cell: str, x: dict) -> str:
    """A cell followed by its share reached by the horizon, if below 100%."""
    p = x.get("p_reached")
    return cell if p is None or p >= 1 else f"{cell} ({pct(p)})"


def date_cell(x: dict | None) -> str:
    """A median date with its share reached if below 100%; empty for no record."""
    return "" if x is None else with_share(date_text(x), x)


def lead_cell(x: dict | None) -> str:
    """A median lead time (years, signed) with its share reached if below 100%; empty for no
    record."""
    return "" if x is None else with_share(date_text(x) if x["reached_at_start"] else fmt(x["p50"], "+.2f"), x)


def count_cell(x: dict | None) -> str:
    """A median count of organisations with its 90% interval; empty for no record."""
    return "" if x is None else f"{fmt(x['p50'], '.0f')} ({fmt(x['p5'], '.0f')}–{fmt(x['p95'], '.0f')})"


def usd(x: float) -> str:
    """A $ amount in brief: $300, $100k, $10M, $1B, $1.5T."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"${x / scale:.3g}{unit}"
    return f"${x:.3g}"


def summary_text(results: Results, width: int = 110) -> str:
    """The summary printed by ``mcengine run`` and ``mcengine summary``: per threshold, the
    frontier's median date with its 90% interval and the share reached by the horizon, then
    each actor's median lead time, each access budget's median diffusion date, the dates by
    channel (if any actor has ``access_via``), per regime (if any) the frontier's median
    date, the lead times and the diffusion dates, and the counts of organisations."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    d = summary_data(results)
    by = f" by {d['horizon']:g}" if d["horizon"] else ""
    titles = [f"Frontier date (calendar year; '—': the quantile is not reached{by})"]
    frontier = Table(box=box.SIMPLE_HEAD)
    for col in ("threshold", "kind", "median", "90% interval", "reached"):
        frontier.add_column(col, justify="left" if col in ("threshold", "kind") else "right")
    actors: list[str] = []
    for t in d["thresholds"]:
        f = t["frontier_date"]
        frontier.add_row(
            t["threshold"],
            t["kind"],
            date_text(f, "reached at start"),
            f"{fmt(f['p5'], '.2f')} – {fmt(f['p95'], '.2f')}",
            pct(f["p_reached"]),
        )
        actors += [a for a in t["lead_time"] if a not in actors]
    out = [frontier]
    if actors:
        titles.append(
            "Median lead time (years after the frontier; 'at start': both have it at the start; the share "
            "reached by the horizon follows if below 100%)"
        )
        lead = Table(box=box.SIMPLE_HEAD)
        lead.add_column("actor", no_wrap=True)
        for t in d["thresholds"]:
            lead.add_column(t["threshold"], justify="right")
        for a in actors:
            cells = []
            for t in d["thresholds"]:
                cells.append(lead_cell(t["lead_time"].get(a)))
            lead.add_row(a, *cells)
        out.append(lead)
    names = [t["threshold"] for t in d["thresholds"]]
    if d["diffusion"]:
        titles.append(
            "Median diffusion date: when an access budget can reach each threshold (calendar year; 'at start': "
            f"it can at the start; the share reached{by} follows if below 100%)"
        )
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("budget", no_wrap=True)
        for n in names:
            table.add_column(n, justify="right")
        for a in d["diffusion"]:
            table.add_row(
                f"${a['budget_usd']:,.0f}",
                *(date_cell(a["dates"].get(n)) for n in names),
            )
        out.append(table)
    if d["channels"]:
        titles.append(
            "Share of trajectories in which each channel gave the capability first (dates by channel: --json "
            "or mcengine report)"
        )
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("actor", no_wrap=True)
        table.add_column("channel", no_wrap=True)
        for n in names:
            table.add_column(n, justify="right")
        for c in d["channels"]:
            table.add_row(
                c["actor"], c["channel"], *(pct(c["dates"][n]["p_reached"]) if n in c["dates"] else "" for n in names)
            )
        out.append(table)
    if d["regimes"]:
        titles.append(
            "Frontier median date per regime (calendar year), below it each actor's median lead time (years) "
            "and each budget's median diffusion date (calendar year) in that regime"
        )
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("regime", no_wrap=True)
        for n in names:
            table.add_column(n, justify="right")
        for i, g in enumerate(d["regimes"]):
            if i:
                table.add_section()
            dates = g["frontier_date"]
            table.add_row(g["regime"], *(date_cell(dates.get(n)) for n in names))
            for a in dict.fromkeys(a for leads in g["lead_time"].values() for a in leads):
                table.add_row(f"  {a}", *(lead_cell(g["lead_time"].get(n, {}).get(a)) for n in names))
            for a in g["diffusion"]:
                table.add_row(f"  {usd(a['budget_usd'])} access", *(date_cell(a["dates"].get(n)) for n in names))
        out.append(table)
    if d["counts"] and d["counts"][0]["by_year"]:
        years = list(d["counts"][0]["by_year"])
        titles.append(
            "Organisations able to reach each threshold by 1 January of the year (actors and every "
            "group member; median and 90% interval)"
        )
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("threshold", no_wrap=True)
        for y in years:
            table.add_column(y, justify="right")
        for c in d["counts"]:
            table.add_row(c["threshold"], *(count_cell(v) for v in c["by_year"].values()))
        out.append(table)
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(f"{d['scenario']}: {d['trajectories']:,} trajectories, seed {d['seed']}, {d['device']}", markup=False)
    for title, table in zip(titles, out):
        console.print()
        console.print(title, markup=False)
        console.print(table)
    return console.export_text().rstrip()


def point_summary(results: Results) -> dict:
    """One sweep point in brief (kept in sweep.json): per threshold, the frontier's median
    date and the share reached, and, if the results have counts, the median number of
    organisations able to reach it in the last counted year."""
    rows = [r for r in results.events.to_pylist() if r["regime"] is None and r["channel"] is None]
    out = {
        r["threshold"]: {"frontier_p50": r["p50"], "p_reached": r["p_reached"]}
        for r in rows
        if r["metric"] == "t_first" and r["actor"] == "frontier"
    }
    if results.counts is not None:
        counted = [r for r in results.counts.to_pylist() if r["regime"] is None and r["basis"] == "reached"]
        last = max((r["year"] for r in counted), default=None)
        for r in counted:
            if r["year"] == last and r["threshold"] in out:
                out[r["threshold"]].update(count_year=last, count_p50=r["p50"])
    return {"thresholds": out}


def sweep_summary_text(manifest: dict, width: int = 110, per_table: int = 7) -> str:
    """The summary printed after ``mcengine sweep``: the points and their swept values, then
    a row per threshold and a column per point (at most ``per_table`` points to a table)
    with the frontier's median date and, if counted, the median number of organisations able
    to reach the threshold in the last counted year."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    points = manifest["points"]
    value = lambda x: f"{x:g}" if _is_number(x) else str(x)
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(f"{len(points)} points:", markup=False)
    for i, p in enumerate(points):
        console.print(f"  #{i}  " + ", ".join(f"{c}={value(v)}" for c, v in p["values"].items()), markup=False)
    names = list(points[0]["summary"]["thresholds"]) if points else []
    year = next(
        (t["count_year"] for p in points for t in p["summary"]["thresholds"].values() if "count_year" in t), None
    )
    console.print()
    console.print(
        "Frontier median date (calendar year; '—': not reached in the median)"
        + (f"; in brackets, the median number of organisations able to reach it by {year:g}" if year else ""),
        markup=False,
    )
    for first in range(0, len(points), per_table):
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("threshold", no_wrap=True)
        shown = range(first, min(first + per_table, len(points)))
        for i in shown:
            table.add_column(f"#{i}", justify="right")
        for n in names:
            cells = []
            for i in shown:
                t = points[i]["summary"]["thresholds"].get(n, {})
                cells.append(
                    fmt(t.get("frontier_p50"), ".2f") + (f" ({fmt(t['count_p50'], '.0f')})" if "count_p50" in t else "")
                )
            table.add_row(n, *cells)
        console.print(table)
    return console.export_text().rstrip()


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool = True):
    """A progress bar on stderr (trajectories done, rate, time left) while the block runs;
    yields a callback taking the trajectories just finished. It says "compiling" until the
    first call (the kernel compiles and the pilot runs before the first chunk is done), then
    "sampling". Shown only on a terminal."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.fields[phase]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("sampling", total=total, rate="", phase="compiling")

        def advance(n: int):
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f} traj/s" if speed else "", phase="sampling")

        yield advance
