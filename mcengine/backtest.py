"""Backtesting: score a scenario's predicted first-crossing dates against what happened.

A scenario predicts, for each actor (or group rank) and threshold, the distribution of the
date ``t_first`` it first reaches the threshold (MODEL.md §5). A file of published models
(Epoch's "Data on AI Models" columns, e.g. ``shared/data/epoch_models_to_2019.csv``) says
when that actually happened, for **physical** thresholds: the k-th distinct organisation to
publish a model trained with at least X FLOP. :func:`backtest` compares the two for every
physical threshold and

* every rank k of one group (``[[groups]]``) against the k-th organisation to reach X, and
* the ``frontier`` actor against the first organisation to reach X (row ``frontier``),

using only what was known by ``as_of``.

Observed events (:func:`read_observed`, :func:`observed_events`)
    A row counts as a training run if it has a training compute and no ``base_model`` (a
    fine-tune reuses its base's training run). Organisation names are the comma-separated
    entries of ``organization``, each stripped, inner whitespace collapsed to one space and
    compared case-insensitively ("Google", " google " are one organisation, shown as first
    spelled in the file; "Google" and "Google DeepMind" are two: no alias table). Every
    organisation listed on a run reaches X on its publication date; an organisation counts
    once, at its earliest qualifying run, so a jointly trained model adds each co-developer
    once and a second model by the same organisation adds nothing. Runs published after
    ``as_of`` are not yet known. Dates are ``YYYY-MM-DD``; ``YYYY-MM`` is read as the middle of the month (the 16th,
    the 15th in February) and ``YYYY`` as the middle of the year (2 July). A date becomes a
    decimal year as ``year + (day of the year - 1) / (days in the year)``.

Statuses
    ``observed``: the event happened after the scenario start and by ``as_of`` (scored);
    ``before start``: on or before the start, already reached when the forecast was made
    (not scored; ``observed_date`` still gives it);
    ``not yet by <as_of>``: not happened by ``as_of`` (scored as right-censored);
    ``after the horizon <h>``: happened after the scenario horizon (when ``as_of`` is later
    than it): scored as censored at the horizon, beyond which the forecast says nothing.

Predicted distribution
    ``n`` trajectories from :func:`mcengine.sample_trajectories`. A trajectory that does not
    reach X by the horizon is censored: it is *later than the horizon*, never missing, so
    it counts in the denominator of every probability and lies above every reached date.
    F(t) below is the share of all ``n`` trajectories with ``t_first <= t``.

Scores (for each row and threshold; c = min(as_of, horizon) as a decimal year)
    * ``p_by_as_of`` = F(c): the predicted probability of having happened by ``as_of``.
    * ``pit`` = F(y) for an observed date y (null when not observed: the PIT of a
      censored observation is only known to lie in (F(c), 1]).
    * ``inside_50`` / ``inside_90``: y lies in the central 50 % / 90 % predictive interval
      [q_a, q_b] ((a, b) = (0.25, 0.75) / (0.05, 0.95); q_p = the smallest sample date with
      F >= p, i.e. numpy's ``inverted_cdf``; a q_p among censored trajectories is +inf).
      Null for a censored observation (y > c): whether it will fall inside is not known, so
      it never counts as inside (nor as outside) in a coverage.
    * ``open_50`` / ``open_90``: for a censored observation only, the interval reaches
      beyond c (q_b > c, equivalently F(c) < b): it is not contradicted by what is known;
      false means the observation is certainly outside it. Null for observed events.
    * ``crps``: the threshold-weighted CRPS with weight 1{t <= c} (Gneiting & Ranjan 2011),
      in years:

          twCRPS(F, y) = integral from start to c of (F(t) - 1{y <= t})^2 dt
                       = CRPS(law of min(T, c), min(y, c))
                       = E|T' - y'| - E|T' - T''| / 2,   T' = min(T, c), y' = min(y, c),

      computed exactly for the empirical distribution of the samples (censored samples
      enter as c). For a censored observation (y > c) it is the integral of F(t)^2 up to
      c; for an observed one it is the integral of F^2 before y plus (1 - F)^2 from y to c.
      The same weight for every row keeps the score proper: it depends on the outcome only
      through what is known at ``as_of``. Mixing the ordinary CRPS for observed events with
      a censored score for the others would not be proper (it would reward forecasts that
      pile probability just after ``as_of``), and a log score would need a density
      estimate and fail on point masses (e.g. trajectories already over X at the start).
      Lower is better; 0 is a perfect deterministic forecast.
    * ``predicted_p5``, ``predicted_p50``, ``predicted_p95``: q_0.05, q_0.5, q_0.95 as
      calendar years, null where they fall among censored trajectories.

Output table (one row per physical threshold, then per row: frontier, then the group ranks)
    ``scenario``, ``actor``, ``rank`` (1 for the frontier), ``threshold``, ``threshold_flop``,
    ``observed_date`` (decimal year; null if not observed by ``as_of``), ``status``,
    ``observed_by`` ("organisation (model)" of the event, null if none), ``p_by_as_of``,
    ``pit``, ``inside_50``, ``inside_90``, ``open_50``, ``open_90``, ``crps`` (years),
    ``predicted_p5``, ``predicted_p50``, ``predicted_p95`` (calendar years), ``n``
    (trajectories), ``predicted`` (``t_first``, or ``t_public`` for a row with a
    ``publication_delay``: the data record publication, so a delayed row is scored by its
    first public date).
    :func:`summarise` aggregates the rows, observed and not-yet events apart.
    Score columns are null for ``before start`` rows. The schema metadata key ``mcengine``
    (JSON) holds the provenance and the ``notes`` (skipped thresholds, skipped rows, or
    why nothing could be scored); :func:`notes` returns them and :func:`format_table`
    prints them first.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import io
from .errors import ArgumentError, DataError, OutputError, ResourceError
from .report import fmt

if TYPE_CHECKING:  # the scenario layer imports JAX: loaded where a scenario is scored, so reading data needs none
    from .scenario import Scenario

FRONTIER = "frontier"  # scenario.FRONTIER: the actor scored against the first organisation

FILE_NAME = "backtest.parquet"
REQUIRED_COLUMNS = ("model", "organization", "publication_date", "training_compute_flop", "base_model")
DEFAULT_TRAJECTORIES = 20_000
MAX_TRAJECTORIES = 2_000_000  # every trajectory is kept in memory
INTERVALS = {"inside_50": (0.25, 0.75), "inside_90": (0.05, 0.95)}

SCHEMA = pa.schema(
    [
        pa.field("scenario", pa.string()),
        pa.field("actor", pa.string()),
        pa.field("rank", pa.int32()),
        pa.field("threshold", pa.string()),
        pa.field("threshold_flop", pa.float64()),
        pa.field("observed_date", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("observed_by", pa.string()),
        pa.field("p_by_as_of", pa.float64()),
        pa.field("pit", pa.float64()),
        pa.field("inside_50", pa.bool_()),
        pa.field("inside_90", pa.bool_()),
        pa.field("open_50", pa.bool_()),
        pa.field("open_90", pa.bool_()),
        pa.field("crps", pa.float64()),
        pa.field("predicted_p5", pa.float64()),
        pa.field("predicted_p50", pa.float64()),
        pa.field("predicted_p95", pa.float64()),
        pa.field("n", pa.int64()),
        pa.field("predicted", pa.string()),
    ]
)


# ---------------------------------------------------------------------------------------
# Dates


def decimal_year(d: datetime.date) -> float:
    """Calendar year as a float: ``year + (day of the year - 1) / days in the year``."""
    days = 366 if calendar.isleap(d.year) else 365
    return d.year + (d.toordinal() - datetime.date(d.year, 1, 1).toordinal()) / days


_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def parse_date(text: str, partial: bool = True) -> datetime.date:
    """A date from ``YYYY-MM-DD`` (or, if ``partial``, ``YYYY-MM``: the middle of the month,
    ``YYYY``: 2 July). Raises ValueError with a one-line reason."""
    m = _DATE.fullmatch(text.strip())
    if m is None or (not partial and m.group(3) is None):
        raise ValueError(f"{text!r} is not a date; expected YYYY-MM-DD" + (", YYYY-MM or YYYY" if partial else ""))
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    try:
        if month is None:
            return datetime.date(year, 7, 2)
        if day is None:
            return datetime.date(year, int(month), calendar.monthrange(year, int(month))[1] // 2 + 1)
        return datetime.date(year, int(month), int(day))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (no such month or day)") from None


def _as_date(value, what: str = "as_of") -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return parse_date(value, partial=False)
        except ValueError as e:
            raise ArgumentError(f"{what}: {e}") from None
    raise ArgumentError(f"{what}: expected a date (YYYY-MM-DD), got {value!r}")


# ---------------------------------------------------------------------------------------
# Observed data


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run read from the observed file: a model that is not a fine-tune and
    has a known training compute (physical FLOP), by its distinct organisations."""

    model: str
    organizations: tuple[str, ...]  # normalised, distinct; each as first spelled in the file
    date: datetime.date
    flop: float
    line: int  # line of the file


