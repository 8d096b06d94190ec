"""The public face of mcengine: run a scenario, get distributions as Arrow tables."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from . import aggregate, engine, io
from .random import PRNG_IMPL
from .scenario import Scenario, load_scenario


@dataclasses.dataclass(frozen=True)
class Results:
    """Distributions from one run (see README for the columns).

    events: t_first (calendar year) and lead_time (years) per actor and threshold.
    access: diffusion_date (calendar year) per access budget and threshold.
    paths: fan charts (log10 units) per series and whole year.
    metadata: the provenance record stored in every file.
    """

    events: pa.Table
    access: pa.Table
    paths: pa.Table
    metadata: dict

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write events/access/paths.parquet into ``folder`` atomically."""
        return io.write_folder(Path(folder), {"events": self.events, "access": self.access, "paths": self.paths},
                               overwrite=overwrite)


def read_results(folder: str | Path) -> Results:
    """Read a results folder written by :meth:`Results.write`."""
    t = io.read_folder(Path(folder))
    return Results(t["events"], t["access"], t["paths"], io.read_metadata(t["events"]))


def run(scenario: Scenario | str | Path, trajectories: int = 100_000, seed: int = 0,
        chunk_size: int | None = None, progress: Callable[[int], None] | None = None) -> Results:
    """Sample ``trajectories`` joint trajectories of ``scenario`` and aggregate them.

    Same scenario and seed give the same results whatever ``chunk_size`` (trajectories per
    device call; default: chosen for the device). ``progress`` is called with the number
    of trajectories finished after each chunk.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer)) or trajectories < 1:
        raise ValueError(f"trajectories must be a whole number >= 1, got {trajectories!r}")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    started = _now()
    agg = engine.run(scenario, int(trajectories), seed, chunk_size, progress)
    meta = io.provenance(
        scenario=scenario.name, scenario_source=scenario.source, scenario_toml=scenario.text,
        start=scenario.start, horizon=scenario.horizon, steps_per_year=scenario.steps_per_year,
        seed=seed, trajectories=int(trajectories),
        chunk_size=int(chunk_size or engine.default_chunk_size(int(trajectories))), prng=PRNG_IMPL,
        resolution_years=float(agg.event_bins.width.min()),
        compile_seconds=round(agg.compile_seconds, 3), sample_seconds=round(agg.sample_seconds, 3),
        started=started, finished=_now(),
    )
    return _tables(scenario, agg, meta)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _tables(s: Scenario, agg: engine.Aggregates, meta: dict) -> Results:
    n = agg.trajectories
    ev = aggregate.summarise(agg.event_counts, n, agg.event_bins)
    actors, thresholds = [a.name for a in s.actors], s.thresholds
    T = len(thresholds)
    frontier = s.frontier_index
    first_offset = 0
    access_offset = len(actors) * T
    lead_offset = access_offset + len(s.access_budgets) * T

    def stats(rows, var, shift):
        rows["n"].append(n)
        for k, col in ev.items():
            rows[k].append(col[var] + shift if k not in ("p_reached",) else col[var])

    def new_rows(keys):
        return {k: [] for k in keys}

    stat_cols = ["n", "p_reached", "mean"] + [f"p{q}" for q in (1, 5, 10, 25, 50, 75, 90, 95, 99)]
    events = new_rows(["scenario", "regime", "actor", "rank", "threshold", "threshold_flop", "threshold_kind",
                       "metric"] + stat_cols)
    lead_index = 0
    for a, actor in enumerate(actors):
        for metric in ("t_first", "lead_time"):
            if metric == "lead_time" and a == frontier:
                continue
            for t, thr in enumerate(thresholds):
                for k, v in (("scenario", s.name), ("regime", None), ("actor", actor), ("rank", 1),
                             ("threshold", thr.name), ("threshold_flop", thr.flop), ("threshold_kind", thr.kind),
                             ("metric", metric)):
                    events[k].append(v)
                if metric == "t_first":
                    stats(events, first_offset + a * T + t, s.start)
                else:
                    stats(events, lead_offset + lead_index * T + t, 0.0)
        if a != frontier:
            lead_index += 1

    access = new_rows(["scenario", "regime", "budget_usd", "threshold", "threshold_flop", "threshold_kind"]
                      + stat_cols)
    for b, budget in enumerate(s.access_budgets):
        for t, thr in enumerate(thresholds):
            for k, v in (("scenario", s.name), ("regime", None), ("budget_usd", budget), ("threshold", thr.name),
                         ("threshold_flop", thr.flop), ("threshold_kind", thr.kind)):
                access[k].append(v)
            stats(access, access_offset + b * T + t, s.start)

    fan = aggregate.summarise(agg.fan_counts, n, agg.fan_bins, aggregate.FAN_QUANTILES)
    series = ["hardware", "algorithms"] + [f"budget:{a}" for a in actors] + [f"effective:{a}" for a in actors]
    paths = new_rows(["scenario", "regime", "series", "year", "mean", "p5", "p25", "p50", "p75", "p95"])
    n_years = int(np.floor(s.horizon - s.start + 1e-9))
    for i, name in enumerate(series):
        for m in range(n_years + 1):
            var = m * len(series) + i
            for k, v in (("scenario", s.name), ("regime", None), ("series", name), ("year", s.start + m)):
                paths[k].append(v)
            for k in ("mean", "p5", "p25", "p50", "p75", "p95"):
                paths[k].append(fan[k][var])

    return Results(io.table("events", events, meta), io.table("access", access, meta),
                   io.table("paths", paths, meta), meta)
