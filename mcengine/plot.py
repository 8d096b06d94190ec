"""Figures of a results folder, ready for a paper: fan chart of effective compute, CDF of
first-reach dates, lead times, the access / performance effects, and (where the results
have them) counts of organisations, the frontier per regime, and dates per channel.

Axes frame the answers: a time axis ends a little after the latest p95 date it shows
(capped at the horizon, which it reaches when a row has no p95 date), effective-compute
axes run from the lowest median to a margin above the highest threshold in view, and a
curve lying on another is drawn broken with other markers and says which it overlaps.

Every function takes a :class:`mcengine.Results` or the path of a results folder and
returns a :class:`matplotlib.figure.Figure`. Figures are made without pyplot, on the
non-interactive Agg canvas: nothing opens a window or changes the user's backend.
Needs matplotlib (``pip install "mcengine[plot]"``); JAX is not imported.

Only quantiles are stored, so the CDF is drawn through them: straight lines between the
stored points (p1 ... p99) and from the last one to the share reached by the horizon;
censored trajectories (not reached by the horizon) are shown as the gap at the horizon
and labelled "not by <horizon>: X%".
"""

from __future__ import annotations

import contextlib
import math
import textwrap
from pathlib import Path

import numpy as np

from . import io
from .errors import ArgumentError, DataError, OutputError
from .results import Row, read_results

EXTENSIONS = (".png", ".svg", ".pdf")
FIGURES = ("fan", "cdf", "lead", "access")  # drawn for every run
OPTIONAL_FIGURES = ("counts", "regimes", "channels")  # drawn when the run has counts, regimes, channels
BAND_ALPHA = (0.10, 0.22)  # p5-p95, p25-p75
FRAME = "p95"  # time axes end a little after the latest of these dates
NOTE = dict(fontsize=7.5, color="0.35")
FRONTIER_COLOR = "black"
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "figure.dpi": 100,
    "savefig.dpi": 200,
}


# ---------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------


def fan_chart(results, regime=None):
    """Effective compute over time (``effective:<row>`` series), one panel per actor or
    group (a group's ranks share its panel): median line, p25-p75 and p5-p95 bands, the
    frontier's median as a dashed reference in every other panel, and the effective
    thresholds as labelled horizontal lines. y: effective FLOP (powers of ten); x: year."""
    d = _Data(results, regime)
    entities = list(dict.fromkeys(row.actor for row in d.rows))
    series = {row: d.path(f"effective:{row.label}") for row in d.rows}
    missing = [row.display for row, p in series.items() if p is None or np.all(np.isnan(p["p50"]))]
    series = {row: p for row, p in series.items() if row.display not in missing}
    entities = [a for a in entities if any(row.actor == a for row in series)]
    with _style():
        n = len(entities)
        ncols = 1 if n <= 1 else (2 if n <= 4 else 3)
        nrows = max(1, math.ceil((n + (1 if n > 1 and n % ncols else 0)) / ncols))
        if n <= 1:
            fig, axes = _figure(7.5, 5.0)
        else:
            fig, axes = _figure(3.1 * ncols + 1.0, 2.45 * nrows + 1.5, nrows, ncols, sharex=True, sharey=True)
        axes = np.atleast_1d(axes).ravel()
        _title(fig, d, "effective training compute over time")
        if not series:
            axes[0].set_axis_off()
            _say(axes[0], "no effective-compute series (effective:<row>) in paths.parquet")
            return fig
        effective = [t for t in d.thresholds if t.kind == "effective"]
        end, cut = d.frame_end(d.dates("t_first", effective))
        (ylo, yhi), shown, off_top = _frame_levels(list(series.values()), effective, end)
        overlaps = {}
        for actor in entities:
            ranks = {row: series[row]["p50"] for row in d.rows if row.actor == actor and row in series}
            overlaps.update(_overlapping(ranks, tol=0.05))
        frontier = next((p for row, p in series.items() if row.actor == d.frontier), None)
        for ax, actor in zip(axes, entities):
            rows = [row for row in d.rows if row.actor == actor and row in series]
            group = len(rows) > 1 or rows[0].is_group
            for row in rows:
                p, c = series[row], d.color(row)
                fade = 1.0 / math.sqrt(len(rows))
                ax.fill_between(p["year"], p["p5"], p["p95"], color=c, alpha=BAND_ALPHA[0] * fade * 1.3, lw=0)
                ax.fill_between(p["year"], p["p25"], p["p75"], color=c, alpha=BAND_ALPHA[1] * fade, lw=0)
            for row in rows:
                under = overlaps.get(row)
                _median_line(
                    ax,
                    series[row],
                    d.color(row),
                    _overlap_style(overlaps, row),
                    (f"#{row.rank}" if group else row.display) + (f" (overlaps #{under.rank})" if under else ""),
                    zorder=2.5 if under else 2.2,
                )
            if frontier is not None and actor != d.frontier:
                ax.plot(
                    frontier["year"],
                    frontier["p50"],
                    color=FRONTIER_COLOR,
                    lw=0.9,
                    ls=(0, (3, 2)),
                    label="frontier (median)",
                )
            name = f"{actor} (group)" if group else actor
            ax.set_title(name, loc="left", fontsize=9, color=d.color(rows[0]) if not group else _dark(d, rows))
            for t in shown:
                ax.axhline(t.log10, color="0.45", ls=(0, (1, 1.5)), lw=0.8, zorder=1.5)
            if group:
                ax.legend(
                    handles=[h for h in ax.get_lines() if h.get_gid() == "median"],
                    loc="upper left",
                    fontsize=7,
                    frameon=False,
                    handlelength=1.4,
                    borderaxespad=0.3,
                    labelspacing=0.25,
                )
            ax.grid(axis="y", color="0.92", lw=0.5)
            ax.set_axisbelow(True)
        for ax in axes[n:]:
            ax.set_axis_off()
        if n > 1 and len(axes) > n:
            _key(axes[n])
        ax0 = axes[0]
        ax0.set_xlim(d.start, end)
        ax0.set_ylim(ylo, yhi)
        for k, ax in enumerate(axes[:n]):  # threshold names right of the last panel of each row
            if k % ncols == ncols - 1 or k == n - 1:
                _margin_labels(ax, [(t.log10, t.label, "0.3") for t in shown], x_from=end, fontsize=7, leaders=False)
        _pow10(ax0.yaxis)
        _years(ax0.xaxis)
        for k, ax in enumerate(axes[:n]):
            if k % ncols == 0:
                ax.set_ylabel("Effective compute (FLOP)")
            if k + ncols >= n or n <= 1:
                ax.set_xlabel("Year")
                ax.xaxis.set_tick_params(labelbottom=True)
        notes = [
            "Line: median; dark band: 50% (p25-p75); light band: 90% (p5-p95) of trajectories. "
            "Dotted: effective thresholds (effective FLOP, in the scenario's reference algorithms)."
        ]
        if d.groups:
            notes.append("Group panels: #k is the k-th largest member of the group.")
        if not effective:
            notes.append("No effective thresholds in this scenario.")
        hidden = [t.name for t in effective if t not in shown]
        if hidden:
            notes.append(f"Thresholds outside the range shown: {', '.join(hidden)}.")
        if missing:
            notes.append(f"No fan-chart data for: {', '.join(missing)}.")
        if off_top:
            notes.append(_off_top(yhi))
        if cut:
            notes.append(d.cut_note(end, "the thresholds shown"))
        if overlaps:
            notes.append("Broken or marked lines lie on (within 0.05 OOM of) the line named in their label.")
        _notes(fig, notes)
    return fig


