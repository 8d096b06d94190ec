"""Several runs side by side (``mcengine compare``): frontier dates, lead times, diffusion
dates, the frontier's date per regime and the counts of organisations of each run, with
the difference of each median from the reference run (the first).

Built on :func:`mcengine.report.summary_data`: every number is the one ``mcengine summary``
shows for that run. Rows are matched by threshold name, actor, access budget, regime and
year; a row missing from some runs is blank there, with a note. A sweep folder counts as
its points (labelled by their swept values). Reading needs no JAX.
"""

from __future__ import annotations

import dataclasses
import io as stdio
import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import io
from .errors import ArgumentError, DataError
from .report import count_cell, date_cell, date_text, fmt, lead_cell, pct, summary_data
from .results import Results, read_results
from .scenario import recorded_overrides

# The compared tables: name -> the key fields that match a row across runs.
TABLES = {
    "frontier_date": ("threshold",),
    "lead_time": ("actor", "threshold"),
    "diffusion": ("budget_usd", "threshold"),
    "regime_frontier_date": ("regime", "threshold"),
    "counts": ("threshold", "year"),
}


@dataclasses.dataclass(frozen=True)
class Run:
    """One compared run: its results and where they came from (a results folder, or the
    point ``point`` of a sweep folder with its swept ``values``)."""

    results: Results
    folder: Path | None
    point: int | None = None
    values: dict | None = None


def read_runs(folders: Sequence[str | Path]) -> list[Run]:
    """The runs in ``folders``: a results folder is one run, a sweep folder (it holds
    ``sweep.json``) is one run per point. A :class:`DataError` for a folder that is neither."""
    runs: list[Run] = []
    for folder in map(Path, folders):
        try:
            is_sweep = (folder / "sweep.json").is_file()
        except OSError as e:
            raise DataError(f"{folder}: cannot read it ({e.strerror or e})") from None
        if is_sweep:
            runs += read_sweep(folder)
        else:
            runs.append(Run(read_results(folder), folder))
    return runs


def read_sweep(folder: Path) -> list[Run]:
    """One run per point of a sweep folder written by ``mcengine sweep``."""
    try:
        manifest = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
        points = manifest["points"]
        values = [p["values"] for p in points]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{folder / 'sweep.json'}: not a sweep manifest written by mcengine sweep ({e})") from None
    runs = []
    for i, v in enumerate(values):
        tables = {}
        for name in io.FILES + io.OPTIONAL_FILES:
            path = folder / name / f"point-{i:05d}.parquet"
            if name in io.OPTIONAL_FILES and not path.exists():
                continue
            try:
                tables[name] = pq.read_table(path)
                meta = io.read_metadata(tables[name])
            except (OSError, pa.ArrowException, KeyError, ValueError) as e:
                why = " ".join(str(e).split())[:120]
                raise DataError(f"{path}: not a sweep point written by mcengine ({why})") from None
        results = Results(tables["events"], tables["access"], tables["paths"], meta, counts=tables.get("counts"))
        runs.append(Run(results, folder, point=i, values=v))
    return runs