@dataclasses.dataclass(frozen=True)
class Observed:
    """The training runs of an observed file and what was skipped."""

    source: str
    runs: tuple[Run, ...]
    sha256: str
    rows: int
    fine_tunes: int
    no_compute: int
    no_organization: int
    latest: datetime.date | None  # latest publication date in the file


class Event(NamedTuple):
    """An organisation first reaching a threshold: ``year`` is the decimal year."""

    date: datetime.date
    year: float
    organization: str
    model: str


def normalise_organization(name: str) -> str:
    """One organisation name as counted: stripped, inner whitespace collapsed. Two names
    are the same organisation when their ``casefold()`` is equal."""
    return " ".join(name.split())


def read_observed(path: str | Path) -> Observed:
    """Read and validate an observed-models CSV (columns as Epoch's: ``model``,
    ``organization``, ``publication_date``, ``training_compute_flop``, ``base_model``;
    others are ignored). Raises DataError naming the file, the line and the column."""
    source = str(path)
    records, col = io.read_csv(path, REQUIRED_COLUMNS, f"the header must name {', '.join(REQUIRED_COLUMNS)}")
    runs, rows, fine_tunes, no_compute, no_org, latest = [], 0, 0, 0, 0, None
    spelling: dict[str, str] = {}  # casefolded name -> its first spelling in the file
    for line, record in records:
        rows += 1
        get = lambda c: record[col[c]].strip()
        model = get("model")
        where = f"{source}: line {line}" + (f" (model {model!r})" if model else "")
        raw_date = get("publication_date")
        date = None
        if raw_date:
            try:
                date = parse_date(raw_date)
            except ValueError as e:
                raise DataError(f"{where}: column publication_date: {e}") from None
            latest = date if latest is None or date > latest else latest
        raw_flop = get("training_compute_flop")
        flop = None
        if raw_flop:
            try:
                flop = float(raw_flop)
            except ValueError:
                raise DataError(
                    f"{where}: column training_compute_flop: {raw_flop!r} is not a number "
                    "(physical FLOP, e.g. 3.1e23; leave it blank if unknown)"
                ) from None
            if not (math.isfinite(flop) and flop > 0):
                raise DataError(
                    f"{where}: column training_compute_flop: must be a positive finite number of FLOP, got {raw_flop!r}"
                )
        if get("base_model"):
            fine_tunes += 1
            continue
        if flop is None:
            no_compute += 1
            continue
        if date is None:
            raise DataError(
                f"{where}: column publication_date: blank, but the row is a training run with "
                "known compute; give its date (YYYY-MM-DD, YYYY-MM or YYYY)"
            )
        orgs, seen = [], set()
        for part in get("organization").split(","):
            name = normalise_organization(part)
            if name and name.casefold() not in seen:
                seen.add(name.casefold())
                orgs.append(spelling.setdefault(name.casefold(), name))
        if not orgs:
            no_org += 1
            continue
        runs.append(Run(model, tuple(orgs), date, flop, line))
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()  # the file as read (provenance)
    return Observed(source, tuple(runs), digest, rows, fine_tunes, no_compute, no_org, latest)


