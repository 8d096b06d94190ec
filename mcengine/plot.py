"""Figures of a results folder, ready for a paper: fan chart of effective compute, CDF of
first-reach dates, lead times, and the access / performance effects.

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

import math
from pathlib import Path

import numpy as np

EXTENSIONS = (".png", ".svg", ".pdf")
FIGURES = ("fan", "cdf", "lead", "access")
QUANTILES = ((0.01, "p1"), (0.05, "p5"), (0.10, "p10"), (0.25, "p25"), (0.50, "p50"), (0.75, "p75"),
             (0.90, "p90"), (0.95, "p95"), (0.99, "p99"))
BAND_ALPHA = (0.10, 0.22)  # p5-p95, p25-p75
NOTE = dict(fontsize=7.5, color="0.35")
FRONTIER_COLOR = "black"
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f"]
RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8.5,
      "ytick.labelsize": 8.5, "axes.spines.top": False, "axes.spines.right": False, "svg.fonttype": "none",
      "pdf.fonttype": 42, "figure.dpi": 100, "savefig.dpi": 200}


# ---------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------

def fan_chart(results, regime=None):
    """Effective compute of every actor and group rank over time (``effective:<row>``
    series): median line, p25-p75 and p5-p95 bands, effective thresholds as labelled
    horizontal lines. y: effective FLOP (powers of ten); x: calendar year."""
    d = _Data(results, regime)
    with _style():
        fig, ax = _figure(7.5, 5.0)
        ax.set_title(d.title("effective compute per actor"), loc="left")
        ax.set_xlabel("Year")
        ax.set_ylabel("Effective training compute (FLOP, log scale)")
        missing, ends, lo, hi = [], [], [], []
        for row in d.rows:
            p = d.path(f"effective:{row.label}")
            if p is None or np.all(np.isnan(p["p50"])):
                missing.append(row.display)
                continue
            c = d.color(row)
            ax.fill_between(p["year"], p["p5"], p["p95"], color=c, alpha=BAND_ALPHA[0], lw=0)
            ax.fill_between(p["year"], p["p25"], p["p75"], color=c, alpha=BAND_ALPHA[1], lw=0)
            ax.plot(p["year"], p["p50"], color=c, lw=1.8 if row.actor == d.frontier else 1.4,
                    label=row.display, gid="median")
            ends.append((_last(p["year"], p["p50"]), row.display, c))
            lo.append(np.nanmin(p["p5"]))
            hi.append(np.nanmax(p["p95"]))
        if not ends:
            _say(ax, "no effective-compute series (effective:<row>) in paths.parquet")
            return fig
        ax.set_xlim(d.start, d.horizon)
        effective = [t for t in d.thresholds if t.kind == "effective"]
        ymin, ymax = min(lo), max(hi)
        shown = [t for t in effective if ymin - 1 <= t.log10 <= ymax + 1]
        if shown:
            ymin, ymax = min(ymin, *(t.log10 for t in shown)), max(ymax, *(t.log10 for t in shown))
        ax.set_ylim(math.floor(ymin - 0.3), math.ceil(ymax + 0.3))
        _pow10(ax.yaxis)
        for t in shown:
            ax.axhline(t.log10, color="0.3", ls=(0, (4, 3)), lw=0.8, zorder=1.5)
            ax.text(0.005, t.log10, " " + t.label, transform=ax.get_yaxis_transform(), ha="left", va="bottom",
                    fontsize=7.5, color="0.2", bbox=dict(fc="white", ec="none", alpha=0.75, pad=0.4), zorder=3)
        _margin_labels(ax, [(y, text, c) for (x, y), text, c in ends], x_from=d.horizon)
        notes = ["line: median; bands: 50% (p25-p75) and 90% (p5-p95) of trajectories"
                 + ("; #k: k-th largest member of the group" if d.groups else "")]
        if not effective:
            notes.append("no effective thresholds in this scenario")
        hidden = [t.name for t in effective if t not in shown]
        if hidden:
            notes.append(f"thresholds outside the range shown: {', '.join(hidden)}")
        if missing:
            notes.append(f"no fan-chart data for: {', '.join(missing)}")
        _footnote(ax, notes)
    return fig


def threshold_cdf(results, threshold, regime=None):
    """Cumulative distribution of the date at which the frontier, every other actor and
    every group rank first reaches ``threshold`` (events ``t_first``, own-and-released
    channel combined). Drawn through the stored quantiles (markers) with straight lines,
    ending at the share reached by the horizon; the censored rest is labelled."""
    d = _Data(results, regime)
    thr = d.threshold(threshold)
    with _style():
        fig, ax = _figure(7.5, 5.0)
        ax.set_title(d.title(f"date first reaching {thr.label} ({thr.kind} FLOP)"), loc="left")
        ax.set_xlabel("Year")
        ax.set_ylabel("Share of trajectories reached (cumulative)")
        ax.set_xlim(d.start, d.horizon)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(_percent())
        ax.axhline(1.0, color="0.75", lw=0.6, zorder=0)
        ends, missing, dodge = [], [], 0
        rows = d.event_rows("t_first", thr.name)
        step = 0.004 * (d.horizon - d.start)
        for row, r in rows:
            pts = [(r[k], q) for q, k in QUANTILES if r[k] is not None]
            reached = r["p_reached"]
            if reached is None or r["n"] == 0:
                missing.append(row.display)
                continue
            c = d.color(row)
            x = [v for v, _ in pts]
            y = [q for _, q in pts]
            if reached > (y[-1] if y else 0.0) + 1e-9:
                x.append(d.horizon)
                y.append(reached)
            lw = 1.8 if row.actor == d.frontier else 1.3
            ax.plot(x, y, color=c, lw=lw, label=row.display, gid="cdf", clip_on=False)
            if pts:
                ax.plot([v for v, _ in pts], [q for _, q in pts], "o", ms=2.6, color=c, clip_on=False)
            # the censored mass: a bar at the horizon from the share reached up to 100%
            xb = d.horizon - dodge * step
            ax.plot([xb, xb], [reached, 1.0], color=c, lw=2.2, alpha=0.55, solid_capstyle="butt",
                    clip_on=False)
            ax.plot([xb], [reached], "o", ms=4, color=c, mec="white", mew=0.6, clip_on=False, zorder=4)
            dodge += 1
            ends.append((reached, f"{row.display} \u2014 not by {d.horizon:g}: {_pct(1 - reached)}", c))
        if not ends:
            _say(ax, f"no t_first rows for threshold {thr.name}")
            return fig
        ax.axvline(d.horizon, color="0.5", lw=0.6, ls=":", zorder=0)
        _margin_labels(ax, ends, x_from=d.horizon)
        notes = ["lines join the stored quantiles (markers: p1, p5, p10, p25, p50, p75, p90, p95, p99) linearly; "
                 f"bars at {d.horizon:g}: share not reaching it by the horizon (censored)"]
        if d.groups:
            notes.append("#k: date the k-th member of the group reaches it")
        if missing:
            notes.append(f"no data for: {', '.join(missing)}")
        _footnote(ax, notes)
    return fig


def lead_times(results, threshold=None, regime=None):
    """Lead time of every actor and group rank behind the frontier (events ``lead_time``,
    years), one panel per threshold (or only ``threshold``): box p25-p75, whiskers
    p5-p95, median tick, share reached on the right. A quantile not reached by the
    horizon is drawn as an arrow off the panel's right edge."""
    d = _Data(results, regime)
    thresholds = [d.threshold(threshold)] if threshold is not None else list(d.thresholds)
    rows = [row for row in d.rows if row.actor != d.frontier]
    with _style():
        n = len(thresholds)
        ncols = 1 if n == 1 else min(n, 3)
        nrows = math.ceil(n / ncols)
        height = max(2.2, 0.34 * len(rows) + 1.3)
        fig, axes = _figure(max(7.5, 3.0 * ncols + 1.6) if n > 1 else 7.5, height * nrows + 0.5, nrows, ncols,
                            sharey=True)
        axes = np.atleast_1d(axes).ravel()
        fig.suptitle(d.title("lead time behind the frontier"), x=0.01, ha="left", fontsize=10)
        if not rows:
            for ax in axes:
                ax.set_visible(False)
            axes[0].set_visible(True)
            axes[0].set_axis_off()
            _say(axes[0], "no lead-time rows: the scenario has no actor besides the frontier")
            return fig
        ypos = {row: i for i, row in enumerate(rows)}
        for ax, thr in zip(axes, thresholds):
            _lead_panel(ax, d, thr, rows, ypos)
        for ax in axes[n:]:
            ax.set_visible(False)
        axes[0].set_yticks(range(len(rows)), [row.display for row in rows])
        axes[0].set_ylim(len(rows) - 0.4, -0.6)
        for ax in axes[:n]:
            for label, row in zip(ax.get_yticklabels(), rows):
                label.set_color(d.color(row))
        for ax in axes[n - ncols if n >= ncols else 0:n]:
            ax.set_xlabel("Lead time after the frontier (years)")
        notes = ["box: p25-p75, whiskers: p5-p95, line: median; right: share of trajectories in which both reach "
                 f"the threshold by {d.horizon:g}; arrow: quantile beyond the horizon"]
        if d.groups:
            notes.append("#k: the k-th largest member of the group")
        _footnote(axes[(nrows - 1) * ncols], notes, fig_wide=True)
    return fig


