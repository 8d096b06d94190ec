"""What a person sees in the terminal: the run's summary and its progress bar."""

from __future__ import annotations

import contextlib
import math
import sys

from .api import Results


def _fmt(x, spec: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def summary_text(results: Results) -> str:
    """The summary printed by ``mcengine run`` and ``mcengine summary``."""
    m = results.metadata
    ev = results.events.to_pylist()
    horizon = m.get("horizon")
    head = (f"{m['scenario']}: {m['trajectories']:,} trajectories, seed {m['seed']}, "
            f"{m['platform']} ({m['device_kind']})")
    frontier = [[r["threshold"], r["threshold_kind"], _fmt(r["p_reached"], ".1%"), _fmt(r["p5"], ".2f"),
                 _fmt(r["p50"], ".2f"), _fmt(r["p95"], ".2f")]
                for r in ev if r["metric"] == "t_first" and r["actor"] == "frontier" and r["regime"] is None]
    groups = {r["actor"] for r in ev if r["metric"] == "warning_window"}
    lead = [[r["actor"] + (f" #{r['rank']}" if r["actor"] in groups else ""), r["threshold"], _fmt(r["p_reached"], ".1%"), _fmt(r["p5"], "+.2f"),
             _fmt(r["p50"], "+.2f"), _fmt(r["p95"], "+.2f")]
            for r in ev if r["metric"] == "lead_time" and r["regime"] is None]
    by = f" by {horizon:g}" if horizon else ""
    parts = [head, "",
             f"Frontier date (calendar year; '—': not reached{by} at that quantile)",
             _table(["threshold", "kind", "reached", "p5", "p50", "p95"], frontier)]
    if lead:
        parts += ["", "Lead time (years after the frontier reaches the threshold)",
                  _table(["actor", "threshold", "reached", "p5", "p50", "p95"], lead)]
    return "\n".join(parts)


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool = True):
    """A progress bar on stderr (trajectories done, rate, time left) while the block runs;
    yields a callback taking the trajectories just finished. Shown only on a terminal."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda n: None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    from rich.console import Console

    columns = (TextColumn("sampling"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("sampling", total=total, rate="")

        def advance(n: int):
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f} traj/s" if speed else "")

        yield advance