def observed_events(observed: Observed | str | Path, flop: float, as_of: datetime.date) -> list[Event]:
    """The organisations that published a training run of at least ``flop`` physical FLOP
    on or before ``as_of``, each at its first such run, in order of date (ties: file order).
    The k-th entry is the observed event for rank k."""
    if not isinstance(observed, Observed):
        observed = read_observed(observed)
    first: dict[str, tuple[datetime.date, int, str, str]] = {}
    for run in observed.runs:
        if run.flop >= flop and run.date <= as_of:
            for org in run.organizations:
                key = org.casefold()
                if key not in first or (run.date, run.line) < first[key][:2]:
                    first[key] = (run.date, run.line, org, run.model)
    return [Event(d, decimal_year(d), org, model) for d, _, org, model in sorted(first.values())]


# ---------------------------------------------------------------------------------------
# Scores


def score(t_first: np.ndarray, observed: float | None, start: float, horizon: float, as_of: float) -> dict:
    """Scores of one predicted distribution against one observation (see the module
    docstring for the formulas).

    Args:
        t_first: [n] first-crossing times, years since ``start``; NaN = censored (not
            reached by the horizon: later than every reached date).
        observed: the observed date (decimal year), or None if not observed by ``as_of``.
        start, horizon, as_of: decimal years.

    Returns:
        dict with status ("observed", "censored": not observed by min(as_of, horizon), or
        "before start": not scored), p_by_as_of, pit, inside_50, inside_90 (None unless
        observed), open_50, open_90 (None unless censored), crps (years; None where not
        scored), predicted_p5/p50/p95 (calendar years; None if censored), n.
    """
    x = np.asarray(t_first, np.float64)
    n = x.size
    x = np.sort(np.where(np.isnan(x), np.inf, x))  # years since start; censored = +inf
    c = min(as_of, horizon) - start  # what is known: up to as_of, and the forecast ends at the horizon
    cdf = lambda t: float(np.searchsorted(x, t, side="right")) / n
    q = lambda p: float(x[min(n - 1, max(0, math.ceil(p * n - 1e-9) - 1))])  # inverted_cdf
    cal = lambda v: None if math.isinf(v) else start + v
    out = {
        "p_by_as_of": cdf(c),
        "pit": None,
        "inside_50": None,
        "inside_90": None,
        "open_50": None,
        "open_90": None,
        "crps": None,
        "predicted_p5": cal(q(0.05)),
        "predicted_p50": cal(q(0.5)),
        "predicted_p95": cal(q(0.95)),
        "n": n,
    }
    if observed is not None and observed <= start:
        return {**out, "status": "before start"}
    y = observed - start if observed is not None else math.inf
    censored = y > c
    if not censored:
        out["pit"] = cdf(y)
    for name, (lo, hi) in INTERVALS.items():
        if censored:
            out[name.replace("inside", "open")] = q(hi) > c
        else:
            out[name] = q(lo) <= y <= q(hi)
    xc, yc = np.minimum(x, c), min(y, c)  # sorted still
    k = np.arange(n, dtype=np.float64)
    spread = float(np.dot(xc, 2 * k - n + 1)) / n**2  # E|T' - T''| / 2 for the empirical law
    out["crps"] = max(0.0, float(np.mean(np.abs(xc - yc))) - spread)
    return {**out, "status": "censored" if censored else "observed"}