def threshold_cdf(results, threshold, regime=None):
    """Cumulative distribution of the date at which the frontier, every other actor and
    every group rank first reaches ``threshold`` (events ``t_first``, all channels
    combined). Drawn through the stored quantiles (markers) joined by straight lines
    (linear interpolation), then on to the share reached by the horizon; the censored
    rest is a bar at the horizon and labelled "not by <horizon>: X%" in the legend. The
    time axis ends a little after the latest p95 date (at the horizon if a row has none);
    a curve lying on an earlier one is drawn broken, with other markers, and says so."""
    d = _Data(results, regime)
    thr = d.threshold(threshold)
    rows = [(row, r) for row, r in d.event_rows("t_first", thr.name) if r["p_reached"] is not None and r["n"]]
    end, cut = d.frame_end([r[FRAME] for _, r in rows])
    with _style():
        fig, ax = _figure(8.0, 4.8)
        _title(fig, d, f"date of first reaching {thr.describe}")
        ax.set_xlabel("Year")
        ax.set_ylabel("Cumulative share of trajectories\nthat have reached the threshold")
        ax.set_xlim(d.start - 0.012 * (end - d.start), end + 0.012 * (end - d.start))
        ax.set_ylim(0, 1.02)
        _years(ax.xaxis)
        ax.yaxis.set_major_formatter(_percent())
        ax.grid(color="0.92", lw=0.5)
        ax.set_axisbelow(True)
        found = {row for row, _ in rows}
        missing = [row.display for row, _ in d.event_rows("t_first", thr.name) if row not in found]
        censored, at_start, drawn, dodge = [], [], 0, 0
        tol = max(1e-3, 2 * float(d.meta.get("resolution_years") or 0.0))  # "at the start", within the bins
        width_pt = fig.get_size_inches()[0] * ax.get_position().width * 0.8 * 72  # roughly, after layout
        step = 3.0 / width_pt * (end - d.start)  # bars at the horizon 3 pt apart
        overlaps = _overlapping({row: _cdf_key(r, end - d.start) for row, r in rows}, tol=0.01 * (end - d.start))
        for row, r in rows:
            reached = r["p_reached"]
            c = d.color(row)
            under = overlaps.get(row)
            label = f"{row.display} \u2014 not by {d.horizon:g}: {_pct(1 - reached)}" + (
                f" (overlaps {under.display})" if under else ""
            )
            frontier = row.actor == d.frontier
            ls, marker = _overlap_style(overlaps, row)
            x, _ = _cdf_line(
                ax,
                r,
                d.horizon,
                color=c,
                lw=1.9 if frontier else 1.3,
                ls=ls,
                marker=marker or "o",
                label=label,
                zorder=3.5 if under else (3 if frontier else 2),
                ms=3.2 if under else 2.4,
                mfc="white" if under else c,
            )
            if not cut:  # the censored mass: a bar at the horizon from the share reached up to 100%
                visible = 1.0 - reached >= 0.005
                xb = d.horizon - dodge * step if visible else d.horizon
                if visible:
                    ax.plot([xb, xb], [reached, 1.0], color=c, lw=2.4, alpha=0.6, solid_capstyle="butt")
                    dodge += 1
                ax.plot([xb], [reached], "o", ms=3.8, color=c, mec="white", mew=0.5, zorder=4)
                if 1.0 - reached >= 0.02:
                    censored.append((xb, reached, c))
            if r["p50"] is not None and r["p50"] <= d.start + tol:
                at_start.append(
                    f"{row.display} (\u2265{_pct(max(q for v, q in _cdf_points(r) if v <= d.start + tol))})"
                )
            drawn += 1
        if not drawn:
            _say(ax, f"no t_first rows for threshold {thr.name}")
            return fig
        if not cut:
            ax.axvline(d.horizon, color="0.4", lw=0.7, ls=":", zorder=1)
        if len(censored) <= 4:  # few enough to say at the bars themselves (the legend says it for all)
            y_prev = None
            for xb, reached, c in sorted(censored, key=lambda e: -e[1]):
                y = (reached + 1.0) / 2
                y = y if y_prev is None else min(y, y_prev - 0.055)
                ax.annotate(
                    f"not by {d.horizon:g}: {_pct(1 - reached)}",
                    xy=(xb, (reached + 1.0) / 2),
                    xytext=(xb - 0.015 * (d.horizon - d.start), y),
                    textcoords="data",
                    ha="right",
                    va="center",
                    fontsize=7.5,
                    color=c,
                    bbox=dict(fc="white", ec="none", alpha=0.85, pad=0.5),
                    arrowprops=dict(arrowstyle="-", color=c, lw=0.6, shrinkA=0, shrinkB=1),
                    zorder=5,
                )
                y_prev = y
        if not cut:
            ax.annotate(
                f"horizon {d.horizon:g}",
                xy=(d.horizon, 0.02),
                xytext=(-3, 0),
                textcoords="offset points",
                ha="right",
                va="bottom",
                rotation=90,
                fontsize=7,
                color="0.35",
            )
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7.5, handlelength=1.6)
        notes = [_CDF_NOTE + (" Dates combine every channel (own training and open release)." if d.channels else "")]
        notes.append(
            d.cut_note(end, "any row")
            + " Shares not reached by the horizon are in the legend; the dotted segments run on to them."
            if cut
            else "Bar above a dot: trajectories not reaching the threshold by the horizon (censored)."
        )
        if overlaps:
            notes.append(
                "A broken line with open markers lies on the curve named in its label (within 1% of the axis)."
            )
        if at_start:
            notes.append(
                f"Already at or above the threshold at the start ({d.start:g}), drawn as a vertical line "
                f"there: {', '.join(at_start)}."
            )
        if d.groups:
            notes.append("#k: date at which the k-th largest member of the group reaches it.")
        if missing:
            notes.append(f"No data for: {', '.join(missing)}.")
        _notes(fig, notes)
    return fig


_CDF_NOTE = (
    "Only quantiles are stored: markers are p1, p5, p10, p25, p50, p75, p90, p95, p99, joined by straight "
    "lines (linear interpolation of the CDF); a dotted segment runs from the last stored quantile to "
    "the share reached by the horizon, of which only the end is known."
)


def _cdf_points(r) -> list[tuple[float, float]]:
    """(date, cumulative share) at each stored quantile of an events record."""
    return [(r[k], q) for q, k in ((q, io.quantile_column(q)) for q in io.QUANTILES) if r[k] is not None]


def _cdf_key(r, scale: float) -> np.ndarray:
    """The stored quantiles of an events record (NaN for null) and its share reached times
    ``scale`` (years): curves whose keys are close lie on each other."""
    qs = [np.nan if r[io.quantile_column(q)] is None else r[io.quantile_column(q)] for q in io.QUANTILES]
    return np.array(qs + [r["p_reached"] * scale])


def _cdf_line(ax, r, horizon: float, label: str, color, lw=1.3, ls="-", **kw):
    """Draw one CDF through the stored quantiles of events record ``r``, then a dotted
    segment on to its share reached at ``horizon``; returns the dates and shares drawn."""
    pts = _cdf_points(r)
    x, y = [v for v, _ in pts], [q for _, q in pts]
    kw = {"marker": "o", "ms": 2.4, "zorder": 2, **kw}
    ax.plot(x, y, color=color, lw=lw, ls=ls, label=label, gid="cdf", **kw)
    reached = r["p_reached"] or 0.0
    if pts and reached > y[-1] + 1e-9:  # only the end point is known: dotted
        ax.plot([x[-1], horizon], [y[-1], reached], color=color, lw=lw * 0.7, ls=(0, (1, 1.5)), zorder=kw["zorder"])
    return x, y


def lead_times(results, threshold=None, regime=None):
    """Lead time of every actor and group rank behind the frontier (events ``lead_time``,
    years), one panel per threshold (or only ``threshold``): box p25-p75, whiskers
    p5-p95, median line, share reached beside each row. A quantile not reached by the
    horizon is drawn as an arrow off the panel's right edge."""
    d = _Data(results, regime)
    thresholds = [d.threshold(threshold)] if threshold is not None else list(d.thresholds)
    rows = [row for row in d.rows if row.actor != d.frontier]
    with _style():
        n = max(len(thresholds), 1)
        ncols = 1 if n == 1 else (2 if n in (2, 4) else 3)
        ncols = 4 if n > 9 else ncols
        nrows = math.ceil(n / ncols)
        height = max(1.6, 0.25 * len(rows) + 0.9)
        fig, axes = _figure(
            7.5 if ncols == 1 else 2.9 * ncols + 1.6, height * nrows + 1.4, nrows, ncols, sharey=True, sharex=True
        )
        axes = np.atleast_1d(axes).ravel()
        _title(fig, d, "lead time behind the frontier" + (f", {thresholds[0].describe}" if threshold else ""))
        if not rows or not thresholds or not any(r["metric"] == "lead_time" for r in d.events):
            for ax in axes:
                ax.set_axis_off()
            _say(
                axes[0],
                "no thresholds in the results"
                if not thresholds
                else "no lead-time rows: the scenario has no actor besides the frontier"
                if not rows
                else "no lead-time rows in events.parquet",
            )
            return fig
        ypos = {row: i for i, row in enumerate(rows)}
        vals = [
            r[k]
            for thr in thresholds
            for _, r in d.event_rows("lead_time", thr.name)
            for k in ("p5", "p25", "p50", "p75", "p95")
            if r[k] is not None
        ]
        xmax = max(vals, default=1.0)
        xmin = min(min(vals, default=0.0), 0.0)
        span = max(xmax - xmin, 0.5)
        for ax, thr in zip(axes, thresholds):
            _lead_panel(ax, d, thr, rows, ypos, xmax + 0.08 * span, show_title=threshold is None)
        axes[0].set_xlim(xmin - 0.04 * span, xmax + 0.1 * span)
        from matplotlib.ticker import MaxNLocator

        axes[0].xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
        for ax in axes[n:]:
            ax.set_axis_off()
        axes[0].set_yticks(range(len(rows)), [row.display for row in rows])
        axes[0].set_ylim(len(rows) - 0.5, -0.5)
        for k, ax in enumerate(axes[:n]):
            if k % ncols == 0:
                for label, row in zip(ax.get_yticklabels(), rows):
                    label.set_color(_dark(d, [row]))
            if k + ncols >= n:
                ax.set_xlabel("Lead time (years after the frontier)")
                ax.xaxis.set_tick_params(labelbottom=True)
        notes = [
            "Box: p25-p75; whiskers: p5-p95; line in the box: median; arrow: that quantile is later than the "
            f"horizon ({d.horizon:g}). Number beside each row: share of trajectories in which both the "
            "frontier and that actor reach the threshold by the horizon. Thresholds in effective FLOP unless "
            "marked physical."
        ]
        if d.groups:
            notes.append("#k: the k-th largest member of the group.")
        _notes(fig, notes)
    return fig