def access_and_performance(results, regime=None):
    """Two panels: the cost of reaching each threshold at frontier hardware and
    algorithms (``cost_to_reach:<threshold>``, $; the access effect) beside the
    capability of each fixed access budget (``capability_at_budget:<$>``, effective
    FLOP; the performance effect). Median lines, p5-p95 bands."""
    d = _Data(results, regime)
    with _style():
        fig, (left, right) = _figure(11.0, 5.0, 1, 2)
        fig.suptitle(d.title("access and performance effects"), x=0.01, ha="left", fontsize=10)
        budgets = d.budgets()
        # Left: cost to reach each threshold.
        left.set_title("Access effect: cost of the training run that reaches each threshold\n"
                       "(at frontier hardware and algorithms)", loc="left", fontsize=9)
        left.set_xlabel("Year")
        left.set_ylabel("Cost to reach the threshold (US$, log scale)")
        colors = _sequence(len(d.thresholds))
        ends, lo, hi, missing = [], [], [], []
        for t, c in zip(d.thresholds, colors):
            p = d.path(f"cost_to_reach:{t.name}")
            if p is None or np.all(np.isnan(p["p50"])):
                missing.append(t.name)
                continue
            left.fill_between(p["year"], p["p5"], p["p95"], color=c, alpha=0.13, lw=0)
            left.plot(p["year"], p["p50"], color=c, lw=1.5, ls="-" if t.kind == "effective" else (0, (5, 2)),
                      label=t.label, gid="median")
            ends.append((_last(p["year"], p["p50"])[1], t.label + ("" if t.kind == "effective" else " (physical)"), c))
            lo.append(np.nanmin(p["p5"]))
            hi.append(np.nanmax(p["p95"]))
        if ends:
            left.set_xlim(d.start, d.horizon)
            ylo, yhi = math.floor(min(lo) - 0.3), math.ceil(max(hi) + 0.3)
            left.set_ylim(ylo, yhi)
            _pow10(left.yaxis, dollars=True)
            for b in budgets:
                if ylo <= math.log10(b) <= yhi:
                    left.axhline(math.log10(b), color="0.3", lw=0.8, ls=(0, (1, 2)), zorder=1.5)
                    left.text(0.005, math.log10(b), " budget " + _usd(b), transform=left.get_yaxis_transform(),
                              ha="left", va="bottom", fontsize=7.5, color="0.2",
                              bbox=dict(fc="white", ec="none", alpha=0.75, pad=0.4), zorder=3)
            _margin_labels(left, ends, x_from=d.horizon)
            notes = ["line: median; band: 90% (p5-p95); dashed: physical threshold (hardware only)"]
            if budgets:
                notes.append("dotted: access budgets; a budget reaches a threshold where its cost falls below it")
            if missing:
                notes.append(f"no cost series for: {', '.join(missing)}")
            _footnote(left, notes)
        else:
            _say(left, "no cost_to_reach:<threshold> series in paths.parquet")
        # Right: capability of each fixed budget.
        right.set_title("Performance effect: capability of a fixed budget\n"
                        "(training run at frontier hardware and algorithms)", loc="left", fontsize=9)
        right.set_xlabel("Year")
        right.set_ylabel("Effective training compute (FLOP, log scale)")
        ends, lo, hi, missing = [], [], [], []
        for b, c in zip(budgets, _sequence(len(budgets), "cividis")):
            p = d.path(f"capability_at_budget:{_usd_key(b)}") or d.path_by_budget(b)
            if p is None or np.all(np.isnan(p["p50"])):
                missing.append(_usd(b))
                continue
            right.fill_between(p["year"], p["p5"], p["p95"], color=c, alpha=0.15, lw=0)
            right.plot(p["year"], p["p50"], color=c, lw=1.5, label=_usd(b), gid="median")
            ends.append((_last(p["year"], p["p50"])[1], _usd(b) + " budget", c))
            lo.append(np.nanmin(p["p5"]))
            hi.append(np.nanmax(p["p95"]))
        if ends:
            right.set_xlim(d.start, d.horizon)
            effective = [t for t in d.thresholds if t.kind == "effective"]
            ylo, yhi = min(lo), max(hi)
            shown = [t for t in effective if ylo - 1 <= t.log10 <= yhi + 1]
            if shown:
                ylo, yhi = min(ylo, *(t.log10 for t in shown)), max(yhi, *(t.log10 for t in shown))
            right.set_ylim(math.floor(ylo - 0.3), math.ceil(yhi + 0.3))
            _pow10(right.yaxis)
            for t in shown:
                right.axhline(t.log10, color="0.3", ls=(0, (4, 3)), lw=0.8, zorder=1.5)
                right.text(0.005, t.log10, " " + t.label, transform=right.get_yaxis_transform(), ha="left",
                           va="bottom", fontsize=7.5, color="0.2", bbox=dict(fc="white", ec="none", alpha=0.75,
                                                                              pad=0.4), zorder=3)
            _margin_labels(right, ends, x_from=d.horizon)
            notes = ["line: median; band: 90% (p5-p95); dashed: effective thresholds"]
            if missing:
                notes.append(f"no capability series for: {', '.join(missing)}")
            _footnote(right, notes)
        elif not budgets:
            _say(right, "no access budgets in this scenario\n(add [access] budgets = [...] to the scenario)")
        else:
            _say(right, "no capability_at_budget:<$> series in paths.parquet")
    return fig