# ---------------------------------------------------------------------------------------
# The backtest


def _group(scenario: Scenario, group: str | None) -> str:
    groups = [a.name for a in scenario.actors if a.is_group]
    listed = ", ".join(groups) or "none"
    if group is None:
        if len(groups) == 1:
            return groups[0]
        if not groups:
            raise ArgumentError(
                f"{scenario.source}: the scenario has no [[groups]]; a backtest scores the ranks of "
                "a group against the k-th organisation to reach each threshold: add a [[groups]] "
                "entry with the ranks to score"
            )
        raise ArgumentError(
            f"{scenario.source}: the scenario has several groups ({listed}); name the one to score "
            "(group=..., --group NAME)"
        )
    if group not in groups:
        what = "a single actor, not a group" if group in [a.name for a in scenario.actors] else "not in the scenario"
        raise ArgumentError(f"{scenario.source}: group {group!r} is {what} (groups: {listed})")
    return group


def backtest(
    scenario: Scenario | str | Path,
    observed_csv: str | Path,
    as_of: datetime.date | str | None = None,
    group: str | None = None,
    trajectories: int = DEFAULT_TRAJECTORIES,
    seed: int = 0,
) -> pa.Table:
    """Score ``scenario``'s predicted first-crossing dates against the models published
    after its start and up to ``as_of`` (default: the file's latest publication date).

    Every physical threshold is scored for the ``frontier`` (against the first
    organisation to reach it) and each rank k of ``group`` (default: the scenario's only
    group) against the k-th organisation. Effective thresholds cannot be observed and are
    skipped (with a note). ``trajectories`` samples of ``seed`` form the prediction.

    Returns the table described in the module docstring; when nothing can be scored (no
    physical threshold, or ``as_of`` not after the start) it has no rows and its
    :func:`notes` say why. Raises DataError for an unreadable or malformed file,
    ArgumentError for an unknown group or a bad argument.
    """
    from .scenario import Scenario, load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer)) or trajectories < 1:
        raise ArgumentError(f"trajectories must be a whole number >= 1, got {trajectories!r}")
    if trajectories > MAX_TRAJECTORIES:
        raise ResourceError(
            f"a backtest keeps every trajectory in memory: at most {MAX_TRAJECTORIES:,}, got {int(trajectories):,}"
        )
    observed = read_observed(observed_csv)
    group = _group(scenario, group)
    s = scenario
    notes = [
        f"{observed.source}: {len(observed.runs)} training runs with known compute "
        f"({observed.fine_tunes} fine-tunes, {observed.no_compute} models without compute"
        + (f", {observed.no_organization} without organisation" if observed.no_organization else "")
        + " skipped)"
    ]
    if as_of is None:
        if observed.latest is None:
            raise DataError(f"{observed.source}: no publication dates; give the as-of date")
        as_of = observed.latest
        notes.append(f"as-of defaults to the file's latest publication date, {as_of.isoformat()}")
    as_of = _as_date(as_of)
    effective = [t.name for t in s.thresholds if t.kind != "physical"]
    physical = [(i, t) for i, t in enumerate(s.thresholds) if t.kind == "physical"]
    if effective:
        notes.append(
            f"effective thresholds cannot be observed (the data give physical FLOP); skipped: {', '.join(effective)}"
        )
    meta = {
        "scenario": s.name,
        "scenario_source": s.source,
        "scenario_toml": s.text,
        "observed": observed.source,
        "observed_sha256": observed.sha256,
        "as_of": as_of.isoformat(),
        "group": group,
        "start": s.start,
        "horizon": s.horizon,
        "seed": seed,
        "trajectories": int(trajectories),
    }
    as_of_year = decimal_year(as_of)
    empty = None
    if not physical:
        empty = f"nothing to score: scenario {s.name!r} has no physical thresholds"
    elif as_of_year <= s.start:
        empty = (
            f"nothing to score yet: as-of {as_of.isoformat()} is "
            f"{'before' if as_of_year < s.start else 'at'} the scenario start {float(s.start)}"
        )
    if empty is not None:
        return _table({k: [] for k in SCHEMA.names}, meta, notes + [empty])
    if observed.latest is not None and observed.latest < as_of:
        notes.append(
            f"the file's latest publication date, {observed.latest.isoformat()}, is before the as-of "
            f"{as_of.isoformat()}: events after it would be missing and count as not yet happened"
        )
    if as_of_year > s.horizon:
        notes.append(
            f"as-of {as_of.isoformat()} is after the scenario horizon {float(s.horizon)}: the forecast "
            "ends there, so observations are scored as censored at the horizon"
        )

    from .engine import sample_trajectories
    from .layout import OutputLayout

    layout = OutputLayout.of(s)
    rows = layout.rows
    scored = [(layout.frontier, FRONTIER, 1)]
    scored += [(r, row.actor, row.rank) for r, row in enumerate(rows) if row.actor == group]
    sample = sample_trajectories(s, int(trajectories), seed)
    t_first, t_public = np.asarray(sample.t_first), np.asarray(sample.t_public)
    delayed = {a.name for a in s.actors if a.publication_delay is not None}
    if delayed & {actor for _, actor, _ in scored}:
        notes.append(
            "rows with a publication_delay are scored by their first public date (t_public), the others by t_first"
        )
    cols: dict[str, list] = {k: [] for k in SCHEMA.names}
    for j, thr in physical:
        events = observed_events(observed, thr.flop, as_of)
        for r, actor, rank in scored:
            ev = events[rank - 1] if rank <= len(events) else None
            predicted = "t_public" if actor in delayed else "t_first"
            dates = (t_public if actor in delayed else t_first)[:, r, j]
            res = score(dates, ev.year if ev else None, s.start, s.horizon, as_of_year)
            if res["status"] == "censored":
                res["status"] = (
                    f"not yet by {as_of.isoformat()}" if ev is None else f"after the horizon {float(s.horizon)}"
                )
            values = {
                "scenario": s.name,
                "actor": actor,
                "rank": rank,
                "threshold": thr.name,
                "threshold_flop": thr.flop,
                "observed_date": ev.year if ev else None,
                "observed_by": f"{ev.organization} ({ev.model})" if ev else None,
                "predicted": predicted,
                **res,
            }
            for k in SCHEMA.names:
                cols[k].append(values[k])
    return _table(cols, meta, notes)