def access_and_performance(results, regime=None):
    """Two panels: the cost of reaching each threshold at frontier hardware and
    algorithms (``cost_to_reach:<threshold>``, $; the access effect) beside the
    capability of each fixed access budget (``capability_at_budget:<$>``, effective
    FLOP; the performance effect). Median lines, p5-p95 bands."""
    d = _Data(results, regime)
    with _style():
        fig, (left, right) = _figure(10.0, 4.9, 1, 2)
        _title(fig, d, "access effect and performance effect")
        budgets = d.budgets()
        notes = []
        end, cut = d.frame_end([r[FRAME] for r in d.access if r["n"]])
        # Left: cost to reach each threshold.
        left.set_title("Access effect: cost of a training run reaching each threshold", loc="left", fontsize=9)
        left.set_xlabel("Year")
        left.set_ylabel("Cost to reach the threshold (US$)")
        colors = _sequence(len(d.thresholds))
        ends, lo, hi, missing = [], [], [], []
        for t, c in zip(d.thresholds, colors):
            p = d.path(f"cost_to_reach:{t.name}")
            if p is None or np.all(np.isnan(p["p50"])):
                missing.append(t.name)
                continue
            left.fill_between(
                p["year"], p["p5"], p["p95"], color=c, alpha=0.15 / math.sqrt(max(1, len(colors) / 3)), lw=0
            )
            left.plot(
                p["year"],
                p["p50"],
                color=c,
                lw=1.6,
                ls="-" if t.kind == "effective" else (0, (5, 2)),
                label=t.label,
                gid="median",
            )
            inside = p["year"] <= end + 1e-9
            ends.append((_last(p["year"][inside], p["p50"][inside])[1], t.short, c))
            lo.append(np.nanmin(p["p50"][inside]))
            hi.append(np.nanmax(p["p50"][inside]))
        if ends:
            left.set_xlim(d.start, end)
            _years(left.xaxis)
            # the medians over the time shown, down to two orders below the smallest budget
            levels = [math.log10(b) for b in budgets]
            floor = math.floor(max(min(lo), min(levels) - 2) if levels else min(lo))
            ylo, yhi = floor - 0.4, math.ceil(max([max(hi)] + levels)) + 0.4
            left.set_ylim(ylo, yhi)
            _pow10(left.yaxis, dollars=True)
            for b in budgets:
                if ylo <= math.log10(b) <= yhi:
                    left.axhline(math.log10(b), color="0.3", lw=0.8, ls=(0, (1, 1.5)), zorder=1.5)
                    left.text(
                        0.01,
                        math.log10(b),
                        _usd(b) + " budget",
                        transform=left.get_yaxis_transform(),
                        ha="left",
                        va="bottom",
                        fontsize=7,
                        color="0.2",
                        bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.3),
                        zorder=3,
                    )
            _margin_labels(left, ends, x_from=end)
            left.grid(axis="y", color="0.92", lw=0.5)
            left.set_axisbelow(True)
            physical = any(t.kind == "physical" for t in d.thresholds)
            notes.append(
                "Left (access effect): the cost in $ of the training run that reaches each threshold with the "
                "frontier's hardware price-performance and algorithms"
                + (" (dashed: physical threshold, hardware only)" if physical else "")
                + (
                    "; dotted: the access budgets, each reaching a threshold when its cost falls below it"
                    if budgets
                    else ""
                )
                + "."
            )
            below = [e[1] for e in ends if e[0] < ylo]
            if below:
                notes.append(
                    f"Off the bottom by {end:g} (cheaper than {_usd(10**floor)}, so within every budget shown): "
                    f"{', '.join(below)}."
                )
            if missing:
                notes.append(f"No cost series for: {', '.join(missing)}.")
        else:
            left.set_axis_off()
            _say(left, "no cost_to_reach:<threshold> series in paths.parquet")
        # Right: capability of each fixed budget.
        right.set_title("Performance effect: capability of a fixed budget", loc="left", fontsize=9)
        right.set_xlabel("Year")
        right.set_ylabel("Effective compute (FLOP)")
        ends, lo, hi, missing = [], [], [], []
        for b, c in zip(budgets, _sequence(len(budgets), "plasma", hi=0.72)):
            p = d.path(f"capability_at_budget:{io.usd_name(b)}") or d.path_by_budget(b)
            if p is None or np.all(np.isnan(p["p50"])):
                missing.append(_usd(b))
                continue
            right.fill_between(p["year"], p["p5"], p["p95"], color=c, alpha=0.15, lw=0)
            right.plot(p["year"], p["p50"], color=c, lw=1.6, label=_usd(b), gid="median")
            inside = p["year"] <= end + 1e-9
            ends.append((_last(p["year"][inside], p["p50"][inside])[1], _usd(b), c))
            lo.append(p)
        if ends:
            right.set_xlim(d.start, end)
            _years(right.xaxis)
            effective = [t for t in d.thresholds if t.kind == "effective"]
            (ylo, yhi), shown, off_top = _frame_levels(lo, effective, end)
            if off_top:
                notes.append(_off_top(yhi))
            right.set_ylim(ylo, yhi)
            _pow10(right.yaxis)
            for t in shown:
                right.axhline(t.log10, color="0.45", ls=(0, (1, 1.5)), lw=0.8, zorder=1.5)
                right.text(
                    0.01,
                    t.log10,
                    t.label,
                    transform=right.get_yaxis_transform(),
                    ha="left",
                    va="bottom",
                    fontsize=7,
                    color="0.2",
                    bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.3),
                    zorder=3,
                )
            _margin_labels(right, ends, x_from=d.horizon)
            right.grid(axis="y", color="0.92", lw=0.5)
            right.set_axisbelow(True)
            notes.append(
                "Right (performance effect): effective compute of a training run costing each access budget, "
                "at frontier hardware and algorithms; dotted: effective thresholds."
            )
            hidden = [t.name for t in effective if t not in shown]
            if hidden:
                notes.append(f"Thresholds outside the range shown: {', '.join(hidden)}.")
            if missing:
                notes.append(f"No capability series for: {', '.join(missing)}.")
        elif not budgets:
            right.set_axis_off()
            _say(right, "no access budgets in this scenario\n(add [access] budgets = [...] to show them)")
        else:
            right.set_axis_off()
            _say(right, "no capability_at_budget:<$> series in paths.parquet")
        notes.insert(0, "Lines: median; bands: 90% of trajectories (p5-p95).")
        if cut:
            notes.append(d.cut_note(end, "the access dates (every budget and threshold)"))
        _notes(fig, notes)
    return fig