def save_all(results, out, threshold=None) -> list[Path]:
    """Write the four figures beside ``out`` (``.png``, ``.svg`` or ``.pdf``) as
    ``<stem>-fan``, ``-cdf``, ``-lead`` and ``-access`` with its extension; returns
    their paths. ``threshold`` picks the threshold of the CDF and of the lead-time chart
    (default: the CDF shows the first threshold the frontier reaches, at the median, at
    least a year after the start; the lead-time chart shows every threshold)."""
    out = Path(out)
    ext = _check_extension(out)
    d = _Data(results, None)
    thr = d.threshold(threshold).name if threshold is not None else d.default_threshold()
    figures = {
        "fan": lambda: fan_chart(d.results),
        "cdf": lambda: threshold_cdf(d.results, thr),
        "lead": lambda: lead_times(d.results, threshold),
        "access": lambda: access_and_performance(d.results),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FIGURES:
        fig = figures[name]()
        path = out.with_name(f"{out.stem}-{name}{ext}")
        meta = {"Creator": "mcengine"} if ext != ".png" else {"Software": "mcengine"}
        with _style():
            fig.savefig(path, metadata=meta)
        written.append(path)
    return written


def plot_command(folder, out=None, threshold=None) -> list[Path]:
    """``mcengine plot DIR [--out FILE.png|.svg|.pdf] [--threshold NAME]``: write the
    four figures of results folder ``folder`` (default ``DIR/plots.png`` ->
    ``DIR/plots-fan.png`` ...) and return their paths. Raises ValueError (one line) for
    an unsupported extension or an unknown threshold."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder / "plots.png"
    _check_extension(out)
    d = _Data(folder, None)
    if threshold is not None:
        d.threshold(threshold)
    return save_all(d.results, out, threshold)


# ---------------------------------------------------------------------------------------
# Reading the tables
# ---------------------------------------------------------------------------------------

class _Row:
    """An actor (rank 1) or one rank of a group."""

    def __init__(self, actor: str, rank: int, group: bool):
        self.actor, self.rank, self.group = actor, rank, group

    @property
    def label(self) -> str:  # as in paths.parquet series names
        return f"{self.actor}#{self.rank}" if self.group else self.actor

    @property
    def display(self) -> str:
        return f"{self.actor} #{self.rank}" if self.group else self.actor

    def __hash__(self):
        return hash((self.actor, self.rank))

    def __eq__(self, other):
        return (self.actor, self.rank) == (other.actor, other.rank)


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
        return self.name if same else f"{self.name} ({_num(self.flop)})"


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
            raise ValueError(f"unknown regime {regime!r}; valid regimes: {valid}")
        self.regime = regime
        self.events = [r for r in events if r["regime"] == regime]
        self.access = [r for r in results.access.to_pylist() if r["regime"] == regime]
        paths = [r for r in results.paths.to_pylist() if r["regime"] == regime]
        self.series: dict[str, list[dict]] = {}
        for r in paths:
            self.series.setdefault(r["series"], []).append(r)
        self.thresholds = [_Threshold(*k) for k in dict.fromkeys(
            (r["threshold"], r["threshold_flop"], r["threshold_kind"]) for r in events)]
        self.start = float(self.meta.get("start", min((r["year"] for r in paths), default=0.0)))
        self.horizon = float(self.meta.get("horizon", max((r["year"] for r in paths), default=self.start + 1)))
        self.frontier = "frontier"
        groups = {r["actor"] for r in events if r["metric"] == "warning_window"}
        groups |= {r["actor"] for r in events if f"effective:{r['actor']}#{r['rank']}" in self.series}
        ranks: dict[str, set] = {}
        for r in events:
            ranks.setdefault(r["actor"], set()).add(r["rank"])
        groups |= {a for a, k in ranks.items() if k != {1}}
        self.groups = groups
        keys = dict.fromkeys((r["actor"], r["rank"]) for r in events)
        self.rows = [_Row(a, k, a in groups) for a, k in keys]
        if any(row.actor == "frontier" for row in self.rows):
            self.rows.sort(key=lambda row: row.actor != "frontier")
        elif self.rows:
            self.frontier = self.rows[0].actor
        self._colors = self._assign_colors()

    # --- labels and colours
    def title(self, what: str) -> str:
        m = self.meta
        n = m.get("trajectories")
        scope = f"regime {self.regime}" if self.regime else ("all regimes, pooled" if self.regimes else "")
        parts = [f"{m.get('scenario', 'results')}: {what}",
                 ", ".join(p for p in (f"{n:,} trajectories" if n else "", f"seed {m['seed']}" if "seed" in m else "",
                                       scope) if p)]
        return " \u2014 ".join(p for p in parts if p)

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

    def color(self, row: _Row):
        return self._colors.get(row, "0.5")

    # --- lookups
    def threshold(self, name) -> _Threshold:
        for t in self.thresholds:
            if t.name == name:
                return t
        valid = ", ".join(t.name for t in self.thresholds) or "none"
        raise ValueError(f"unknown threshold {name!r}; valid thresholds: {valid}")

    def default_threshold(self) -> str:
        """The first threshold the frontier reaches (median) at least a year after the
        start; else the first it reaches at all; else the first."""
        med = {r["threshold"]: r["p50"] for r in self.events
               if r["metric"] == "t_first" and r["actor"] == self.frontier and r["channel"] is None}
        for t in self.thresholds:
            if med.get(t.name) is not None and med[t.name] >= self.start + 1:
                return t.name
        for t in self.thresholds:
            if med.get(t.name) is not None:
                return t.name
        if not self.thresholds:
            raise ValueError("the results have no thresholds")
        return self.thresholds[0].name

    def event_rows(self, metric: str, threshold: str):
        """(row, record) for each row with a ``metric`` record (combined channel)."""
        found = {(r["actor"], r["rank"]): r for r in self.events
                 if r["metric"] == metric and r["threshold"] == threshold and r.get("channel") is None}
        return [(row, found[(row.actor, row.rank)]) for row in self.rows if (row.actor, row.rank) in found]

    def path(self, series: str):
        """{year, p5, p25, p50, p75, p95} arrays of one fan-chart series, NaN for null."""
        recs = self.series.get(series)
        if not recs:
            return None
        recs = sorted(recs, key=lambda r: r["year"])
        return {k: np.array([np.nan if r[k] is None else r[k] for r in recs], float)
                for k in ("year", "p5", "p25", "p50", "p75", "p95")}

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
                try:
                    found.add(float(name.split(":", 1)[1]))
                except ValueError:
                    pass
        return sorted(found)


def _load(results):
    if isinstance(results, (str, Path)):
        from . import io

        folder = Path(results)
        t = io.read_folder(folder)

        class _Read:  # a Results without importing the engine (and JAX)
            events, access, paths, metadata = t["events"], t["access"], t["paths"], io.read_metadata(t["events"])

        return _Read()
    for k in ("events", "access", "paths", "metadata"):
        if not hasattr(results, k):
            raise TypeError(f"expected mcengine.Results or a results folder path, got {type(results).__name__}")
    return results


# ---------------------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------------------

def _lead_panel(ax, d: _Data, thr: _Threshold, rows, ypos):
    recs = dict(d.event_rows("lead_time", thr.name))
    ax.set_title(f"{thr.label}, {thr.kind}", loc="left", fontsize=9)
    ax.axvline(0, color="0.6", lw=0.7, zorder=0)
    vals = [r[k] for r in recs.values() for k in ("p5", "p25", "p50", "p75", "p95") if r[k] is not None]
    xmax = max(vals, default=1.0)
    xmin = min(min(vals, default=0.0), 0.0)
    span = max(xmax - xmin, 0.5)
    edge = xmax + 0.06 * span  # where a censored quantile's arrow ends
    right = xmax + 0.30 * span  # room for the share reached
    ax.set_xlim(xmin - 0.04 * span, right)
    drawn = 0
    for row in rows:
        y = ypos[row]
        r = recs.get(row)
        c = d.color(row)
        if r is None or r["p_reached"] is None or not r["n"]:
            ax.text(xmin, y, " no data", va="center", ha="left", **NOTE)
            continue
        reached = r["p_reached"]
        ax.text(right, y, _pct(reached), va="center", ha="right", fontsize=7.5, color=c)
        q = {k: r[k] for k in ("p5", "p25", "p50", "p75", "p95")}
        if q["p5"] is None:
            ax.text(xmin, y, f" beyond {d.horizon:g} in more than 95%", va="center", ha="left", **NOTE)
            continue
        hi_w = q["p95"] if q["p95"] is not None else edge
        ax.plot([q["p5"], hi_w], [y, y], color=c, lw=1.1, solid_capstyle="butt", gid="whisker")
        if q["p95"] is None:
            ax.annotate("", xy=(edge, y), xytext=(edge - 0.02 * span, y),
                        arrowprops=dict(arrowstyle="-|>", color=c, lw=1.1, mutation_scale=8))
        else:
            ax.plot([q["p95"]] * 2, [y - 0.15, y + 0.15], color=c, lw=1.1)
        ax.plot([q["p5"]] * 2, [y - 0.15, y + 0.15], color=c, lw=1.1)
        if q["p25"] is not None:
            hi_b = q["p75"] if q["p75"] is not None else edge
            ax.add_patch(_box(q["p25"], hi_b, y, c))
        if q["p50"] is not None:
            ax.plot([q["p50"]] * 2, [y - 0.3, y + 0.3], color="white", lw=2.6, solid_capstyle="butt")
            ax.plot([q["p50"]] * 2, [y - 0.3, y + 0.3], color=c, lw=1.4, solid_capstyle="butt", gid="median")
        drawn += 1
    ax.text(right, -0.55, "reached", ha="right", va="bottom", fontsize=7, color="0.35")
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    if not drawn:
        ax.text(0.5, 0.5, "no lead times to show", transform=ax.transAxes, ha="center", va="center", **NOTE)


def _box(x0, x1, y, color):
    from matplotlib.patches import Rectangle

    return Rectangle((x0, y - 0.3), x1 - x0, 0.6, fc=_shade(color, 0.55), ec=color, lw=1.0, zorder=2)


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
    prefix = r"\$" if dollars else ""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{prefix}$10^{{{int(round(v))}}}$"))


def _percent():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:.0%}")


def _margin_labels(ax, items, x_from, fontsize=7.5):
    """Label line ends in the right margin, at their heights, moved apart so that they do
    not overlap, each joined to its line end by a thin leader."""
    if not items:
        return
    fig = ax.figure
    lo, hi = ax.get_ylim()
    h_in = fig.get_size_inches()[1] * ax.get_position().height * 0.9
    gap = (fontsize * 1.25 / 72) / max(h_in, 0.5)  # one text line, in axes fraction
    order = sorted(range(len(items)), key=lambda i: (items[i][0], i))
    want = [(items[i][0] - lo) / (hi - lo) for i in order]
    pos = list(want)
    for k in range(1, len(pos)):
        pos[k] = max(pos[k], pos[k - 1] + gap)
    top = max(1.0, gap * len(pos))
    if pos and pos[-1] > top:
        pos[-1] = top
        for k in range(len(pos) - 2, -1, -1):
            pos[k] = min(pos[k], pos[k + 1] - gap)
    for k, i in enumerate(order):
        y, text, color = items[i]
        ax.annotate(text, xy=(x_from, y), xycoords="data", xytext=(1.015, pos[k]), textcoords="axes fraction",
                    va="center", ha="left", fontsize=fontsize, color=color, annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", color=color, lw=0.5, alpha=0.7, shrinkA=0, shrinkB=1))


def _footnote(ax, lines, fig_wide=False):
    """Small notes under the x-axis label, left-aligned with the axes (inside the layout,
    so nothing is cut off)."""
    ax.annotate("\n".join(lines), xy=(0, 0), xycoords=("axes fraction", ax.xaxis.label), xytext=(0, -6),
                textcoords="offset points", ha="left", va="top", annotation_clip=False, linespacing=1.3, **NOTE)


def _say(ax, message):
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.3",
            wrap=True)


def _last(x, y):
    ok = ~np.isnan(y)
    return (x[ok][-1], y[ok][-1]) if ok.any() else (x[-1], np.nan)


def _shade(color, f):
    """``color`` mixed with white, ``f`` in 0 (same) .. 1 (white)."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return (r + (1 - r) * f, g + (1 - g) * f, b + (1 - b) * f)


def _sequence(n, cmap="viridis"):
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    return [cm(0.05 + 0.8 * i / max(n - 1, 1)) for i in range(n)]


def _pct(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = min(max(x, 0.0), 1.0)
    if 0 < x < 0.001:
        return "<0.1%"
    if 0.999 < x < 1:
        return ">99.9%"
    return f"{x:.1%}" if x < 0.1 or x > 0.9 else f"{x:.0%}"


def _num(x: float) -> str:
    """1e28 -> '1e28', 2.1e25 -> '2.1e25'."""
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e")


def _usd_key(x: float) -> str:
    """The $ amount as written in series names (api._usd): 1e6, 2.5e8, 300."""
    return f"{x:.6g}".replace("e+0", "e").replace("e+", "e")


def _usd(x: float) -> str:
    """A $ amount for a label: \\$100k, \\$10M, \\$1B (escaped for matplotlib)."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return rf"\${x / scale:.3g}{unit}"
    return rf"\${x:.3g}"


def _check_extension(out: Path) -> str:
    ext = out.suffix.lower()
    if ext not in EXTENSIONS:
        raise ValueError(f"{out}: unsupported plot file type {out.suffix or '(none)'!r}; "
                         f"use {', '.join(EXTENSIONS)}")
    return ext