def compare_runs(runs: Sequence[str | Path | Results], labels: Sequence[str] | None = None) -> dict:
    """Compare runs as plain data (``mcengine compare --json``): results folders, sweep
    folders (one run per point) or :class:`Results`; the first run is the reference.

    ``runs``: each run's label, source, seed, trajectories, start, horizon and ``--set``
    overrides. Per table (``frontier_date``, ``lead_time``, ``diffusion``,
    ``regime_frontier_date``, ``counts``), a row per key matched across the runs (a count's
    ``year``: 1 January of that calendar year, a number) with ``runs`` (label -> the run's
    p5, p50, p95 and, for dates and lead times, p_reached and reached_at_start; null if the
    run lacks the row) and ``diff_p50`` (label -> the run's median minus the reference's:
    years for dates and lead times, organisations for counts; null where either median is
    censored, reached at the start or missing). ``notes``: the rows that some runs lack."""
    expanded: list[Run] = []
    for r in runs:
        expanded += [Run(r, r.folder)] if isinstance(r, Results) else read_runs([r])
    if len(expanded) < 2:
        raise ArgumentError(
            "compare needs at least two runs: two or more results folders, or a sweep folder with two or more points"
        )
    if labels is not None and (len(labels) != len(expanded) or len(set(labels)) != len(labels)):
        raise ArgumentError(f"labels: {len(expanded)} distinct labels needed, one per run; got {list(labels)}")
    names = list(labels) if labels is not None else run_labels(expanded)
    summaries = [summary_data(r.results) for r in expanded]
    flat = [_flatten(s) for s in summaries]
    out: dict = {"reference": names[0], "runs": [_run_record(n, r, s) for n, r, s in zip(names, expanded, summaries)]}
    notes = []
    for table, keys in TABLES.items():
        rows = list(dict.fromkeys(k for f in flat for k in f[table]))  # in order of first appearance
        first = list(dict.fromkeys(k[0] for k in rows))
        rows.sort(key=lambda k: first.index(k[0]))  # grouped by the first key field (stable)
        out[table] = []
        for key in rows:
            values = {n: f[table].get(key) for n, f in zip(names, flat)}
            ref = values[names[0]]
            out[table].append(
                {
                    **dict(zip(keys, key)),
                    "runs": values,
                    "diff_p50": {n: _diff(values[n], ref) for n in names[1:]},
                }
            )
        notes += _missing(table, keys, names, flat)
    out["notes"] = notes
    return out


def run_labels(runs: Sequence[Run]) -> list[str]:
    """A short label per run, distinct: the scenario's name (a sweep point: its swept
    values), else the folder's name (with ``#point``), else the folder as given, else
    numbered: ``x``, ``x (2)``."""
    choices = []
    for r in runs:
        name = r.results.metadata.get("scenario") or "run"
        folder = r.folder if r.folder is not None else Path(name)
        if r.point is None:
            choices.append([name, folder.name or str(folder), str(folder)])
        else:
            value = "/".join(_value(v) for v in (r.values or {}).values())
            short = value if len(value) <= 16 else f"#{r.point}"
            choices.append([short, f"{folder.name}#{r.point}", f"{folder}#{r.point}"])
    labels = [c[0] for c in choices]
    for level in (1, 2):  # runs sharing a label take their next choice, if that tells them apart
        for x in {x for x in labels if labels.count(x) > 1}:
            group = [i for i, y in enumerate(labels) if y == x]
            if len({choices[i][level] for i in group}) > 1:
                for i in group:
                    labels[i] = choices[i][level]
    for i, x in enumerate(labels):  # the same folder twice: the later ones numbered
        n = labels[:i].count(x)
        while n and f"{x} ({n + 1})" in labels:
            n += 1
        labels[i] = f"{x} ({n + 1})" if n else x
    return labels


def _value(x) -> str:
    return f"{x:g}" if isinstance(x, int | float) and not isinstance(x, bool) else str(x).lower()


def _run_record(label: str, run: Run, s: dict) -> dict:
    m = run.results.metadata
    return {
        "label": label,
        "folder": None if run.folder is None else str(run.folder),
        "point": run.point,
        "values": run.values,
        "scenario": s["scenario"],
        "source": m.get("scenario_source"),
        "overrides": recorded_overrides(m.get("scenario_toml") or ""),
        "seed": s["seed"],
        "trajectories": s["trajectories"],
        "start": s["start"],
        "horizon": s["horizon"],
    }


def _flatten(s: dict) -> dict[str, dict[tuple, dict]]:
    """One summary (``summary_data``) as table -> key -> statistics."""
    return {
        "frontier_date": {(t["threshold"],): t["frontier_date"] for t in s["thresholds"]},
        "lead_time": {(a, t["threshold"]): x for t in s["thresholds"] for a, x in t["lead_time"].items()},
        "diffusion": {(d["budget_usd"], n): x for d in s["diffusion"] for n, x in d["dates"].items()},
        "regime_frontier_date": {(g["regime"], n): x for g in s["regimes"] for n, x in g["frontier_date"].items()},
        "counts": {(c["threshold"], float(y)): x for c in s["counts"] for y, x in c["by_year"].items()},
    }