def regime_comparison(results, threshold=None):
    """The frontier per regime: left, the CDF of its first-reach date of ``threshold``
    (default: as :func:`save_all`) in each regime and pooled; right, its effective
    compute per regime (median and p25-p75 band) with the effective thresholds. Needs
    regimes (events ``regime`` not null)."""
    d = _Data(results, None)
    if not d.regimes:
        raise DataError("the results have no regimes: nothing to compare")
    thr = d.threshold(threshold or d.default_threshold())
    parts = [(name, _Data(d.results, name)) for name in d.regimes]
    colors = {name: PALETTE[i % len(PALETTE)] for i, (name, _) in enumerate(parts)}
    effective = [t for t in d.thresholds if t.kind == "effective"]
    with _style():
        fig, (left, right) = _figure(11.0, 4.9, 1, 2)
        _title(fig, d, f"the frontier in each regime ({len(parts)} regimes)")
        # left: the frontier's date CDF per regime, the pooled one in black
        curves = [(name, part, _frontier_record(part, thr.name)) for name, part in [("pooled", d), *parts]]
        curves = [(name, part, r) for name, part, r in curves if r is not None]
        end, cut = d.frame_end([r[FRAME] for _, _, r in curves])
        overlaps = _overlapping({name: _cdf_key(r, end - d.start) for name, _, r in curves}, 0.01 * (end - d.start))
        for name, part, r in curves:
            ls, marker = _overlap_style(overlaps, name)
            share = f"{part.share:.0%} of trajectories, " if name != "pooled" else ""
            under = f" (overlaps {overlaps[name]})" if name in overlaps else ""
            _cdf_line(
                left,
                r,
                d.horizon,
                label=f"{name} \u2014 {share}not by {d.horizon:g}: {_pct(1 - r['p_reached'])}{under}",
                color=FRONTIER_COLOR if name == "pooled" else colors[name],
                lw=2.2 if name == "pooled" else 1.4,
                ls=(0, (3, 2)) if name == "pooled" else ls,
                marker=marker or "o",
                zorder=3 if name in overlaps else 2,
            )
        left.set_xlim(d.start - 0.012 * (end - d.start), end + 0.012 * (end - d.start))
        left.set_ylim(0, 1.02)
        left.set_title(f"Frontier: date of first reaching {thr.short}", loc="left", fontsize=9)
        left.set_xlabel("Year")
        left.set_ylabel("Cumulative share of trajectories")
        left.yaxis.set_major_formatter(_percent())
        _years(left.xaxis)
        left.grid(color="0.92", lw=0.5)
        left.legend(loc="best", fontsize=7, frameon=False, handlelength=1.8)
        # right: the frontier's effective compute per regime
        series = {name: part.path(f"effective:{part.rows[0].label}") for name, part in parts if part.rows}
        series = {k: p for k, p in series.items() if p is not None and not np.all(np.isnan(p["p50"]))}
        notes = ["Left: " + _CDF_NOTE]
        if cut:
            notes.append("Left: " + d.cut_note(end, "the frontier in any regime"))
        notes.append("Right: line median, band 50% (p25-p75) of the regime's trajectories; dotted: thresholds.")
        if series:
            fend, fcut = d.frame_end([x for _, part in parts for x in part.dates("t_first", effective, part.rows[:1])])
            (ylo, yhi), shown, off_top = _frame_levels(list(series.values()), effective, fend)
            over = _overlapping({k: p["p50"] for k, p in series.items()}, tol=0.05)
            for name, p in series.items():
                right.fill_between(p["year"], p["p25"], p["p75"], color=colors[name], alpha=0.15, lw=0)
                label = name + (f" (overlaps {over[name]})" if name in over else "")
                _median_line(right, p, colors[name], _overlap_style(over, name), label)
            for t in shown:
                right.axhline(t.log10, color="0.45", ls=(0, (1, 1.5)), lw=0.8, zorder=1.5)
            right.set_xlim(d.start, fend)
            right.set_ylim(ylo, yhi)
            _margin_labels(right, [(t.log10, t.label, "0.3") for t in shown], x_from=fend, fontsize=7, leaders=False)
            _pow10(right.yaxis)
            _years(right.xaxis)
            right.set_title("Frontier: effective compute", loc="left", fontsize=9)
            right.set_xlabel("Year")
            right.set_ylabel("Effective compute (FLOP)")
            right.grid(axis="y", color="0.92", lw=0.5)
            right.legend(loc="upper left", fontsize=7, frameon=False)
            if off_top:
                notes.append(_off_top(yhi))
            if fcut:
                notes.append("Right: " + d.cut_note(fend, "the frontier's effective thresholds in any regime"))
        else:
            right.set_axis_off()
            _say(right, "no effective-compute series of the frontier per regime in paths.parquet")
        _notes(fig, notes)
    return fig


def _frontier_record(d: _Data, threshold: str):
    """The frontier's combined-channel t_first record of ``threshold`` (None if absent)."""
    return next((r for row, r in d.event_rows("t_first", threshold) if row.actor == d.frontier and r["n"]), None)


def channel_dates(results, threshold=None, regime=None):
    """For every row that can reach ``threshold`` by more than one channel (events with a
    ``channel``: own training, open release): one panel with the CDF of the date it first
    reaches it (combined, grey) and of the date it does so by each channel first (the
    channel's curve tops out at the share in which that channel came first)."""
    d = _Data(results, regime)
    thr = d.threshold(threshold or d.default_threshold())
    if not d.channels:
        raise DataError("the results have no channels: nothing to split")
    by_channel = d.channel_rows("t_first", thr.name)
    combined = dict(d.event_rows("t_first", thr.name))
    rows = [row for row in d.rows if row in by_channel and row in combined]
    channels = list(dict.fromkeys(c for row in rows for c in by_channel[row]))
    styles = dict(zip(channels, ["-", (0, (4, 1.6)), (0, (1.2, 1.2)), (0, (6, 1.5, 1, 1.5))]))
    end, cut = d.frame_end([combined[row][FRAME] for row in rows])
    with _style():
        n = max(len(rows), 1)
        ncols = min(n, 3)
        nrows = math.ceil(n / ncols)
        fig, axes = _figure(3.3 * ncols + 0.6, 2.3 * nrows + 1.9, nrows, ncols, sharex=True, sharey=True)
        axes = np.atleast_1d(axes).ravel()
        _title(fig, d, f"how each row first reaches {thr.describe}, by channel")
        for ax, row in zip(axes, rows):
            _cdf_line(
                ax, combined[row], d.horizon, label="either channel (first of all)", color="0.6", lw=2.6, ms=0, zorder=1
            )
            shares = []
            for ch in channels:
                r = by_channel[row].get(ch)
                if r is None:
                    continue
                _cdf_line(ax, r, d.horizon, label=ch, color=_dark(d, [row]), lw=1.4, ls=styles[ch], ms=2.2, zorder=2)
                shares.append(f"{ch} {_pct(r['p_reached'])}")
            ax.set_title(row.display, loc="left", fontsize=9, color=_dark(d, [row]))
            ax.text(
                0.98,
                0.04,
                "first by: " + ", ".join(shares),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                color="0.25",
                bbox=dict(fc="white", ec="none", alpha=0.8, pad=0.5),
            )
            ax.grid(color="0.92", lw=0.5)
        for ax in axes[len(rows) :]:
            ax.set_axis_off()
        if not rows:
            _say(axes[0], f"no row reaches {thr.name} by more than one channel")
            return fig
        axes[0].set_xlim(d.start - 0.012 * (end - d.start), end + 0.012 * (end - d.start))
        axes[0].set_ylim(0, 1.02)
        axes[0].yaxis.set_major_formatter(_percent())
        _years(axes[0].xaxis)
        for k, ax in enumerate(axes[: len(rows)]):
            if k % ncols == 0:
                ax.set_ylabel("Share of trajectories")
            if k + ncols >= len(rows):
                ax.set_xlabel("Year")
                ax.xaxis.set_tick_params(labelbottom=True)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper right", ncols=len(labels), fontsize=7.5, frameon=False)
        notes = [
            "Grey: the date a row first reaches the threshold by any channel. Each channel's curve: the date "
            "it reaches it with that channel first, over all trajectories, so it tops out at the share in which "
            'that channel came first ("first by"); the channels\' curves add up to the grey one.',
            _CDF_NOTE,
        ]
        if cut:
            notes.append(d.cut_note(end, "any row (either channel)"))
        _notes(fig, notes)
    return fig