def _table(cols: dict[str, list], meta: dict, notes: list[str]) -> pa.Table:
    return io.table(SCHEMA, cols, io.provenance(**meta, notes=notes))


def metadata(table: pa.Table) -> dict:
    """The provenance record of a backtest table (scenario, observed file and its sha256,
    as_of, group, seed, trajectories, versions, notes)."""
    return json.loads((table.schema.metadata or {}).get(io.METADATA_KEY, b"{}"))


def notes(table: pa.Table) -> list[str]:
    """What the caller should tell the user: skipped thresholds and rows, defaults taken,
    and, for a table without rows, why nothing could be scored (the last note)."""
    return list(metadata(table).get("notes", []))


# ---------------------------------------------------------------------------------------
# Output


def format_table(table: pa.Table) -> str:
    """The backtest for the terminal: notes, one line per scored row, then a summary
    (how many events were observed, interval coverage, mean CRPS)."""
    m = metadata(table)
    lines = [f"note: {n}" for n in m.get("notes", [])]
    if table.num_rows == 0:
        return "\n".join(lines)
    head = (
        f"backtest of {m.get('scenario')} against {m.get('observed')} as of {m.get('as_of')} "
        f"(group {m.get('group')}; {m.get('trajectories', 0):,} trajectories, seed {m.get('seed')})"
    )
    header = [
        "actor",
        "threshold",
        "observed",
        "status",
        "P(by as-of)",
        "PIT",
        "in 50%",
        "in 90%",
        "CRPS",
        "p5",
        "p50",
        "p95",
        "observed by",
    ]
    body = []
    recs = table.to_pylist()
    for r in recs:
        body.append(
            [
                r["actor"] + (f" #{r['rank']}" if r["actor"] != FRONTIER else ""),
                r["threshold"],
                fmt(r["observed_date"], ".2f"),
                r["status"],
                fmt(r["p_by_as_of"], ".3f"),
                fmt(r["pit"], ".3f"),
                fmt(r["inside_50"], ""),
                fmt(r["inside_90"], ""),
                fmt(r["crps"], ".3f"),
                fmt(r["predicted_p5"], ".2f"),
                fmt(r["predicted_p50"], ".2f"),
                fmt(r["predicted_p95"], ".2f"),
                r["observed_by"] or "",
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    left = {0, 1, 3, 12}
    fmt_line = lambda cells: "  ".join(
        c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    ).rstrip()
    lines += [head, fmt_line(header), fmt_line(["-" * w for w in widths])] + [fmt_line(b) for b in body]
    return "\n".join(lines + ["", format_summary(summarise(table))])


def summarise(table: pa.Table | list[dict]) -> dict:
    """Aggregate scores of backtest rows, events that happened and not-yet ones apart.

    ``observed``: events that happened (after the start, by as-of) with ``inside_50`` /
    ``inside_90`` (their share inside the central intervals), ``mean_pit``, ``pit_below_half``
    (share of PIT < 0.5: near 0.5 when the forecast has no systematic side) and ``crps``
    (mean, years); ``censored``: not-yet events (and events after the horizon), never
    counted as inside an interval, with ``open_90`` (share whose 90 % interval still
    reaches beyond as-of: the rest are known misses) and their mean ``crps``; ``scored``:
    both; ``crps``: the mean over both (the proper, threshold-weighted score);
    ``before_start``: rows not scored. Shares and means are None over no rows."""
    recs = table.to_pylist() if isinstance(table, pa.Table) else list(table)
    obs = [r for r in recs if r["status"] == "observed"]
    cen = [r for r in recs if r["crps"] is not None and r["status"] != "observed"]
    mean = lambda xs: float(np.mean(xs)) if len(xs) else None
    return {
        "observed": len(obs),
        "censored": len(cen),
        "scored": len(obs) + len(cen),
        "before_start": sum(r["status"] == "before start" for r in recs),
        "inside_50": mean([bool(r["inside_50"]) for r in obs]),
        "inside_90": mean([bool(r["inside_90"]) for r in obs]),
        "mean_pit": mean([r["pit"] for r in obs]),
        "pit_below_half": mean([r["pit"] < 0.5 for r in obs]),
        "crps_observed": mean([r["crps"] for r in obs]),
        "open_90": mean([bool(r["open_90"]) for r in cen]),
        "crps_censored": mean([r["crps"] for r in cen]),
        "crps": mean([r["crps"] for r in obs + cen]),
    }


def format_summary(m: dict) -> str:
    """:func:`summarise`'s numbers in two lines."""
    pct = lambda x: "—" if x is None else f"{x:.0%}"
    num = lambda x, spec=".3f": "—" if x is None else format(x, spec)
    return (
        f"{m['scored']} scored ({m['observed']} observed, {m['censored']} not yet), {m['before_start']} before "
        f"start\nobserved: inside 50% intervals {pct(m['inside_50'])}, 90% intervals {pct(m['inside_90'])}; "
        f"mean PIT {num(m['mean_pit'])} ({pct(m['pit_below_half'])} below 0.5); mean CRPS "
        f"{num(m['crps_observed'])} years\nnot yet: 90% interval reaching beyond as-of {pct(m['open_90'])}; "
        f"mean CRPS {num(m['crps_censored'])} years; all scored: mean CRPS {num(m['crps'])} years"
    )


def check_output(folder: str | Path) -> None:
    """Fail early (before sampling) if ``backtest.parquet`` could not or must not be written
    into ``folder``: it may exist (e.g. a results folder) or not yet; a ``backtest.parquet``
    already there is replaced only if mcengine wrote it."""
    folder = Path(folder)
    problem = io.path_problem(folder)
    if problem:
        raise OutputError(f"{folder}: {problem}; choose another --out")
    try:
        _check_output(folder)
    except OSError as e:
        raise OutputError(f"{folder}: cannot use it ({e.strerror or e}); choose another --out") from None


def _check_output(folder: Path) -> None:
    if folder.is_symlink():
        raise OutputError(f"{folder}: is a symbolic link; mcengine does not write through links; choose another --out")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder; choose another --out")
    target = folder / FILE_NAME
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise OutputError(f"{target}: is not a plain file; mcengine does not replace it; choose another --out")
    if target.exists():
        try:
            ours = io.METADATA_KEY in (pq.read_schema(target).metadata or {})
        except (OSError, pa.ArrowException):
            ours = False
        if not ours:
            raise OutputError(f"{target}: exists and was not written by mcengine; choose another --out")
    probe = io.existing_ancestor(folder)
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: cannot write there ({probe} is not a writable folder); choose another --out")


def write(table: pa.Table, folder: str | Path) -> Path:
    """Write ``table`` as ``<folder>/backtest.parquet`` atomically (a temporary file in
    the folder, then ``os.replace``), replacing an earlier backtest there. A folder that does
    not exist is created, with mcengine's ``.mcengine`` marker (kind ``backtest``); on a
    failure nothing is left. Returns the file's path."""
    folder = Path(folder)
    check_output(folder)
    target = folder / FILE_NAME
    created = []
    try:
        created = io.make_parents(folder)
        if created:
            io.write_marker(folder, "backtest", metadata(table).get("scenario"))
        with io.atomic_files(target) as (tmp,):
            pq.write_table(table, tmp)
    except BaseException as e:
        if created:
            (folder / io.MARKER).unlink(missing_ok=True)
            io.remove_empty(created)
        if isinstance(e, OSError):
            raise OutputError(f"{folder}: cannot write {FILE_NAME} ({e.strerror or e}); choose another --out") from None
        raise
    return target


def read(folder_or_file: str | Path) -> pa.Table:
    """Read a backtest written by :func:`write` (the folder or the file)."""
    p = Path(folder_or_file)
    return pq.read_table(p / FILE_NAME if p.is_dir() else p)


def command(
    scenario: Scenario | str | Path,
    observed: str | Path,
    as_of: datetime.date | str | None = None,
    group: str | None = None,
    trajectories: int = DEFAULT_TRAJECTORIES,
    seed: int = 0,
    out: str | Path | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    tables: list | None = None,
) -> str:
    """What ``mcengine backtest`` does: load the scenario (with ``--set`` overrides),
    check ``out`` before sampling, run :func:`backtest`, write ``out/backtest.parquet``
    if ``out`` is given, and return the text to print. Raises a UserError (ScenarioError,
    DataError, ArgumentError, OutputError, ResourceError) with a one-line message for every
    user mistake. The table is appended to ``tables`` when a list is given."""
    from .scenario import Scenario, load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides)
    if as_of is not None:
        as_of = _as_date(as_of, "--as-of")
    if out is not None:
        check_output(out)
    table = backtest(scenario, observed, as_of=as_of, group=group, trajectories=trajectories, seed=seed)
    if tables is not None:
        tables.append(table)
    text = format_table(table)
    if out is not None and table.num_rows:
        text += f"\nwrote {write(table, out)}"
    return text


# ---------------------------------------------------------------------------------------
# Rolling origins


def parse_origins(text: str) -> list[datetime.date]:
    """Origins from ``2012,2014,2016`` (a year is its last day, 31 December) or full dates
    ``YYYY-MM-DD``; increasing, without repeats. Raises ArgumentError."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if re.fullmatch(r"\d{4}", part):
            out.append(datetime.date(int(part), 12, 31))
        else:
            out.append(_as_date(part, "--rolling"))
    if not out or sorted(set(out)) != out:
        raise ArgumentError(
            f"--rolling: expected increasing years or dates without repeats, e.g. 2012,2014,2016,2018; got {text!r}"
        )
    return out


def rolling(
    models: str | Path,
    hardware: str | Path,
    origins: list[datetime.date],
    as_of: datetime.date | str | None = None,
    trajectories: int = DEFAULT_TRAJECTORIES,
    seed: int = 0,
) -> list[tuple[datetime.date, pa.Table]]:
    """Rolling-origin backtest: at each origin, calibrate a scenario from the rows published
    by then (:func:`mcengine.calibrate.calibrate`), sample it, and score it against the
    models file up to ``as_of`` (default: its latest publication date). Returns
    (origin, backtest table) per origin; each table's provenance holds the calibrated
    scenario's text."""
    from . import calibrate as cal
    from .scenario import parse_scenario

    observed = read_observed(models)
    if as_of is None:
        if observed.latest is None:
            raise DataError(f"{observed.source}: no publication dates; give the as-of date")
        as_of = observed.latest
    as_of = _as_date(as_of)
    for origin in origins:
        if origin >= as_of:
            raise ArgumentError(
                f"--rolling: origin {origin.isoformat()} is not before the as-of date "
                f"{as_of.isoformat()}: nothing after it to score"
            )
    hw = cal.read_hardware(hardware)
    out = []
    for origin in origins:
        c = cal.calibrate(observed, hw, origin)
        scenario = parse_scenario(cal.scenario_toml(c), source=f"calibrated at {origin.isoformat()}")
        out.append((origin, backtest(scenario, models, as_of=as_of, trajectories=trajectories, seed=seed)))
    return out


def format_rolling(results: list[tuple[datetime.date, pa.Table]]) -> str:
    """One line per origin (and all origins pooled): events observed after the origin, the
    share of them inside their 50 % / 90 % intervals, mean PIT and the share of PIT below
    0.5, mean CRPS of the observed
    ones; not-yet events apart (count, share whose 90 % interval reaches beyond as-of,
    CRPS); the mean CRPS over all scored rows."""
    header = [
        "origin",
        "as of",
        "observed",
        "in 50%",
        "in 90%",
        "mean PIT",
        "PIT<0.5",
        "CRPS obs",
        "not yet",
        "90% open",
        "CRPS not yet",
        "CRPS all",
    ]
    pct = lambda x: "—" if x is None else f"{x:.0%}"
    num = lambda x: "—" if x is None else f"{x:.3f}"
    cells = lambda m: [
        str(m["observed"]),
        pct(m["inside_50"]),
        pct(m["inside_90"]),
        num(m["mean_pit"]),
        pct(m["pit_below_half"]),
        num(m["crps_observed"]),
        str(m["censored"]),
        pct(m["open_90"]),
        num(m["crps_censored"]),
        num(m["crps"]),
    ]
    body, pooled = [], []
    for origin, table in results:
        m = summarise(table)
        pooled += table.to_pylist()
        body.append([origin.isoformat(), metadata(table).get("as_of", ""), *cells(m)])
    m = summarise(pooled)
    body.append(["pooled", "", *cells(m)])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])