def _diff(x: dict | None, ref: dict | None) -> float | None:
    """The run's median minus the reference's; None where either is missing, censored
    (null) or reached at the start (a date before the start is not known)."""
    if x is None or ref is None or x["p50"] is None or ref["p50"] is None:
        return None
    if x.get("reached_at_start") or ref.get("reached_at_start"):
        return None
    return round(x["p50"] - ref["p50"], 6)


def _missing(table: str, keys: tuple[str, ...], names: list[str], flat: list[dict]) -> list[dict]:
    """Notes on the rows of ``table`` that some runs lack, by the first key field (a
    threshold, an actor, a budget, a regime) or, for the counts, by year."""
    field = "year" if table == "counts" else keys[0]
    at = keys.index(field)
    present = [{k[at] for k in f[table]} for f in flat]
    out = []
    for value in dict.fromkeys(k[at] for f in flat for k in f[table]):
        absent = [n for n, p in zip(names, present) if value not in p]
        if absent:
            out.append({"table": table, field: value, "absent_from": absent})
    return out


# -- the terminal ------------------------------------------------------------------------


def _stat(x: dict | None, kind: str) -> str:
    """A run's cell: blank if the run lacks the row; a date, a lead time (with its share
    reached if below 100%) or a count with its 90% interval."""
    return {"date": date_cell, "lead": lead_cell, "count": count_cell}[kind](x)