def counts_fan(results, regime=None):
    """Organisations able to reach each threshold by each whole year (counts.parquet),
    one panel per threshold: median line and p25-p75 / p5-p95 bands of the count that
    can reach it (basis ``reached``), the median of those
    that have also made it public (basis ``public``, broken line) where present. y: a log
    scale (0 shown at the bottom) when the counts span more than two orders of magnitude."""
    d = _Data(results, regime)
    if d.counts is None:
        raise DataError("the results have no counts (counts.parquet): nothing to draw")
    bases = list(dict.fromkeys(r["basis"] for r in d.counts))
    tables = {(t.name, b): d.count_series(t.name, b) for t in d.thresholds for b in bases}
    tables = {k: v for k, v in tables.items() if v is not None}
    thresholds = [t for t in d.thresholds if (t.name, "reached") in tables or any(k[0] == t.name for k in tables)]
    bands = _bands([quantile for quantile in io.FAN_QUANTILES])
    saturate = []  # the year each median first comes within 10% of its largest value
    for p in tables.values():
        m = np.nan_to_num(p["p50"])
        saturate.append(float(p["year"][np.argmax(m >= 0.9 * m.max())]) if m.max() > 0 else d.start)
    end, cut = d.frame_end(saturate)
    values = np.concatenate([np.r_[p["p50"], p[bands[0][1]] if bands else p["p50"]] for p in tables.values()] or [[0]])
    positive = values[values > 0]
    log = len(positive) and positive.max() / max(positive.min(), 1.0) > 100
    with _style():
        n = max(len(thresholds), 1)
        ncols = 1 if n == 1 else (2 if n <= 4 else 3)
        nrows = math.ceil(n / ncols)
        fig, axes = _figure(3.2 * ncols + 0.8, 2.4 * nrows + 1.6, nrows, ncols, sharex=True, sharey=True)
        axes = np.atleast_1d(axes).ravel()
        _title(fig, d, "organisations able to reach each threshold, by year")
        colors = _sequence(len(thresholds))
        for ax, t, c in zip(axes, thresholds, colors):
            p = tables.get((t.name, "reached"))
            if p is not None:
                for (lo, hi), alpha in zip(bands, BAND_ALPHA):
                    ax.fill_between(p["year"], p[lo], p[hi], color=c, alpha=alpha * 1.4, lw=0, step=None)
                ax.plot(p["year"], p["p50"], color=c, lw=1.7, label="reached (median)", gid="median")
            for b in bases:
                q = tables.get((t.name, b))
                if b != "reached" and q is not None:
                    ax.plot(
                        q["year"],
                        q["p50"],
                        color=_shade(c, 0.0),
                        lw=1.2,
                        ls=(0, (4, 1.8)),
                        label=f"{b} (median)",
                        gid="median",
                    )
            ax.set_title(t.short, loc="left", fontsize=9)
            ax.grid(axis="y", color="0.92", lw=0.5)
        for ax in axes[n:]:
            ax.set_axis_off()
        ax0 = axes[0]
        ax0.set_xlim(d.start, end)
        if log:
            ax0.set_yscale("symlog", linthresh=1.0)
            ax0.set_ylim(0, positive.max() * 2)
        else:
            ax0.set_ylim(0, max(values.max(), 1) * 1.05)
        _years(ax0.xaxis)
        for k, ax in enumerate(axes[:n]):
            if k % ncols == 0:
                ax.set_ylabel("Organisations")
            if k + ncols >= n:
                ax.set_xlabel("Year")
                ax.xaxis.set_tick_params(labelbottom=True)
        handles, labels = ax0.get_legend_handles_labels()
        if handles:
            ax0.legend(handles, labels, loc="upper left", fontsize=7, frameon=False)
        notes = [
            "Count of organisations able to train a model at the threshold by each year: line median, dark band "
            "50% (p25-p75), light band 90% (p5-p95) of trajectories"
            + (
                "; broken line: the median count of those that have also made it public (t_public by then)."
                if len(bases) > 1
                else "."
            )
        ]
        if log:
            notes.append("y: log scale above 1 (linear from 0 to 1, so a count of 0 sits at the bottom).")
        if cut:
            notes.append(
                f"Time axis ends at {end:g}, a little after every median count comes within 10% of its largest "
                f"(horizon {d.horizon:g})."
            )
        _notes(fig, notes)
    return fig


def _bands(quantiles) -> list[tuple[str, str]]:
    """(low, high) column pairs of the symmetric bands in ``quantiles``, widest first."""
    qs = sorted(q for q in quantiles if q < 0.5 and any(math.isclose(1 - q, h) for h in quantiles))
    return [(io.quantile_column(q), io.quantile_column(1 - q)) for q in qs]


def tornado(table, output: str = "t_first", actor: str | None = None, threshold: str | None = None, top: int = 12):
    """Tornado chart of a sensitivity table (``mcengine sensitivity``) for one output:
    ``t_first`` of the frontier, ``lead_time`` of an actor or group rank (``labs #5``),
    ``diffusion_date`` of a budget (``$1e+06``), at ``threshold`` (see
    :func:`mcengine.sensitivity.choose` for the defaults and the one-line refusals). The
    inputs by first-order variance share, signed by their rank correlation with the output
    (right: a larger input makes the date later), at most ``top`` of them; inputs whose
    effect is within Monte Carlo noise of none are left out, and the note says how many."""
    import pyarrow.parquet as pq

    from . import sensitivity as sens

    if not hasattr(table, "to_pylist"):
        table = pq.read_table(Path(table) / "sensitivity.parquet" if Path(table).is_dir() else table)
    records = table.to_pylist()
    if not records:
        raise DataError("the sensitivity table has no rows")
    key = sens.choose([(r["output"], r["actor"], r["rank"], r["threshold"]) for r in records], output, actor, threshold)
    output, label = key[0], sens.label(key[1], key[2])
    rows = [r for r in records if (r["output"], r["actor"], r["rank"], r["threshold"]) == key]
    bins = int(io.read_metadata(table).get("bins") or 20)
    kept = [r for r in rows if not sens.no_effect(r["variance_share"], r["spearman"], r["n"], bins)]
    dropped = len(rows) - len(kept)
    kept = sorted(kept, key=lambda r: r["variance_share"])[-top:]
    with _style():
        fig, ax = _figure(7.5, 0.35 * max(len(kept), 1) + 2.0)
        for i, r in enumerate(kept):
            sign = -1.0 if (r["spearman"] or 0.0) < 0 else 1.0
            ax.barh(i, sign * max(r["variance_share"], 0.0), color="#b2182b" if sign > 0 else "#2166ac")
            rho = "" if r["spearman"] is None else f"  rho {r['spearman']:+.2f}"
            ax.text(
                sign * max(r["variance_share"], 0.0),
                i,
                f" {r['variance_share']:.{1 if r['variance_share'] < 0.1 else 0}%}{rho} ",
                va="center",
                ha="left" if sign > 0 else "right",
                fontsize=7.5,
            )
        ax.set_yticks(range(len(kept)), [r["input"] for r in kept])
        ax.axvline(0, color="0.3", lw=0.8)
        lim = max([abs(r["variance_share"]) for r in kept] + [0.05]) * 1.5
        ax.set_xlim(-lim, lim)
        ax.set_xlabel("first-order variance share of the output's rank (sign: of the rank correlation)")
        if not kept:
            _say(ax, "no input has an effect beyond Monte Carlo noise")
        n, reached = rows[0]["n"], rows[0]["p_reached"]
        fig.suptitle(
            f"{records[0]['scenario']}: what drives {output} of {label} at {key[3]}"
            + f"\n{n:,} trajectories; reached by the horizon in {reached:.0%}",
            x=0.01,
            ha="left",
            fontsize=10,
        )
        notes = []
        if dropped:
            notes.append(
                f"{dropped} of {len(rows)} inputs left out: no effect beyond Monte Carlo noise (variance share "
                f"under {3 * math.sqrt(2 * (bins - 1)) / (n - 1):.2%} and |rho| under {3 / math.sqrt(n - 1):.3f})."
            )
        if len(rows) - dropped > len(kept):
            notes.append(f"Showing the {len(kept)} largest of {len(rows) - dropped} inputs with an effect.")
        if notes:
            _notes(fig, notes)
    return fig


def save_all(results, out, threshold=None) -> list[Path]:
    """Write every figure that applies to ``results`` beside ``out`` (``.png``, ``.svg``
    or ``.pdf``) as ``<stem>-<name>`` with its extension, and return their paths: always
    ``-fan``, ``-cdf``, ``-lead`` and ``-access``; ``-counts`` when the results have
    counts, ``-regimes`` when they have regimes, ``-channels`` when they have channels
    (see :func:`drawn_figures`). A figure of one of those kinds left beside ``out`` by
    earlier results that do not have it is removed, so what is there is what was drawn.
    ``threshold`` picks the threshold of the CDF, lead-time, regime and channel figures
    (default: the first threshold the frontier reaches, at the median, at least a year
    after the start; the lead-time chart shows every threshold)."""
    out = Path(out)
    ext = _check_extension(out)
    d = _Data(results, None)
    thr = d.threshold(threshold).name if threshold is not None else d.default_threshold()
    figures = {
        "fan": lambda: fan_chart(d.results),
        "cdf": lambda: threshold_cdf(d.results, thr),
        "lead": lambda: lead_times(d.results, threshold),
        "access": lambda: access_and_performance(d.results),
        "counts": lambda: counts_fan(d.results),
        "regimes": lambda: regime_comparison(d.results, thr),
        "channels": lambda: channel_dates(d.results, thr),
    }
    names = drawn_figures(d)
    drawn = {name: figures[name]() for name in names}  # all drawn before any is written
    meta = {"Creator": "mcengine"} if ext != ".png" else {"Software": "mcengine"}
    paths = figure_paths(out, names)
    stale = [p for p in figure_paths(out) if p not in paths and p.is_file() and not p.is_symlink()]
    created = io.make_parents(out.parent)
    try:
        with io.atomic_files(*paths, suffix=ext) as tmps:
            for name, tmp in zip(names, tmps):
                with _style():
                    drawn[name].savefig(tmp, metadata=meta, dpi=200)
        for p in stale:
            p.unlink(missing_ok=True)
    except BaseException as e:
        io.remove_empty(created)
        if isinstance(e, OSError):
            raise OutputError(f"{out}: cannot write the figures ({e.strerror or e}); choose another --out") from None
        raise
    return paths


