"""The public face of mcengine: run a scenario, get distributions as Arrow tables."""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from . import aggregate, engine, io, model
from .kernels import DEFAULT_GENERATOR
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
    trajectories_file: Path | None = None  # per-trajectory rows, if kept (moved in by write)

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write events/access/paths.parquet (and trajectories.parquet if kept) into
        ``folder`` atomically."""
        files = {"trajectories.parquet": self.trajectories_file} if self.trajectories_file else None
        return io.write_folder(Path(folder), {"events": self.events, "access": self.access, "paths": self.paths},
                               overwrite=overwrite, files=files)


def read_results(folder: str | Path) -> Results:
    """Read a results folder written by :meth:`Results.write`."""
    t = io.read_folder(Path(folder))
    return Results(t["events"], t["access"], t["paths"], io.read_metadata(t["events"]))


def run(scenario: Scenario | str | Path, trajectories: int = 100_000, seed: int = 0,
        chunk_size: int | None = None, progress: Callable[[int], None] | None = None,
        checkpoint: engine.Checkpoint | None = None, keep_trajectories: bool | str | Path = False,
        generator: str = DEFAULT_GENERATOR) -> Results:
    """Sample ``trajectories`` joint trajectories of ``scenario`` and aggregate them.

    ``keep_trajectories`` (True, or a folder for the scratch file) also streams one row per
    trajectory to a Parquet file, written into the results folder by :meth:`Results.write`.

    Same scenario and seed give the same results whatever ``chunk_size`` (trajectories per
    device call; default: chosen for the device). ``progress`` is called with the number
    of trajectories finished after each chunk. ``generator`` picks the generator of the
    per-step shocks (``mcengine.kernels.GENERATORS``; recorded in the outputs).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer)) or trajectories < 1:
        raise ValueError(f"trajectories must be a whole number >= 1, got {trajectories!r}")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    started = _now()
    writer = None
    if keep_trajectories:
        writer = _trajectory_writer(scenario, seed, int(trajectories), keep_trajectories, generator)
    try:
        agg = engine.run(scenario, int(trajectories), seed, chunk_size, progress, checkpoint,
                         on_chunk=writer.write if writer else None, generator=generator)
    except BaseException:
        if writer:
            writer.close()
            writer.path.unlink(missing_ok=True)
        raise
    if writer:
        writer.close()
    meta = io.provenance(
        scenario=scenario.name, scenario_source=scenario.source, scenario_toml=scenario.text,
        start=scenario.start, horizon=scenario.horizon, steps_per_year=scenario.steps_per_year,
        seed=seed, trajectories=int(trajectories),
        chunk_size=agg.chunk_size, devices=agg.devices, processes=agg.processes, prng=PRNG_IMPL,
        generator=generator, resolution_years=float(agg.event_bins.width.min()),
        compile_seconds=round(agg.compile_seconds, 3), sample_seconds=round(agg.sample_seconds, 3),
        started=started, finished=_now(),
    )
    results = _tables(scenario, agg, meta)
    return dataclasses.replace(results, trajectories_file=writer.path if writer else None)


def _trajectory_writer(scenario: Scenario, seed: int, n: int, where, generator: str) -> io.TrajectoryWriter:
    import tempfile

    m, _ = model.build(scenario)
    folder = None if where is True else str(where)
    fd, path = tempfile.mkstemp(prefix=".mcengine-trajectories-", suffix=".parquet", dir=folder)
    os.close(fd)
    dates = [f"t_first:{r.label}:{t.name}" for r in m.rows for t in scenario.thresholds]
    diffusion = [f"diffusion_date:{io.usd_name(b)}:{t.name}" for b in scenario.access_budgets for t in scenario.thresholds]
    return io.TrajectoryWriter(Path(path), scenario.start, [r.name for r in scenario.regimes], list(m.inputs),
                               dates, diffusion, io.provenance(scenario=scenario.name, scenario_toml=scenario.text,
                                                               seed=seed, trajectories=n, prng=PRNG_IMPL,
                                                               generator=generator))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


STAT_COLUMNS = ["n", "p_reached", "mean"] + [f"p{round(q * 100)}" for q in aggregate.QUANTILES]