def plot_pit(tables: list[tuple[str, pa.Table]]):
    """A matplotlib figure: the PIT histogram of the observed events (10 bins; a calibrated
    forecast is flat at the dashed line) and the reliability diagram (share of observed
    events inside the central interval of each nominal level, from their PIT: inside the
    level-p interval iff |PIT - 1/2| <= p/2), one series per table (label, table). Not-yet
    events are left out of both (their PIT is unknown); the legend gives their count."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    bins = np.linspace(0, 1, 11)
    levels = np.linspace(0.05, 0.95, 19)
    all_pit = []
    for label, table in tables:
        m = summarise(table)
        pit = np.array([r["pit"] for r in table.to_pylist() if r["status"] == "observed"], np.float64)
        all_pit.append(pit)
        if pit.size:
            cover = [(np.abs(pit - 0.5) <= p / 2).mean() for p in levels]
            ax2.plot(levels, cover, marker="o", ms=3, label=f"{label}: {pit.size} observed, {m['censored']} not yet")
    pooled = np.concatenate(all_pit) if all_pit else np.zeros(0)
    if pooled.size:
        ax1.hist(
            pooled,
            bins=bins,
            weights=np.full(pooled.size, 10 / pooled.size),
            color="#c9d3e6",
            edgecolor="white",
            label="all pooled",
        )
        ax1.hist(
            [p for p in all_pit if p.size],
            bins=bins,
            histtype="step",
            stacked=False,
            density=True,
            label=[lab for (lab, _), p in zip(tables, all_pit) if p.size],
            alpha=0.7,
        )
    ax1.axhline(1.0, color="k", ls="--", lw=1)
    ax1.set(
        xlim=(0, 1),
        xlabel="PIT of the observed date",
        ylabel="density",
        title=f"PIT histogram ({pooled.size} observed events)",
    )
    if pooled.size:
        ax1.legend(fontsize=7)
    ax2.plot([0, 1], [0, 1], color="k", ls="--", lw=1)
    ax2.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="nominal central interval",
        ylabel="share of observed events inside",
        title="Reliability",
    )
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=7, loc="upper left")
    else:
        ax2.text(0.5, 0.5, "no observed events", ha="center", va="center", transform=ax2.transAxes)
    fig.tight_layout()
    return fig


def write_plot(fig, path: str | Path, overwrite: bool = False) -> Path:
    """Save ``fig`` to ``path`` (format from its extension: png, svg, pdf) atomically."""
    import io as _io

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise ArgumentError(f"--plot: {path}: expected a .png, .svg or .pdf file name")
    buf = _io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=150)
    return io.write_file(path, buf.getvalue(), overwrite=overwrite, option="--plot")