def drawn_figures(results) -> list[str]:
    """The names of the figures :func:`save_all` draws for ``results``, in order: the four
    of :data:`FIGURES`, then those of :data:`OPTIONAL_FIGURES` whose data are there."""
    d = results if isinstance(results, _Data) else _Data(results, None)
    have = {"counts": bool(d.counts), "regimes": bool(d.regimes), "channels": d.channels}
    return [*FIGURES, *(name for name in OPTIONAL_FIGURES if have[name])]


def figure_paths(out, names=None) -> list[Path]:
    """The files of figures ``names`` beside ``out`` (default: every figure
    :func:`save_all` can write, optional ones included): ``<stem>-fan<ext>``, ..."""
    out = Path(out)
    names = [*FIGURES, *OPTIONAL_FIGURES] if names is None else names
    return [out.with_name(f"{out.stem}-{name}{out.suffix}") for name in names]


def check_figures(out, overwrite: bool = False) -> None:
    """Fail (before drawing) if the figures of ``out`` could not or must not be written:
    an existing figure file is replaced only inside a folder mcengine wrote (a results
    folder) or with ``overwrite``, and never if it is not a plain file."""
    out = Path(out)
    _check_extension(out)
    replace = overwrite or io.written_by_mcengine(out.parent)
    for path in figure_paths(out):
        io.check_output_file(path, replace)


def plot_command(folder, out=None, threshold=None, overwrite=False) -> list[Path]:
    """``mcengine plot DIR [--out FILE.png|.svg|.pdf] [--threshold NAME]``: write the
    figures of results folder ``folder`` (default ``DIR/plots.png`` -> ``DIR/plots-fan.png``
    ...; see :func:`save_all`) and return their paths. Raises a UserError (one line) for
    an unsupported extension, an unknown threshold, a folder that is not a results folder,
    or figure files that exist outside a results folder (unless ``overwrite``)."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder / "plots.png"
    _check_extension(out)
    d = _Data(folder, None)
    if threshold is not None:
        d.threshold(threshold)
    check_figures(out, overwrite)
    return save_all(d.results, out, threshold)


# ---------------------------------------------------------------------------------------
# Reading the tables
# ---------------------------------------------------------------------------------------


class _Threshold:
    def __init__(self, name: str, flop: float, kind: str):
        self.name, self.flop, self.kind = name, flop, kind
        self.log10 = math.log10(flop) if flop and flop > 0 else float("nan")

    @property
    def label(self) -> str:
        """The name, with its FLOP where the name does not say it (``gpt4 (2.1e25)``)."""
        try:
            same = math.isclose(float(self.name), self.flop, rel_tol=1e-9)
        except ValueError:
            same = False
        return self.name if same or _num(self.flop) in self.name else f"{self.name} ({_num(self.flop)})"

    @property
    def short(self) -> str:
        """The label, marked if physical: ``reporting (physical, 1e26)``."""
        extra = ["physical"] if self.kind == "physical" else []
        if self.label != self.name:
            extra.append(_num(self.flop))
        return self.name + (f" ({', '.join(extra)})" if extra else "")

    @property
    def describe(self) -> str:
        """For a title: ``1e28 effective FLOP``, ``gpt4 (2.1e25 effective FLOP)``."""
        if self.label == self.name and _num(self.flop) == self.name:
            return f"{self.name} {self.kind} FLOP"
        if self.label == self.name:
            return f"{self.name} ({self.kind} FLOP)"
        return f"{self.name} ({_num(self.flop)} {self.kind} FLOP)"


class _Data:
    """The rows of one regime (None: all trajectories) of a results object."""

    def __init__(self, results, regime):
        if isinstance(results, _Data):
            results = results.results
        self.results = results = _load(results)
        self.meta = results.metadata or {}
        events = results.events.to_pylist()
        regimes = list(dict.fromkeys(r["regime"] for r in events if r["regime"] is not None))
        self.regimes = regimes
        if regime is not None and regime not in regimes:
            valid = ", ".join(regimes) if regimes else "none: this scenario has no regimes"
            raise ArgumentError(f"unknown regime {regime!r}; valid regimes: {valid}")
        self.regime = regime
        self.events = [r for r in events if r["regime"] == regime]
        self.channels = any(r.get("channel") is not None for r in events)
        self.access = [r for r in results.access.to_pylist() if r["regime"] == regime]
        counts = getattr(results, "counts", None)
        self.counts = None if counts is None else [r for r in counts.to_pylist() if r["regime"] == regime]
        paths = [r for r in results.paths.to_pylist() if r["regime"] == regime]
        self.series: dict[str, list[dict]] = {}
        for r in paths:
            self.series.setdefault(r["series"], []).append(r)
        self.thresholds = [
            _Threshold(*k)
            for k in dict.fromkeys((r["threshold"], r["threshold_flop"], r["threshold_kind"]) for r in events)
        ]
        self.start = float(self.meta.get("start", min((r["year"] for r in paths), default=0.0)))
        self.horizon = float(self.meta.get("horizon", max((r["year"] for r in paths), default=self.start + 1)))
        self.frontier = "frontier"
        self.rows = (
            results.rows()
            if hasattr(results, "rows")
            else [Row(*k) for k in dict.fromkeys((r["actor"], r["rank"], r["row_kind"]) for r in events)]
        )
        self.groups = {row.actor for row in self.rows if row.is_group}
        if any(row.actor == "frontier" for row in self.rows):
            self.rows.sort(key=lambda row: row.actor != "frontier")
        elif self.rows:
            self.frontier = self.rows[0].actor
        self._colors = self._assign_colors()

    # --- labels and colours
    def _assign_colors(self) -> dict:
        colors, i = {}, 0
        for actor in dict.fromkeys(row.actor for row in self.rows):
            if actor == self.frontier:
                base = FRONTIER_COLOR
            else:
                base = PALETTE[i % len(PALETTE)]
                i += 1
            ranks = [row for row in self.rows if row.actor == actor]
            for j, row in enumerate(ranks):
                colors[row] = _shade(base, 0.62 * j / max(len(ranks) - 1, 1)) if len(ranks) > 1 else base
        return colors

    def color(self, row: Row):
        return self._colors.get(row, "0.5")

    # --- lookups
    def threshold(self, name) -> _Threshold:
        for t in self.thresholds:
            if t.name == name:
                return t
        valid = ", ".join(t.name for t in self.thresholds) or "none"
        raise ArgumentError(f"unknown threshold {name!r}; valid thresholds: {valid}")

    def frontier_median(self, threshold: str) -> float | None:
        """The frontier's median first-reach date of ``threshold`` (None: not by the horizon)."""
        return next((r["p50"] for row, r in self.event_rows("t_first", threshold) if row.actor == self.frontier), None)

    def default_threshold(self) -> str:
        """The first threshold the frontier reaches (median) at least a year after the
        start; else the first it reaches at all; else the first."""
        med = {t.name: self.frontier_median(t.name) for t in self.thresholds}
        for t in self.thresholds:
            if med[t.name] is not None and med[t.name] >= self.start + 1:
                return t.name
        for t in self.thresholds:
            if med[t.name] is not None:
                return t.name
        if not self.thresholds:
            raise DataError("the results have no thresholds")
        return self.thresholds[0].name

    def event_rows(self, metric: str, threshold: str):
        """(row, record) for each row with a ``metric`` record (combined channel)."""
        found = {
            (r["actor"], r["rank"]): r
            for r in self.events
            if r["metric"] == metric and r["threshold"] == threshold and r.get("channel") is None
        }
        return [(row, found[(row.actor, row.rank)]) for row in self.rows if (row.actor, row.rank) in found]

    def dates(self, metric: str, thresholds, rows=None) -> list:
        """The p95 date (years) of ``metric`` for each of ``rows`` (default: all) and each
        of ``thresholds`` that the frontier reaches in the median; None where more than 5%
        of trajectories have no date by the horizon."""
        keep = {row.label for row in rows} if rows is not None else None
        out = []
        for t in thresholds:
            if self.frontier_median(t.name) is None:
                continue
            for row, r in self.event_rows(metric, t.name):
                if (keep is None or row.label in keep) and r["n"]:
                    out.append(r[FRAME])
        return out

    def frame_end(self, dates) -> tuple[float, bool]:
        """The end of a time axis framing ``dates`` (years; None: after the horizon): a
        little beyond the latest, in whole years, capped at the horizon; and whether it
        ends before the horizon."""
        return _frame_end(dates, self.start, self.horizon)

    def cut_note(self, end: float, what: str) -> str:
        """Why a time axis ends at ``end``, before the horizon."""
        return f"Time axis ends at {end:g}, a little after the latest p95 date of {what} (horizon {self.horizon:g})."

    @property
    def share(self) -> float:
        """The share of all trajectories in these rows (1 without a regime)."""
        n = next((r["n"] for r in self.events if r["n"] is not None), None)
        total = self.meta.get("trajectories")
        return n / total if n is not None and total else 1.0

    def channel_rows(self, metric: str, threshold: str) -> dict:
        """{row: {channel: record}} of the per-channel ``metric`` records of ``threshold``."""
        rows = {(row.actor, row.rank): row for row in self.rows}
        out: dict = {}
        for r in self.events:
            if r["metric"] == metric and r["threshold"] == threshold and r.get("channel") is not None and r["n"]:
                out.setdefault(rows[(r["actor"], r["rank"])], {})[r["channel"]] = r
        return out

    def count_series(self, threshold: str, basis: str):
        """{year, p5, ..., p95} arrays of one threshold's counts (None if absent)."""
        recs = sorted(
            (r for r in self.counts or [] if r["threshold"] == threshold and r["basis"] == basis),
            key=lambda r: r["year"],
        )
        if not recs:
            return None
        keys = ["year", *map(io.quantile_column, io.FAN_QUANTILES)]
        return {k: np.array([np.nan if r[k] is None else r[k] for r in recs], float) for k in keys}

    def path(self, series: str):
        """{year, p5, p25, p50, p75, p95} arrays of one fan-chart series, NaN for null."""
        recs = self.series.get(series)
        if not recs:
            return None
        recs = sorted(recs, key=lambda r: r["year"])
        return {
            k: np.array([np.nan if r[k] is None else r[k] for r in recs], float)
            for k in ("year", "p5", "p25", "p50", "p75", "p95")
        }

    def path_by_budget(self, budget: float):
        for name in self.series:
            if name.startswith("capability_at_budget:"):
                try:
                    if math.isclose(float(name.split(":", 1)[1]), budget, rel_tol=1e-6):
                        return self.path(name)
                except ValueError:
                    pass
        return None

    def budgets(self) -> list[float]:
        found = {r["budget_usd"] for r in self.access}
        for name in self.series:
            if name.startswith("capability_at_budget:"):
                with contextlib.suppress(ValueError):
                    found.add(float(name.split(":", 1)[1]))
        return sorted(found)