def _tables(s: Scenario, agg: engine.Aggregates, meta: dict) -> Results:
    m = agg.model
    T, R = len(s.thresholds), len(m.rows)
    frontier = m.config.frontier
    via = model.via_rows(m)
    access_at = R * T
    channel_at = access_at + m.n_access * T
    lead_at = channel_at + 2 * len(via) * T
    blocks = [(None, agg.trajectories)] + [(r.name, int(n)) for r, n in zip(s.regimes, agg.regime_counts)]
    events = {k: [] for k in io.SCHEMAS["events"].names}
    access = {k: [] for k in io.SCHEMAS["access"].names}
    paths = {k: [] for k in io.SCHEMAS["paths"].names}

    def add(table, labels, stats, var, shift):
        for k, v in labels.items():
            table[k].append(v)
        table["n"].append(stats["n"])
        for k in STAT_COLUMNS[1:]:
            table[k].append(stats[k][var] + (shift if k != "p_reached" else 0.0))

    # (name, kernel series, sign, shift): access capabilities and threshold costs are shifts
    # of H + A (or of H), so their quantiles are those of it, mirrored for costs.
    per_usd = 2 + 2 * R
    series = ([("hardware", 0, 1, 0.0), ("algorithms", 1, 1, 0.0)]
              + [(f"budget:{r.label}", 2 + i, 1, 0.0) for i, r in enumerate(m.rows)]
              + [(f"effective:{r.label}", 2 + R + i, 1, 0.0) for i, r in enumerate(m.rows)]
              + [(f"capability_at_budget:{io.usd_name(b)}", per_usd, 1, math.log10(b)) for b in s.access_budgets]
              + [(f"cost_to_reach:{t.name}", 0 if t.kind == "physical" else per_usd, -1, t.level)
                 for t in s.thresholds])
    n_series = per_usd + 1
    n_years = int(np.floor(m.span + 1e-9))
    for b, (regime, n) in enumerate(blocks):
        ev = {"n": n, **aggregate.summarise(agg.event_counts[b], n, agg.event_bins)}
        head = {"scenario": s.name, "regime": regime}
        for r, row in enumerate(m.rows):
            for t, thr in enumerate(s.thresholds):
                labels = {**head, "actor": row.actor, "rank": row.rank, "threshold": thr.name,
                          "threshold_flop": thr.flop, "threshold_kind": thr.kind}
                add(events, {**labels, "metric": "t_first", "channel": None}, ev, r * T + t, s.start)
                if r in via:
                    at = channel_at + 2 * via.index(r) * T
                    add(events, {**labels, "metric": "t_first", "channel": "trained"}, ev, at + t, s.start)
                    add(events, {**labels, "metric": "t_first", "channel": "released"}, ev, at + T + t, s.start)
                if r != frontier:
                    lead = lead_at + (r - (r > frontier)) * T + t
                    add(events, {**labels, "metric": "lead_time", "channel": None}, ev, lead, 0.0)
                    if row.is_group:
                        add(events, {**labels, "metric": "warning_window", "channel": None}, ev, lead, 0.0)
        for k, budget in enumerate(s.access_budgets):
            for t, thr in enumerate(s.thresholds):
                add(access, {**head, "budget_usd": budget, "threshold": thr.name, "threshold_flop": thr.flop,
                             "threshold_kind": thr.kind}, ev, access_at + k * T + t, s.start)
        fan = aggregate.summarise(agg.fan_counts[b], n, agg.fan_bins, aggregate.FAN_QUANTILES)
        for name, i, sign, shift in series:
            for year in range(n_years + 1):
                var = year * n_series + i
                for k, v in (("scenario", s.name), ("regime", regime), ("series", name), ("year", s.start + year)):
                    paths[k].append(v)
                paths["mean"].append(shift + sign * fan["mean"][var])
                for q in (5, 25, 50, 75, 95):
                    paths[f"p{q}"].append(shift + sign * fan[f"p{q if sign > 0 else 100 - q}"][var])

    return Results(io.table("events", events, meta), io.table("access", access, meta),
                   io.table("paths", paths, meta), meta)