def compare_text(data: dict, width: int = 110) -> str:
    """``mcengine compare``'s tables from :func:`compare_runs`'s data: the runs, then the
    frontier's date (median, 90% interval, share reached and the difference per run), and
    the medians of the lead times, diffusion dates, per-regime frontier dates and counts,
    each run beside the reference with its difference (Δ, run minus reference)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    names = [r["label"] for r in data["runs"]]
    ref = data["reference"]
    console = Console(width=width, record=True, file=stdio.StringIO(), color_system=None)
    say = lambda text="": console.print(text, markup=False)
    say(
        f"{len(names)} runs; the reference is {ref}; Δ: a run's median minus the reference's ('—' where either "
        "is not reached or is the start; blank where either lacks the row)"
    )
    runs = Table.grid(padding=(0, 2), pad_edge=True)
    runs.add_column(no_wrap=True)
    runs.add_column(overflow="fold")
    for r in data["runs"]:
        changed = ", ".join(f"{k}={_value(v)}" for k, v in (r["values"] or {}).items()) or " ".join(
            f"--set {o}" for o in r["overrides"]
        )
        where = "" if r["folder"] is None else f"; {r['folder']}" + ("" if r["point"] is None else f" #{r['point']}")
        runs.add_row(
            r["label"],
            f"{r['scenario']}{' ' + changed if changed else ''}: {r['trajectories']:,} trajectories, seed "
            f"{r['seed']}, {fmt(r['start'], 'g')}–{fmt(r['horizon'], 'g')}{where}",
        )
    console.print(runs)
    say()

    say("Frontier date (calendar year; '—': the quantile is not reached by the run's horizon; Δ in years)")
    frontier = Table(box=box.SIMPLE_HEAD)
    for col in ("threshold", "run", "median", "90% interval", "reached", "Δ median"):
        if col in ("threshold", "run"):
            frontier.add_column(col, overflow="fold")
        else:
            frontier.add_column(col, justify="right", no_wrap=True)
    for row in data["frontier_date"]:
        for i, n in enumerate(names):
            x = row["runs"][n]
            cells = (
                ["", "", ""]
                if x is None
                else [
                    date_text(x, "reached at start"),
                    f"{fmt(x['p5'], '.2f')} – {fmt(x['p95'], '.2f')}",
                    pct(x["p_reached"]),
                ]
            )
            diff = "" if i == 0 else _delta(row, n, ref, "date")
            frontier.add_row(row["threshold"] if i == 0 else "", n, *cells, diff, end_section=i == len(names) - 1)
    console.print(frontier)

    wide = [
        (
            "lead_time",
            "Median lead time (years after the frontier; 'at start': both have it at the start; the share reached "
            "by the horizon follows if below 100%; Δ in years)",
            "lead",
        ),
        (
            "diffusion",
            "Median diffusion date: when an access budget can reach each threshold (calendar year; 'at start': it "
            "can at the start; the share reached follows if below 100%; Δ in years)",
            "date",
        ),
        ("regime_frontier_date", "Frontier median date per regime (calendar year; Δ in years)", "date"),
        (
            "counts",
            "Organisations able to reach each threshold by 1 January of the year (median and 90% interval; Δ: "
            "difference of the medians, organisations)",
            "count",
        ),
    ]
    for table, title, kind in wide:
        rows = data[table]
        if not rows:
            continue
        keys = TABLES[table]
        heads = [[_key(k, row[k]) for k in keys] for row in rows]
        for j in range(len(rows) - 1, 0, -1):  # the first key once per group
            if rows[j][keys[0]] == rows[j - 1][keys[0]]:
                heads[j][0] = ""
        medians = {n: [_stat(row["runs"][n], kind) for row in rows] for n in names}
        deltas = {n: [_delta(row, n, ref, kind) for row in rows] for n in names[1:]}
        wide_as = lambda texts: max(map(len, texts)) + 3  # a column's width with its padding
        used = sum(wide_as([k, *(h[i] for h in heads)]) for i, k in enumerate(keys)) + wide_as([ref, *medians[ref]])
        for shown in _chunks(
            names[1:], lambda n: wide_as([n, *medians[n]]) + wide_as(["Δ", *deltas[n]]), width - used - 4
        ):
            say()
            say(title if shown[0] == names[1] else f"{title} (continued)")
            t = Table(box=box.SIMPLE_HEAD)
            for k in keys:
                t.add_column(k.replace("_usd", ""), no_wrap=True)
            t.add_column(ref, justify="right")
            for n in shown:
                t.add_column(n, justify="right")
                t.add_column("Δ", justify="right")
            for j, row in enumerate(rows):
                last = j == len(rows) - 1 or rows[j + 1][keys[0]] != row[keys[0]]
                values = [medians[ref][j]] + [c for n in shown for c in (medians[n][j], deltas[n][j])]
                t.add_row(*heads[j], *values, end_section=last and len(keys) > 1)
            console.print(t)
    if data["notes"]:
        say()
        say("Blank cells: rows that a run does not have")
        for line in _note_lines(data["notes"]):
            say(f"  {line}")
    return "\n".join(line.rstrip() for line in console.export_text().rstrip().splitlines())


def _chunks(names: list[str], width_of, room: int) -> list[list[str]]:
    """``names`` in order, as many to a table as fit in ``room`` columns (at least one)."""
    out: list[list[str]] = []
    used = room
    for n in names:
        if used + width_of(n) > room:
            out.append([])
            used = 0
        out[-1].append(n)
        used += width_of(n)
    return out


def _delta(row: dict, name: str, ref: str, kind: str) -> str:
    """Run ``name``'s difference in ``row`` for the terminal: years to 0.01 (organisations
    to 1 for counts), a signed zero when it rounds to zero; a dash where it is null (a
    median censored or at the start); blank where the run or the reference lacks the row."""
    if row["runs"][name] is None or row["runs"][ref] is None:
        return ""
    d, digits = row["diff_p50"][name], 0 if kind == "count" else 2
    return fmt(None if d is None else round(d, digits) + 0.0, f"+.{digits}f")


def _key(field: str, value) -> str:
    """A key field for the terminal: a budget in dollars, a year without a point."""
    if field == "budget_usd":
        return f"${value:,.0f}"
    return f"{value:g}" if field == "year" else str(value)


def _note_lines(notes: list[dict]) -> list[str]:
    """The notes in brief: one line per table and set of runs lacking rows."""
    grouped: dict[tuple, list[str]] = {}
    for n in notes:
        field = next(k for k in n if k not in ("table", "absent_from"))
        key = (n["table"], field, tuple(n["absent_from"]))
        grouped.setdefault(key, []).append(_key(field, n[field]))
    what = {"frontier_date": "frontier date", "regime_frontier_date": "regimes", "lead_time": "lead time"}
    return [
        f"{what.get(table, table)}: {field.replace('_usd', '')} {', '.join(values)} not in {', '.join(absent)}"
        for (table, field, absent), values in grouped.items()
    ]