def _load(results):
    if isinstance(results, (str, Path)):
        return read_results(results)
    for k in ("events", "access", "paths", "metadata"):
        if not hasattr(results, k):
            raise TypeError(f"expected mcengine.Results or a results folder path, got {type(results).__name__}")
    return results


# ---------------------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------------------


def _frame_end(dates, start: float, horizon: float) -> tuple[float, bool]:
    """See :meth:`_Data.frame_end`: (end year, whether it is before ``horizon``)."""
    if not dates or any(x is None or math.isnan(x) for x in dates):
        return horizon, False
    latest = max(dates)
    end = max(math.ceil(latest + max(0.5, 0.08 * (latest - start))), start + 1)
    if end >= horizon - 0.05 * (horizon - start):
        return horizon, False
    return float(end), True


def _frame_levels(paths, thresholds, end: float, pad: float = 0.4):
    """y limits (log10, whole numbers) framing the medians of ``paths`` up to year ``end``
    and those of ``thresholds`` (log10 attribute) that the p5-p95 bands reach there, at
    most a margin above the highest of them; those thresholds; and whether a median runs
    off the top."""
    inside = [p["year"] <= end + 1e-9 for p in paths]

    def over(k):
        v = np.concatenate([p[k][m] for p, m in zip(paths, inside)] or [np.array([np.nan])])
        return v[~np.isnan(v)]

    med, low, high = over("p50"), over("p5"), over("p95")
    if not len(med):
        med = np.concatenate([low, high]) if len(low) or len(high) else np.array([0.0, 1.0])
    lo_band = low.min() if len(low) else med.min()
    hi_band = high.max() if len(high) else med.max()
    shown = [t for t in thresholds if lo_band <= t.log10 <= hi_band]
    lo = min([float(med.min())] + [t.log10 for t in shown])
    if shown:  # above the highest threshold shown is past the answers: a margin, not the whole path
        top = max(t.log10 for t in shown)
        hi = min(float(med.max()), top + max(1.0, 0.25 * (top - lo)))
        hi = max(hi, top)
    else:
        hi = float(med.max())
    limits = (math.floor(lo - pad), math.ceil(hi + pad))
    return limits, shown, bool(med.max() > limits[1])


def _off_top(top: float) -> str:
    return f"Paths leave the top of the panel at {_pow10_text(top)}, past the highest threshold shown."


def _overlapping(curves: dict, tol: float) -> dict:
    """{key: earlier key} for each curve (equal-length arrays, in drawing order) that lies
    within ``tol`` of an earlier one wherever either is defined (and nowhere else)."""
    out: dict = {}
    keys = list(curves)
    for i, k in enumerate(keys):
        a = np.asarray(curves[k], float)
        for j in keys[:i]:
            b = np.asarray(curves[j], float)
            if j in out or a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
                continue
            ok = ~np.isnan(a)
            if ok.any() and np.max(np.abs(a[ok] - b[ok])) <= tol:
                out[k] = j
                break
    return out


OVERLAP_STYLES = (((0, (4, 2)), "s"), ((0, (1.2, 1.2)), "^"), ((0, (6, 1.5, 1, 1.5)), "D"), ((0, (2, 2)), "v"))


def _median_line(ax, p: dict, color, style: tuple, label: str, **kw) -> None:
    """A series' median path ``p`` (``year``, ``p50``) in ``style`` (line style, marker: see
    :func:`_overlap_style`), tagged ``median``."""
    ls, marker = style
    ax.plot(
        p["year"],
        p["p50"],
        color=color,
        lw=1.6,
        ls=ls,
        marker=marker,
        markevery=0.1,
        ms=3.5,
        mfc="white",
        label=label,
        gid="median",
        **kw,
    )


def _overlap_style(overlaps: dict, key):
    """(line style, marker) of ``key``: solid and unmarked unless it overlaps another curve."""
    if key not in overlaps:
        return "-", None
    return OVERLAP_STYLES[list(overlaps).index(key) % len(OVERLAP_STYLES)]


def _lead_panel(ax, d: _Data, thr: _Threshold, rows, ypos, edge, show_title=True):
    recs = dict(d.event_rows("lead_time", thr.name))
    if show_title:
        ax.set_title(thr.short, loc="left", fontsize=9)
    ax.axvline(0, color="0.55", lw=0.7, zorder=0)
    span = max(edge, 1.0)  # edge: where the arrow of a quantile beyond the horizon ends
    share = ax.get_yaxis_transform()  # x: axes fraction, y: data
    ax.text(1.02, -0.5, "reached", transform=share, ha="left", va="bottom", fontsize=6.5, color="0.35", clip_on=False)
    drawn = 0
    for row in rows:
        y = ypos[row]
        r = recs.get(row)
        c = d.color(row)
        dark = _dark(d, [row])
        if r is None or r["p_reached"] is None or not r["n"]:
            ax.text(0.02, y, "no data", transform=share, va="center", ha="left", **NOTE)
            continue
        ax.text(
            1.02,
            y,
            _pct(r["p_reached"]),
            transform=share,
            va="center",
            ha="left",
            fontsize=7,
            color=dark,
            clip_on=False,
        )
        q = {k: r[k] for k in ("p5", "p25", "p50", "p75", "p95")}
        if q["p5"] is None:
            ax.text(
                0.02,
                y,
                f"both reach it by {d.horizon:g} in under 5% of trajectories",
                transform=share,
                va="center",
                ha="left",
                **NOTE,
            )
            continue
        hi_w = q["p95"] if q["p95"] is not None else edge
        ax.plot([q["p5"], hi_w], [y, y], color=dark, lw=1.0, solid_capstyle="butt", gid="whisker")
        ax.plot([q["p5"]] * 2, [y - 0.17, y + 0.17], color=dark, lw=1.0)
        if q["p95"] is None:
            ax.annotate(
                "",
                xy=(edge, y),
                xytext=(edge - 0.03 * span, y),
                arrowprops=dict(arrowstyle="-|>", color=dark, lw=1.0, mutation_scale=7, shrinkA=0, shrinkB=0),
            )
        else:
            ax.plot([q["p95"]] * 2, [y - 0.17, y + 0.17], color=dark, lw=1.0)
        if q["p25"] is not None:
            hi_b = q["p75"] if q["p75"] is not None else edge
            ax.add_patch(_box(q["p25"], hi_b, y, c, dark))
        if q["p50"] is not None:
            ax.plot(
                [q["p50"]] * 2, [y - 0.32, y + 0.32], color=dark, lw=1.8, solid_capstyle="butt", gid="median", zorder=3
            )
        drawn += 1
    ax.grid(axis="x", color="0.92", lw=0.5)
    ax.set_axisbelow(True)
    if not drawn:
        ax.text(0.5, 0.5, "no lead times to show", transform=ax.transAxes, ha="center", va="center", **NOTE)


