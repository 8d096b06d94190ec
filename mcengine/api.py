"""The public face of mcengine: run a scenario, get distributions as Arrow tables."""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path
from typing import Callable

import numpy as np

from . import jaxsetup

jaxsetup.configure()  # the same devices and compilation cache as the command line

from . import aggregate, engine, io, model  # noqa: E402
from .engine import sample_trajectories  # noqa: E402,F401 (re-exported)
from .errors import ArgumentError  # noqa: E402
from .kernels import DEFAULT_GENERATOR  # noqa: E402
from .random import PRNG_IMPL  # noqa: E402
from .results import Results, read_results  # noqa: E402,F401 (re-exported)
from .scenario import Scenario, load_scenario  # noqa: E402


def run(scenario: Scenario | str | Path, trajectories: int = 100_000, seed: int = 0,
        chunk_size: int | None = None, progress: Callable[[int], None] | None = None,
        checkpoint: engine.Checkpoint | None = None, keep_trajectories: bool | str | Path = False,
        generator: str = DEFAULT_GENERATOR, max_days: float | None = engine.MAX_DAYS) -> Results:
    """Sample ``trajectories`` joint trajectories of ``scenario`` and aggregate them.

    ``keep_trajectories`` (True, or a folder for the scratch file) also streams one row per
    trajectory to a Parquet file, written into the results folder by :meth:`Results.write`.

    Same scenario and seed give the same results whatever ``chunk_size`` (trajectories per
    device call; default: chosen for the device). ``progress`` is called with the number
    of trajectories finished after each chunk. ``generator`` picks the generator of the
    per-step shocks (``mcengine.kernels.GENERATORS``; recorded in the outputs).

    Raises ResourceError, before sampling, for more than ``engine.MAX_TRAJECTORIES``
    trajectories or a run that cannot fit in memory, and after timing its second chunk, for
    a run estimated to take more than ``max_days`` days (None: no limit).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    engine.check_trajectories(trajectories)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ArgumentError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    started = _now()
    writer = None
    if keep_trajectories:
        writer = _trajectory_writer(scenario, seed, int(trajectories), keep_trajectories, generator)
    try:
        agg = engine.run(scenario, int(trajectories), seed, chunk_size, progress, checkpoint,
                         on_chunk=writer.write if writer else None, generator=generator,
                         max_seconds=None if max_days is None else max_days * 86400.0)
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
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # as the other files (mkstemp makes it 0600)
    dates = [f"t_first:{r.label}:{t}" for r in m.layout.rows for t in m.layout.thresholds]
    diffusion = [f"diffusion_date:{io.usd_name(b)}:{t}" for b in m.layout.access_budgets for t in m.layout.thresholds]
    return io.TrajectoryWriter(Path(path), scenario.start, [r.name for r in scenario.regimes], list(m.inputs),
                               dates, diffusion, io.provenance(scenario=scenario.name, scenario_toml=scenario.text,
                                                               seed=seed, trajectories=n, prng=PRNG_IMPL,
                                                               generator=generator))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


STAT_COLUMNS = ["n", "p_reached", "mean"] + [io.quantile_column(q) for q in io.QUANTILES]


def _tables(s: Scenario, agg: engine.Aggregates, meta: dict) -> Results:
    lay = agg.model.layout
    frontier = lay.frontier
    t_first, leads = lay.block("t_first"), lay.block("lead_time")
    diffusion, public = lay.block("diffusion_date"), lay.block("t_public")
    counts_schema = io.counts_schema(lay.at_least)
    counts = {k: [] for k in counts_schema.names}
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

    n_stored = len(lay.stored_fan)
    for b, (regime, n) in enumerate(blocks):
        ev = {"n": n, **aggregate.summarise(agg.event_counts[b], n, agg.event_bins)}
        head = {"scenario": s.name, "regime": regime}
        for r, row in enumerate(lay.rows):
            channels = lay.channel_blocks(row) if r in lay.via else ()
            for t, thr in enumerate(s.thresholds):
                labels = {**head, "actor": row.actor, "rank": row.rank, "row_kind": row.kind, "threshold": thr.name,
                          "threshold_flop": thr.flop, "threshold_kind": thr.kind}
                add(events, {**labels, "metric": "t_first", "channel": None}, ev, t_first.index(row, t), s.start)
                for block in channels:
                    add(events, {**labels, "metric": "t_first", "channel": block.channel}, ev, block.index(row, t),
                        s.start)
                if row in public.keys:
                    add(events, {**labels, "metric": "t_public", "channel": None}, ev, public.index(row, t), s.start)
                if r != frontier:
                    add(events, {**labels, "metric": "lead_time", "channel": None}, ev, leads.index(row, t), 0.0)
                    if row.is_group:
                        add(events, {**labels, "metric": "warning_window", "channel": None}, ev, leads.index(row, t),
                            0.0)
        for budget in s.access_budgets:
            for t, thr in enumerate(s.thresholds):
                add(access, {**head, "budget_usd": budget, "threshold": thr.name, "threshold_flop": thr.flop,
                             "threshold_kind": thr.kind}, ev, diffusion.index(budget, t), s.start)
        cnt = aggregate.summarise_counts(agg.count_counts[b], n, agg.count_bins)
        flags = agg.flag_counts[b][:, 1] / n if n else np.full(agg.flag_counts.shape[1], np.nan)
        for basis in lay.count_bases:
            for t, thr in enumerate(s.thresholds):
                for year in range(lay.n_years + 1):
                    var = lay.count_index(basis, year, t)
                    row = {**head, "threshold": thr.name, "threshold_flop": thr.flop, "threshold_kind": thr.kind,
                           "basis": basis, "year": s.start + year, "n": n,
                           **{k: v[var] for k, v in cnt.items()},
                           **{f"p_at_least_{k}": flags[var * len(lay.at_least) + i] for i, k in enumerate(lay.at_least)}}
                    for k in counts_schema.names:
                        counts[k].append(row[k])
        fan = aggregate.summarise(agg.fan_counts[b], n, agg.fan_bins, io.FAN_QUANTILES)
        for series in lay.fan:
            for year in range(lay.n_years + 1):
                var = year * n_stored + series.index
                for k, v in (("scenario", s.name), ("regime", regime), ("series", series.name),
                             ("year", s.start + year)):
                    paths[k].append(v)
                paths["mean"].append(series.shift + series.sign * fan["mean"][var])
                for q in (5, 25, 50, 75, 95):
                    paths[f"p{q}"].append(series.shift + series.sign * fan[f"p{q if series.sign > 0 else 100 - q}"][var])

    return Results(io.table("events", events, meta), io.table("access", access, meta),
                   io.table("paths", paths, meta), meta, counts=io.table(counts_schema, counts, meta))