def _box(x0, x1, y, color, edge):
    from matplotlib.patches import Rectangle

    return Rectangle((x0, y - 0.3), x1 - x0, 0.6, fc=_shade(color, 0.5), ec=edge, lw=0.9, zorder=2)


def _figure(w, h, nrows=1, ncols=1, **kw):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=True, **kw)
    return fig, axes


class _style:
    """matplotlib rc settings while figures are made and saved (restored after)."""

    def __enter__(self):
        import matplotlib

        self._ctx = matplotlib.rc_context(RC)
        self._ctx.__enter__()

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _pow10(axis, dollars=False):
    """Ticks at whole log10 values, labelled 10^k (or $10^k)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

    lo, hi = axis.get_view_interval()
    axis.set_major_locator(MaxNLocator(nbins=8, integer=True, steps=[1, 2, 5, 10]))
    if hi - lo <= 40:
        axis.set_minor_locator(MultipleLocator(1))
    axis.set_major_formatter(FuncFormatter(lambda v, _: _pow10_text(v, dollars)))


def _pow10_text(v, dollars=False) -> str:
    """log10 value -> '$10^{k}$' (mathtext), with a dollar sign if ``dollars``."""
    return (r"\$" if dollars else "") + f"$10^{{{int(round(v))}}}$"


def _percent():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:.0%}")


def _margin_labels(ax, items, x_from, fontsize=7.5, leaders=True):
    """Label line ends in the right margin at their heights, moved apart just enough not
    to overlap (overlapping labels are centred on their lines), each joined to its line
    end by a thin leader."""
    lo, hi = ax.get_ylim()
    items = [i for i in items if min(lo, hi) <= i[0] <= max(lo, hi)]  # labels only for what is in view
    if not items:
        return
    h_in = ax.figure.get_size_inches()[1] * ax.get_position().height * 0.92  # roughly, after layout
    gap = (fontsize * 1.3 / 72) / h_in  # one text line, in axes fraction
    order = sorted(range(len(items)), key=lambda i: (items[i][0], -i))
    want = [min(max((items[i][0] - lo) / (hi - lo), 0.0), 1.0) for i in order]
    # clusters of labels that would overlap, each centred on the mean of its wishes
    clusters = [[k] for k in range(len(want))]

    def centre(c):
        return sum(want[k] for k in c) / len(c)

    def bottom(c):
        return min(max(centre(c) - gap * (len(c) - 1) / 2, 0.0), 1.0 - gap * (len(c) - 1))

    merged = True
    while merged:
        merged = False
        for j in range(len(clusters) - 1):
            a, b = clusters[j], clusters[j + 1]
            if bottom(a) + gap * len(a) > bottom(b) + 1e-12:
                clusters[j : j + 2] = [a + b]
                merged = True
                break
    pos = {}
    for c in clusters:
        y0 = bottom(c)
        for n, k in enumerate(c):
            pos[k] = y0 + n * gap
    for k, i in enumerate(order):
        y, text, color = items[i]
        ax.annotate(
            text,
            xy=(x_from, y),
            xycoords="data",
            xytext=(1.03, pos[k]),
            textcoords="axes fraction",
            va="center",
            ha="left",
            fontsize=fontsize,
            color=color,
            annotation_clip=False,
            arrowprops=dict(arrowstyle="-", color=color, lw=0.5, alpha=0.8, shrinkA=0, shrinkB=0, relpos=(0, 0.5))
            if leaders
            else None,
        )


def _title(fig, d: _Data, what: str):
    m = d.meta
    n = m.get("trajectories")
    if d.regime:
        k = next((r["n"] for r in d.events if r["n"] is not None), None)
        n = f"{k:,} of {n:,}" if k is not None and n else n
    elif n:
        n = f"{n:,}"
    details = ", ".join(
        p
        for p in (
            f"{n} trajectories" if n else "",
            f"seed {m['seed']}" if "seed" in m else "",
            f"regime {d.regime}" if d.regime else ("all regimes pooled" if d.regimes else ""),
        )
        if p
    )
    fig.suptitle(
        f"{m.get('scenario', 'results')}: {what}" + (f"\n{details}" if details else ""),
        x=0.01,
        ha="left",
        multialignment="left",
        fontsize=10,
        linespacing=1.4,
    )


def _notes(fig, lines):
    """Notes at the bottom of the figure, wrapped to its width (inside the layout)."""
    width = max(40, int(fig.get_size_inches()[0] * 15.5))
    text = "\n".join(textwrap.fill(line, width) for line in lines)
    fig.supxlabel(text, x=0.01, ha="left", multialignment="left", fontsize=7.5, color="0.3", linespacing=1.35)


def _key(ax):
    """An empty panel used as the key to the bands."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.set_axis_off()
    handles = [
        Line2D([], [], color="0.2", lw=1.6, label="median"),
        Patch(color="0.2", alpha=BAND_ALPHA[1] + BAND_ALPHA[0] * 1.3, lw=0, label="50% of trajectories (p25-p75)"),
        Patch(color="0.2", alpha=BAND_ALPHA[0] * 1.3, lw=0, label="90% of trajectories (p5-p95)"),
        Line2D([], [], color=FRONTIER_COLOR, lw=0.9, ls=(0, (3, 2)), label="frontier median (reference)"),
        Line2D([], [], color="0.45", lw=0.8, ls=(0, (1, 1.5)), label="effective threshold"),
    ]
    ax.legend(
        handles=handles, loc="center left", frameon=False, fontsize=7.5, title="Key", title_fontsize=8, alignment="left"
    )


def _years(axis):
    from matplotlib.ticker import MaxNLocator, MultipleLocator

    axis.set_major_locator(MaxNLocator(nbins=6, integer=True, steps=[1, 2, 5, 10]))
    axis.set_minor_locator(MultipleLocator(1))


def _dark(d: _Data, rows):
    """A readable (not too light) colour for text about ``rows``."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(d.color(rows[0]))
    k = max(0.0, (0.299 * r + 0.587 * g + 0.114 * b) - 0.55)
    return (r * (1 - k), g * (1 - k), b * (1 - k)) if k else (r, g, b)


def _say(ax, message):
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.3", wrap=True)


def _last(x, y):
    ok = ~np.isnan(y)
    return (x[ok][-1], y[ok][-1]) if ok.any() else (x[-1], np.nan)


def _shade(color, f):
    """``color`` mixed with white, ``f`` in 0 (same) .. 1 (white)."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return (r + (1 - r) * f, g + (1 - g) * f, b + (1 - b) * f)


def _sequence(n, cmap="viridis", lo=0.0, hi=0.78):
    """``n`` colours along ``cmap``, short of its lightest end (readable on white)."""
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    return [cm(lo + (hi - lo) * i / max(n - 1, 1)) for i in range(n)]


def _pct(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = min(max(x, 0.0), 1.0)
    if 0 < x < 0.001:
        return "<0.1%"
    if 0.999 < x < 1:
        return ">99.9%"
    return f"{x:.1%}"


def _num(x: float) -> str:
    """1e28 -> '1e28', 2.1e25 -> '2.1e25'."""
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e")


def _usd(x: float) -> str:
    """A $ amount for a label: \\$100k, \\$10M, \\$1B (escaped for matplotlib)."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return rf"\${x / scale:.3g}{unit}"
    return rf"\${x:.3g}"


def _check_extension(out: Path) -> str:
    ext = out.suffix.lower()
    if ext not in EXTENSIONS:
        raise OutputError(
            f"{out}: unsupported plot file type {repr(out.suffix) if out.suffix else '(none)'}; "
            f"use {', '.join(EXTENSIONS)}"
        )
    return ext
