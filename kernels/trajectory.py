"""The simulation kernel: joint paths of hardware, algorithms and budgets, scanned over
time a block of steps at a time, reduced to first-crossing times on the fly.

Everything is in log10 units (OOM) and in years since the start (``tau``); nothing is
exponentiated except inside the soft cap, where the exponent is never positive. The kernel
is pure and vectorised over trajectories, which sit on the LAST axis of every array (so
the compiler vectorises along them); each trajectory's result depends on its own key and
numbers alone. The engine jits and chunks it.

Streams are the random processes: 0 = hardware H, 1 = algorithms A, then one budget
process per actor or group. Rows are what gets reported: each actor, and each reported
rank of each group (a group's ranks share their group's budget stream). Access rows are
buyers of a fixed budget at frontier hardware and algorithms.
"""

from __future__ import annotations

import itertools
import math
import zlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from . import counting, population
from .normals import DEFAULT_GENERATOR, block_draws, block_normals, fold_in
from .population import Population

LN10 = math.log(10.0)
MAX_BLOCK_STEPS = 16  # steps simulated together (a year if it has no more)


class Config(NamedTuple):
    """Static shape of a simulation (hashable; changing it recompiles).

    Attributes:
      n_steps: steps from start to horizon; crossings after the horizon are censored.
      steps_per_year: steps per calendar year (dt = 1 / steps_per_year years).
      n_years: whole years simulated (>= n_steps / steps_per_year); fan points are the
        n_years + 1 year boundaries from the start.
      row_stream: per row, the index of its budget stream (2 + actor or group number).
      hw_lag_steps, algo_lag_steps: per row, the hardware and algorithm lags in steps
        (may be fractional: read by linear interpolation).
      physical: per threshold, True where it compares physical compute (budget + hardware).
      buffer: past steps of H and A kept for lagged reads (> largest lag in steps).
      decaying: streams whose rate decays towards a long-run rate.
      jumps: per jump process, (stream, size family, most jumps counted per step).
      frontier: the frontier's row.
      catch_up: whether requirements fall for followers once the frontier reaches them.
      generator: the generator of the per-step shocks (``normals.GENERATORS``).
      groups: per group, (first row, number of rows): a group's ranks, consecutive rows
        that share everything but their initial budget.
      capped: per row, whether its budget has a cap (in some regime; else none is applied).
      populations: per group (in the order of ``groups``), its description as a
        population (:class:`population.Population`): members counted, entrants.
      threshold_ids: per threshold, a stable id (its count draws do not move when
        thresholds are added).
      delayed: per row, whether it has a publication delay.
      stream_ids: per stream, a stable id (of its scenario path): each stream, and each
        jump process, draws its shocks from a key of its own, so adding an actor does not
        move the shocks of the others.
    """

    n_steps: int
    steps_per_year: int
    n_years: int
    row_stream: tuple[int, ...]
    hw_lag_steps: tuple[float, ...]
    algo_lag_steps: tuple[float, ...]
    physical: tuple[bool, ...]
    buffer: int
    decaying: tuple[int, ...] = ()
    jumps: tuple[tuple[int, str, int], ...] = ()
    frontier: int = 0
    catch_up: bool = False
    generator: str = DEFAULT_GENERATOR
    groups: tuple[tuple[int, int], ...] = ()
    capped: tuple[bool, ...] = ()
    populations: tuple[Population, ...] = ()
    threshold_ids: tuple[int, ...] = ()
    delayed: tuple[bool, ...] = ()
    stream_ids: tuple[int, ...] = ()


class Params(NamedTuple):
    """The numbers of N trajectories, each field with the trajectories on its last axis.

    Per stream [S, N]: level0 (log10 units at start; 0 for budget streams, whose level is per
    row), rate0 and rate_inf (OOM/yr at the start and in the long run), decay (years; inf:
    none), vol (OOM/sqrt(yr)). Per jump process [J, N]: jump_rate (per year) and the size
    distribution's parameters jump_a, jump_b (OOM). Per row [R, N]: b0 and cap (log10 $;
    cap = +inf: none), penalty (OOM). thresholds [T, N] (log10 FLOP), access [K, N] (log10
    $), catch_up [N] (OOM/yr); delay [R, N] (years from affording a run to a public model;
    0 where none); members: per group, its :class:`population.Members`.
    """

    level0: jax.Array
    rate0: jax.Array
    rate_inf: jax.Array
    decay: jax.Array
    vol: jax.Array
    jump_rate: jax.Array
    jump_a: jax.Array
    jump_b: jax.Array
    b0: jax.Array
    cap: jax.Array
    penalty: jax.Array
    thresholds: jax.Array
    access: jax.Array
    catch_up: jax.Array
    delay: jax.Array | None = None
    members: tuple = ()


class Outputs(NamedTuple):
    """What the trajectories report (trajectories on the last axis, N).

    t_first: [rows, thresholds, N] years from start to the first crossing by the row's own
      compute (the "trained" channel), NaN if censored.
    diffusion: [access budgets, thresholds, N] the same for a buyer of each access budget at
      frontier hardware and algorithms (the access effect).
    fan: the fan-chart values at each whole year from the start (:class:`Fan`).
    counts: [whole years + 1, thresholds, N] the number of organisations (actors and every
      group member) whose own compute has reached each threshold by each whole year from
      the start (float32, whole numbers).
    public_counts: the same by each actor's and group's publication date (t_first +
      delay), or [0, thresholds, N] if no row has a delay.
    """

    t_first: jax.Array
    diffusion: jax.Array
    fan: Fan
    counts: jax.Array | None = None
    public_counts: jax.Array | None = None


class Fan(NamedTuple):
    """Fan-chart values at each whole year from the start, [n_years + 1, ..., N]: hardware
    H (log10 FLOP/$), algorithms A (OOM), each row's capped budget (log10 $) and effective
    compute (log10 FLOP) [years, rows, N], and H + A (log10 effective FLOP per $ at the
    frontier: an access budget's capability and a threshold's cost to reach are fixed
    shifts of it, or of H for physical thresholds, so they are not stored)."""

    hardware: jax.Array
    algorithms: jax.Array
    budget: jax.Array
    effective: jax.Array
    per_usd: jax.Array


def soft_cap(uncapped, cap):
    """``cap - log10(1 + 10**(cap - uncapped))``, stably (log10 $); cap = +inf is no cap.
    (log, not log1p: where they differ the term is below 1e-7 OOM, under float32's
    resolution of the result.)"""
    x = cap - uncapped
    softplus10 = jnp.maximum(x, 0.0) + jnp.log(1.0 + jnp.exp(-jnp.abs(x) * LN10)) * (1.0 / LN10)
    return jnp.where(jnp.isinf(cap), uncapped, cap - softplus10)


def trend(p: Params, decaying: tuple[int, ...], tau):
    """Deterministic part of every stream at times ``tau`` (years, shape [n]): level0 plus
    the integral of ``r(t) = r_inf + (r0 - r_inf) exp(-t / decay)``; shape [n, streams, N]."""
    tau = tau[:, None, None]
    y = p.level0 + p.rate0 * tau
    if decaying:
        on = jnp.asarray([i in decaying for i in range(p.level0.shape[0])])[:, None] & jnp.isfinite(p.decay)
        t_dec = jnp.where(on, p.decay, 1.0)
        gap = tau + t_dec * jnp.expm1(-tau / t_dec)  # tau - T (1 - exp(-tau/T))
        y = y + jnp.where(on, (p.rate_inf - p.rate0) * gap, 0.0)
    return y


def jump_sum(z, rate, a, b, family: str, k_max: int, dt: float):
    """Total jump size (OOM) of one process in each step: N ~ Poisson(rate dt) jumps (at
    most k_max; k_max is chosen so that more is below 1e-12), each of a size from
    ``family`` with parameters (a, b) [N]. ``z`` [draws, steps, N] holds the standard
    normals for this process: z[0] decides N, the rest the sizes. Returns [steps, N]."""
    u = jsp.ndtr(z[0])
    mean = rate * dt
    term = jnp.exp(-mean)
    cdf, n = term, jnp.zeros_like(u)
    for k in range(1, k_max + 1):  # n = number of k with P(N <= k-1) < u
        n = n + (u > cdf).astype(jnp.float32)
        term = term * mean / k
        cdf = cdf + term
    if family == "fixed":
        return n * a
    if family == "normal":  # a sum of n normals is normal: exact with one draw
        return n * a + jnp.sqrt(n) * b * z[1]
    sizes = 10.0 ** (a + b * z[1:]) if family == "lognormal" else a + (b - a) * jsp.ndtr(z[1:])
    counts = jnp.arange(k_max, dtype=jnp.float32).reshape((-1,) + (1,) * n.ndim)
    return jnp.sum(jnp.where(counts < n, sizes, 0.0), axis=0)


def jump_draws(family: str, k_max: int) -> int:
    """Standard normals one jump process uses per step."""
    return 1 + {"fixed": 0, "normal": 1}.get(family, k_max)


def _by_row(keys, column):
    """[n, rows, N] whose row r is ``column(keys[r])`` [n, N]: one column per run of equal
    consecutive keys (a group's ranks share theirs), broadcast over the run."""
    runs = [(key, sum(1 for _ in group)) for key, group in itertools.groupby(keys)]
    parts = []
    for key, count in runs:
        col = column(key)[:, None]
        parts.append(col if count == 1 else jnp.broadcast_to(col, (col.shape[0], count, col.shape[2])))
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)


def _lagged(window, n: int, lag_steps):
    """Values of a factor ``lag_steps`` (static, per row; may be fractional) before each of
    the last ``n`` steps of ``window`` [past steps + n, N], linearly interpolated between
    whole steps; shape [n, rows, N]. Every offset is a static slice."""
    past = window.shape[0] - n
    tap = lambda o: window[past - o : past - o + n]

    def column(s):
        w = math.floor(s)
        f = s - w
        return tap(w) if f == 0 else (1.0 - f) * tap(w) + f * tap(w + 1)

    return _by_row(lag_steps, column)


def _running_sum(x):
    """Cumulative sum over the first axis, added in step order (a fixed order, so every
    trajectory's sums are the same bits whatever the chunk or device)."""
    out = [x[0]]
    for i in range(1, x.shape[0]):
        out.append(out[-1] + x[i])
    return jnp.stack(out)


def _first_crossings(vals, before, t_first, thresholds, first_step, valid, dt):
    """Update ``t_first`` [rows, T, N] (years; NaN: not yet) with the first crossing in a
    block of steps: ``vals`` [n, rows, 1 or T, N] are the values at steps first_step + 1 ..
    first_step + n, ``before`` [rows, 1 or T, N] the value one step before the block, and
    ``valid`` [n] masks steps past the horizon. The first crossing is the first step
    whose running maximum reaches the threshold; it is dated by linear interpolation from
    the step before (below the threshold, as nothing crossed earlier)."""
    n = vals.shape[0]
    reach = jnp.where(valid[:, None, None, None], vals, -jnp.inf)
    peak = [reach[0]]  # running maximum over the block's steps
    for i in range(1, n):
        peak.append(jnp.maximum(peak[-1], reach[i]))
    below = jnp.sum(jnp.stack(peak) < thresholds, axis=0, dtype=jnp.int32)  # steps before the crossing
    at = jnp.minimum(below, n - 1)
    v1 = jnp.take_along_axis(vals, at[None], axis=0)[0]
    v0 = jnp.where(below == 0, before, jnp.take_along_axis(vals, jnp.maximum(at - 1, 0)[None], axis=0)[0])
    date = (first_step + below).astype(jnp.float32) + _crossing_fraction(thresholds - v0, v1 - v0)
    return jnp.where(jnp.isnan(t_first) & (below < n), date * dt, t_first)


def _crossing_fraction(shortfall, rise):
    """Where within its step a crossing happens (in [0, 1]), by linear interpolation: the
    value was ``shortfall`` below the level at the step before and rose by ``rise`` over
    the step. Every crossing (actors in the loop, families after it) is dated by this one
    rule. A value that did not rise (a touch at float32 resolution, which the loop decided
    in its own arithmetic) is dated at the end of the step, never 0/0."""
    return jnp.where(rise > 0, jnp.clip(shortfall / rise, 0.0, 1.0), 1.0)


def _steps_below(vals, peak, levels, valid):
    """(steps [m, T, N] int32, peak): how many of a block's valid steps leave the running
    maximum of ``vals`` [n, 1, 1 or T, N] below ``levels`` [m, T or 1, N], given the
    running maximum ``peak`` [1, 1 or T, N] before the block (returned updated). Summed
    over all blocks, it is the step before the first crossing (all steps: none)."""
    below = jnp.zeros(jnp.broadcast_shapes(vals.shape[1:], levels.shape), jnp.int32)
    for i in range(vals.shape[0]):
        peak = jnp.maximum(peak, jnp.where(valid[i], vals[i], -jnp.inf))
        below = below + ((peak < levels) & valid[i])
    return below, peak


def inverse_soft_cap(capped, cap):
    """The uncapped budget whose soft cap is ``capped`` (log10 $): ``cap - log10(10**(cap -
    capped) - 1)``, stably; +inf at or above the cap (out of reach); cap = +inf is no cap."""
    x = cap - capped
    return jnp.where(x > 0, capped - jnp.log(-jnp.expm1(-x * LN10)) * (1.0 / LN10), jnp.inf)


class _FamilySpec(NamedTuple):
    """Static description of a family: rows that are one series shifted by a per-row
    offset, a group's ranks (offset: each rank's initial budget) or the access budgets
    (offset: the budget; no stream, lag, penalty or cap). ``first`` is the family's first
    row (None: the access budgets), ``size`` its rows, ``stream`` its budget stream (None:
    none), lags in steps; whether it has a penalty, a cap and catch-up."""

    first: int | None
    size: int
    stream: int | None
    hw_lag: float
    algo_lag: float
    penalised: bool
    capped: bool
    boosted: bool
    group: int | None = None  # the group's number (None: the access budgets)
    row_points: tuple[int, ...] | None = None  # per reported row, its member (-1: none); None: the same


class _Family(NamedTuple):
    """A family's spec and numbers: offset [m, N] (log10 $), penalty [N] (OOM) or None,
    cap [N] (log10 $) or None."""

    spec: _FamilySpec
    offset: jax.Array
    penalty: jax.Array | None
    cap: jax.Array | None


class Plan(NamedTuple):
    """Everything static the kernel derives from the config and the shapes of the params:
    which rows have a path of their own (``own``: actors) and which are families (group
    ranks, access budgets), the threshold kinds, and the block layout of the time loop."""

    config: Config
    n_streams: int
    n_rows: int
    n_access: int
    n_thresholds: int
    dt: float
    sqrt_dt: float
    width: int  # steps per block
    n_blocks: int
    n_draws: int  # standard normals per step: one per stream, then each jump process's
    jump_width: tuple[int, ...]
    lane_ids: tuple[int, ...]  # per draw of a step, the stable id its key is folded with
    kinds: tuple[tuple[np.ndarray, bool], ...]  # (threshold indices, physical) per kind present
    families: tuple[_FamilySpec, ...]  # group families in row order, then the access budgets
    own: tuple[int, ...]  # rows with a path of their own, in row order
    own_capped: bool
    frontier: int  # the frontier's index among the own rows


class _Count(NamedTuple):
    """A family's loop state for one kind of threshold: steps below [m, T_kind, N] (int32),
    the running maximum of its value, and whether each row had reached it at the start."""

    below: jax.Array
    peak: jax.Array
    at_start: jax.Array


class State(NamedTuple):
    """The time loop's state after a block.

    noise [S, N]: the shocks summed so far; hist_h, hist_a [buffer, N]: the last values of
    H and A (for lagged reads); last_eff, last_phys [own rows, N]: the own rows' compute at
    the block's last step; t_first [own rows, T, N]: their first crossings so far (years;
    NaN: not yet); counts: per family, per kind of threshold, its :class:`_Count`; draws:
    the next block's standard normals; block: the next block's index (int32). (The index is
    carried, not scanned over: a scanned index is a dynamic slice in the loop body, and
    XLA's CPU emitter then leaves every fusion that reads it unvectorised.)"""

    noise: jax.Array
    hist_h: jax.Array
    hist_a: jax.Array
    last_eff: jax.Array
    last_phys: jax.Array
    t_first: jax.Array
    counts: tuple
    draws: jax.Array
    block: jax.Array


class Record(NamedTuple):
    """What a block (or the start) leaves for after the loop: ``fan``, the values the fan
    chart needs at the block's year (see :func:`_fan_record`), and ``series``, per family
    its (budget stream or None, physical shift, effective shift) at every step."""

    fan: tuple
    series: list


def plan(config: Config, params: Params) -> Plan:
    """The static plan of a simulation with ``config`` and numbers shaped like ``params``."""
    c, p = config, params
    n_streams = p.level0.shape[0]
    n_rows = p.b0.shape[0]
    n_access = p.access.shape[0]
    n_thresholds = len(c.physical)
    capped_rows = c.capped or (True,) * n_rows
    families = []
    for g, (first, m) in enumerate(c.groups):
        pop = c.populations[g] if c.populations else None
        size, row_points = m, None
        if pop is not None and pop.points != pop.ranks:  # members sampled are not the reported ranks
            size = len(pop.points)
            row_points = tuple(pop.points.index(k) if k in pop.points else -1 for k in pop.ranks)
        families.append(
            _FamilySpec(
                first,
                size,
                c.row_stream[first],
                c.hw_lag_steps[first],
                c.algo_lag_steps[first],
                True,
                capped_rows[first],
                c.catch_up,
                g,
                row_points,
            )
        )
    if n_access:
        families.append(_FamilySpec(None, n_access, None, 0.0, 0.0, False, False, False))
    in_family = {r for first, m in c.groups for r in range(first, first + m)}
    own = tuple(r for r in range(n_rows) if r not in in_family)
    kinds = [(np.flatnonzero(np.asarray(c.physical) == phys), phys) for phys in (False, True)]
    jump_width = tuple(jump_draws(sizes, k) for _, sizes, k in c.jumps)
    width = min(c.steps_per_year, MAX_BLOCK_STEPS)
    stream_ids = c.stream_ids or tuple(range(n_streams))
    lane_ids = stream_ids + tuple(
        zlib.crc32(f".jumps#{m}".encode(), stream_ids[stream])
        for (stream, _, _), w in zip(c.jumps, jump_width)
        for m in range(w)
    )
    return Plan(
        config=c,
        n_streams=n_streams,
        n_rows=n_rows,
        n_access=n_access,
        n_thresholds=n_thresholds,
        dt=1.0 / c.steps_per_year,
        sqrt_dt=math.sqrt(1.0 / c.steps_per_year),
        width=width,
        n_blocks=-(-c.n_years * c.steps_per_year // width),
        n_draws=n_streams + sum(jump_width),
        jump_width=jump_width,
        lane_ids=lane_ids,
        kinds=tuple((idx, phys) for idx, phys in kinds if idx.size),
        families=tuple(families),
        own=own,
        own_capped=any(capped_rows[r] for r in own),
        frontier=own.index(c.frontier),
    )


def _families(pl: Plan, p: Params) -> list[_Family]:
    """Each family's spec with its numbers."""
    out = []
    for f in pl.families:
        if f.first is None:
            out.append(_Family(f, p.access, None, None))
        else:
            offset = (
                p.members[f.group].offsets if p.members and f.group is not None else p.b0[f.first : f.first + f.size]
            )
            out.append(_Family(f, offset, p.penalty[f.first], p.cap[f.first] if f.capped else None))
    return out


def _rows_of(f: _Family, x):
    """A group family's values [members, ...] for its reported rows [rows, ...] (NaN where a
    row has no sampled member)."""
    if f.spec.row_points is None:
        return x
    nan = jnp.full(x.shape[1:], jnp.nan, x.dtype)
    return jnp.stack([x[i] if i >= 0 else nan for i in f.spec.row_points])


def _of_own(pl: Plan, x):
    """The own rows of a per-row array [rows, ...]."""
    return x if len(pl.own) == pl.n_rows else x[np.asarray(pl.own)]


def _in_row_order(pl: Plan, parts, axis=0):
    """Rows in the scenario's order along ``axis`` from [own rows, each group family's]."""
    if len(pl.own) == pl.n_rows:
        return parts[0]
    pieces, done, starts = [], 0, {f.first: part for f, part in zip(pl.families, parts[1:]) if f.first is not None}
    for r in range(pl.n_rows):
        if r in starts:
            pieces.append(starts[r])
        elif r in pl.own:
            pieces.append(jax.lax.slice_in_dim(parts[0], done, done + 1, axis=axis))
            done += 1
    return jnp.concatenate(pieces, axis=axis)


def _own_levels(pl: Plan, p: Params, s, win_h, win_a):
    """Capped budgets, effective and physical compute [n, own rows, N] at n steps, from
    all streams [n, S, N] and the windows of past values of H and A."""
    c = pl.config
    n = s.shape[0]
    own_stream = tuple(c.row_stream[r] for r in pl.own)
    if own_stream == tuple(range(2, 2 + len(pl.own))):  # a stream per row, in order
        streams = s[:, 2 : 2 + len(pl.own)]
    else:
        streams = _by_row(own_stream, lambda i: s[:, i])
    u = _of_own(pl, p.b0) + streams
    capped = soft_cap(u, _of_own(pl, p.cap)) if pl.own_capped else u
    phys = capped + (_lagged(win_h, n, tuple(c.hw_lag_steps[r] for r in pl.own)) - _of_own(pl, p.penalty))
    return capped, phys + _lagged(win_a, n, tuple(c.algo_lag_steps[r] for r in pl.own)), phys


def _family_series(f: _Family, s, win_h, win_a):
    """(budget stream or None, physical shift, effective shift) [n, N] of a family at
    the last n steps of the windows: a row's physical compute is its capped budget
    (offset + budget stream) plus the physical shift (lagged, penalised hardware)."""
    n = s.shape[0]
    hw = _lagged(win_h, n, (f.spec.hw_lag,))[:, 0]
    if f.penalty is not None:
        hw = hw - f.penalty
    stream = None if f.spec.stream is None else s[:, f.spec.stream]
    return stream, hw, hw + _lagged(win_a, n, (f.spec.algo_lag,))[:, 0]


def _family_values(f: _Family, series, phys: bool, thr, boost):
    """(values [n, 1, 1 or T, N], levels [m, T or 1, N]): row k of family ``f`` has
    reached threshold X [T, N] at a step where the value reaches its level, given the
    catch-up ``boost`` [n, T, N] or None. Uncapped: the value is the shared series, the
    level X - offset_k. Capped: the value is minus the uncapped budget a row needs
    beyond its offset (through the inverse soft cap), the level minus offset_k."""
    budget, phys_shift, eff_shift = series
    shift = phys_shift if phys else eff_shift
    if f.cap is None:
        v = (shift if budget is None else budget + shift)[:, None, None]
        return (v if boost is None else v + boost[:, None]), thr[None] - f.offset[:, None]
    need = thr - shift[:, None]  # [n, T, N]
    if boost is not None:
        need = need - boost
    return (budget[:, None] - inverse_soft_cap(need, f.cap))[:, None], -f.offset[:, None]


def _catch_up(pl: Plan, p: Params, step, t_f):
    """Catch-up (OOM) at ``step`` (int) given the frontier's dates ``t_f`` [T, N] (years;
    NaN: not yet), broadcast together."""
    return p.catch_up * jnp.maximum(jnp.nan_to_num(step.astype(jnp.float32) * pl.dt - t_f, nan=0.0), 0.0)


def _crossings(pl: Plan, p: Params, t_first, now, before, first, k, valid):
    """(``t_first`` of the own rows [rows, T, N] updated with the block's crossings, and
    per kind the catch-up at the block's steps [n, T_kind, N] or None); ``now`` [n, rows,
    N] and ``before`` [rows, N] are their (effective, physical) compute at the block's
    steps and one step before it."""
    boosts = []
    f = pl.frontier
    boosted = jnp.arange(len(pl.own)) != f  # all but the frontier
    for idx, is_phys in pl.kinds:
        thr = p.thresholds[idx]
        vals, prev = now[is_phys][:, :, None], before[is_phys][:, None]
        whole = idx.size == pl.n_thresholds
        tf = t_first if whole else t_first[:, idx]
        boost = None
        if pl.config.catch_up and not is_phys:  # the frontier is never boosted: its dates come first
            t_f = _first_crossings(vals[:, f : f + 1], prev[f : f + 1], tf[f : f + 1], thr, first, valid, pl.dt)[0]
            boost = _catch_up(pl, p, jnp.concatenate([first[None], k])[:, None, None], t_f)  # [n + 1, T, N]
            on = boosted[:, None, None]
            vals = vals + jnp.where(on, boost[1:, None], 0.0)
            prev, tf = prev + jnp.where(on, boost[0], 0.0), tf.at[f].set(t_f)
            boost = boost[1:]
        tf = _first_crossings(vals, prev, tf, thr, first, valid, pl.dt)
        t_first = tf if whole else t_first.at[:, idx].set(tf)
        boosts.append(boost)
    return t_first, boosts


def _fan_record(fams: list[_Family], h, a, capped, eff, series):
    """What the fan chart needs from one step: (H, A [N], the own rows' capped budgets
    and effective compute [own rows, N], per group family its rows' capped budgets [m, N]
    and its effective shift [N])."""
    groups = [
        (_rows_of(f, f.offset + budget if f.cap is None else soft_cap(f.offset + budget, f.cap)), eff_shift)
        for f, (budget, _, eff_shift) in zip(fams, series)
        if f.spec.stream is not None
    ]
    return h, a, capped, eff, groups


def _fan(pl: Plan, h, a, capped, eff, groups) -> Fan:
    """Fan-chart values from fan records stacked over the years."""
    cap_g = [capped] + [budget for budget, _ in groups]
    eff_g = [eff] + [budget + shift[:, None] for budget, shift in groups]
    return Fan(h, a, _in_row_order(pl, cap_g, axis=1), _in_row_order(pl, eff_g, axis=1), h + a)


def init(pl: Plan, p: Params, lanes) -> tuple[State, Record]:
    """The loop state at the start and the start's record (``lanes``: the draw lanes' keys,
    :func:`_lane_keys`). Before the start each factor is extended backwards along its trend
    (no noise)."""
    c = pl.config
    N = p.level0.shape[1]
    past = jnp.arange(1 - c.buffer, 1, dtype=jnp.float32)[:, None] * pl.dt
    hist_h = p.level0[0] + p.rate0[0] * past
    hist_a = p.level0[1] + p.rate0[1] * past
    s = trend(p, c.decaying, jnp.zeros((1,), jnp.float32))
    h, a = s[:, 0], s[:, 1]
    capped, eff, phys = _own_levels(pl, p, s, hist_h, hist_a)
    fams = _families(pl, p)
    series = [_family_series(f, s, hist_h, hist_a) for f in fams]
    physical = jnp.asarray(c.physical)[:, None]  # [T, 1]
    at_start = jnp.where(physical, phys[0][:, None], eff[0][:, None])  # [own rows, T, N]
    t_first = jnp.where(at_start >= p.thresholds, 0.0, jnp.nan).astype(jnp.float32)
    counts = []
    for f, fs in zip(fams, series):
        per_kind = []
        for idx, is_phys in pl.kinds:
            boost = jnp.zeros((1, idx.size, N)) if f.spec.boosted and not is_phys else None  # no catch-up yet
            vals, levels = _family_values(f, fs, is_phys, p.thresholds[idx], boost)
            reached = vals[0] >= levels
            per_kind.append(_Count(jnp.zeros(reached.shape, jnp.int32), vals[0], reached))
        counts.append(tuple(per_kind))
    state = State(
        jnp.zeros((pl.n_streams, N), jnp.float32),
        hist_h,
        hist_a,
        eff[0],
        phys[0],
        t_first,
        tuple(counts),
        block_draws(lanes, 0, pl.width, c.generator),
        jnp.int32(0),
    )
    start = Record(
        _fan_record(
            fams, h[0], a[0], capped[0], eff[0], [tuple(x if x is None else x[0] for x in fs) for fs in series]
        ),
        series,
    )
    return state, start


def _materialised(x, token):
    """``x`` (arrays) itself, written to memory once on a CPU. XLA:CPU copies a producer made
    of cheap operations into each of its readers, and ``lax.optimization_barrier`` does not
    stop it; the own rows' levels were so evaluated inside the crossings' gathers, per
    gathered element and unvectorised (the peer scenario without lags sampled 1.6-1.9x
    slower than with them, where XLA happened to keep the levels apart). The result of a
    conditional is materialised: ``token`` is an int known only at run time and >= 0, so the
    other branch never runs. Elsewhere ``x`` is returned as it is."""
    nan = lambda y: jax.tree.map(lambda z: jnp.full_like(z, jnp.nan), y)
    keep = lambda y: jax.lax.cond(token >= 0, lambda v: v, nan, y)
    return jax.lax.platform_dependent(x, cpu=keep, default=lambda y: y)


def _lane_keys(pl: Plan, keys):
    """The keys of every draw lane of every trajectory, lane-major [lanes * N]: lane l of
    trajectory n is ``fold_in(keys[n], lane_ids[l])``."""
    return fold_in(keys, np.asarray(pl.lane_ids, np.uint32)[:, None]).reshape(-1)


def step(pl: Plan, p: Params, lanes):
    """The loop body ``block(state, _) -> (state, record)``: block b's shocks (b =
    ``state.block``; block b of each lane's generator, ``lanes`` their keys, shaped (steps, lanes)), their running
    sum on top of the noise so far gives every step of the block at once; first crossings
    of the own rows are found for the whole block, and each family counts its steps below
    each threshold."""
    c = pl.config
    width, spy = pl.width, c.steps_per_year
    block_steps = jnp.arange(1, width + 1, dtype=jnp.int32)
    fams = _families(pl, p)

    def block(state: State, _):
        b = state.block
        z = block_normals(state.draws, (width,)).reshape(width, pl.n_draws, -1)
        shock = p.vol * pl.sqrt_dt * z[:, : pl.n_streams]
        at = pl.n_streams
        for j, ((stream, sizes, k_max), w) in enumerate(zip(c.jumps, pl.jump_width)):
            jumps = jump_sum(
                jnp.moveaxis(z[:, at : at + w], 1, 0), p.jump_rate[j], p.jump_a[j], p.jump_b[j], sizes, k_max, pl.dt
            )
            shock = shock.at[:, stream].add(jumps)
            at += w
        # Levels are trend + accumulated noise: the trend is evaluated afresh at every step
        # (not summed), so float32 rounding does not build up over thousands of steps.
        path = state.noise + _running_sum(shock)
        first = b * width
        k = first + block_steps
        valid = k <= c.n_steps
        s = trend(p, c.decaying, k.astype(jnp.float32) * pl.dt) + path
        h, a = s[:, 0], s[:, 1]
        win_h, win_a = jnp.concatenate([state.hist_h, h]), jnp.concatenate([state.hist_a, a])
        capped, eff, phys = _own_levels(pl, p, s, win_h, win_a)
        eff, phys = _materialised((eff, phys), b)
        series = [_family_series(f, s, win_h, win_a) for f in fams]
        t_first, boosts = _crossings(
            pl, p, state.t_first, (eff, phys), (state.last_eff, state.last_phys), first, k, valid
        )
        counts = []
        for f, fs, per_kind in zip(fams, series, state.counts):
            new = []
            for (idx, is_phys), boost, cnt in zip(pl.kinds, boosts, per_kind):
                vals, levels = _family_values(f, fs, is_phys, p.thresholds[idx], boost if f.spec.boosted else None)
                steps, peak = _steps_below(vals, cnt.peak, levels, valid)
                new.append(_Count(cnt.below + steps, peak, cnt.at_start))
            counts.append(tuple(new))
        if width == spy:  # a block is a year: its last step is the year's end
            pick = lambda x: x[-1]
        else:  # the block's step at the next whole year (used only if within the block)
            i = jnp.minimum((first // spy + 1) * spy - first - 1, width - 1)
            pick = lambda x: jax.lax.dynamic_index_in_dim(x, i, keepdims=False)
        state = State(
            path[-1],
            win_h[width:],
            win_a[width:],
            eff[-1],
            phys[-1],
            t_first,
            tuple(counts),
            block_draws(lanes, b + 1, width, c.generator),
            b + 1,
        )
        return state, Record(_fan_record(fams, *jax.tree.map(pick, (h, a, capped, eff, series))), series)

    return block


def _family_dates(pl: Plan, p: Params, f: _Family, paths, per_kind, t_f):
    """A family's first crossings [m, T, N] (years; NaN: censored) from its steps below
    each threshold and its series at every step from the start ``paths`` [steps + 1,
    N]: dated as an actor's, by interpolating compute between the step before the
    crossing and the crossing step."""
    N = f.offset.shape[-1]
    t_first = jnp.full((f.offset.shape[0], pl.n_thresholds, N), jnp.nan, jnp.float32)
    for (idx, is_phys), cnt in zip(pl.kinds, per_kind):
        thr = p.thresholds[idx]
        below = cnt.below
        at = jnp.minimum(below, paths[1].shape[0] - 2)

        def margin(i):  # compute over the threshold at step i [m, T, N]
            budget, phys_shift, eff_shift = (
                None if x is None else jnp.take_along_axis(x[:, None, None], i[None], 0)[0] for x in paths
            )
            over = (phys_shift if is_phys else eff_shift) - thr
            if f.spec.boosted and not is_phys:
                over = over + _catch_up(pl, p, i, t_f[idx])
            if budget is None:
                return over + f.offset[:, None]
            u = f.offset[:, None] + budget
            return over + (u if f.cap is None else soft_cap(u, f.cap))

        m0, m1 = margin(at), margin(at + 1)
        date = (below.astype(jnp.float32) + _crossing_fraction(-m0, m1 - m0)) * pl.dt
        t_first = t_first.at[:, idx].set(
            jnp.where(cnt.at_start, 0.0, jnp.where(below < pl.config.n_steps, date, jnp.nan))
        )
    return t_first


def finalize(pl: Plan, p: Params, keys, state: State, start: Record, records: Record) -> Outputs:
    """The outputs from the final loop state, the start's record and the blocks' records
    (stacked over blocks): fan values at every whole year, the families' crossings, dated
    from their series at every step, and the groups' members counted (``keys``: the
    trajectories' keys, for the count draws)."""
    c = pl.config
    N = p.level0.shape[1]
    fams = _families(pl, p)
    years = np.arange(1, c.n_years + 1) * c.steps_per_year
    whole = pl.width == c.steps_per_year
    at_years = lambda first, ys: jnp.concatenate([first[None], ys if whole else ys[(years - 1) // pl.width]])
    fan_values = _fan(pl, *jax.tree.map(at_years, start.fan, records.fan))
    t_f = state.t_first[pl.frontier]
    # each family's series at every step from the start: [steps + 1, N]
    paths = jax.tree.map(lambda first, ys: jnp.concatenate([first, ys.reshape(-1, N)]), start.series, records.series)
    dates = [_family_dates(pl, p, f, path, per_kind, t_f) for f, path, per_kind in zip(fams, paths, state.counts)]
    access = [d for f, d in zip(fams, dates) if f.spec.first is None]
    diffusion = access[0] if access else jnp.zeros((0, pl.n_thresholds, N), jnp.float32)
    groups, counts = _populations(pl, p, keys, fams, paths, dates, state)
    return Outputs(
        t_first=_in_row_order(pl, [state.t_first] + groups),
        diffusion=diffusion,
        fan=fan_values,
        counts=counts[0],
        public_counts=counts[1],
    )


def _need(pl: Plan, p: Params, f: _Family, path, t_f):
    """The offset a member of group family ``f`` needs to reach each threshold at every step
    [steps + 1, T, N] (log10 $; +inf: out of reach under the cap), from its stored series."""
    budget, phys_shift, eff_shift = path
    steps = jnp.arange(budget.shape[0], dtype=jnp.int32)[:, None, None]
    need = jnp.zeros((budget.shape[0], pl.n_thresholds, budget.shape[1]), jnp.float32)
    for idx, is_phys in pl.kinds:
        x = p.thresholds[idx][None] - (phys_shift if is_phys else eff_shift)[:, None]
        if f.spec.boosted and not is_phys:
            x = x - _catch_up(pl, p, steps, t_f[idx])
        need = need.at[:, idx].set((x if f.cap is None else inverse_soft_cap(x, f.cap)) - budget[:, None])
    return need


def _populations(pl: Plan, p: Params, keys, fams, paths, dates, state: State):
    """Each group's rows' dates [rows, T, N] (the k-th member, initial or entrant, to reach
    a threshold) and the counts of organisations (actors and every group member) that have
    reached each threshold by each whole year, by reaching and by publishing (see
    :mod:`population`)."""
    c = pl.config
    n = c.n_steps
    N = p.level0.shape[1]
    years = jnp.asarray(np.arange(math.floor(n / c.steps_per_year + 1e-9) + 1) * c.steps_per_year, jnp.float32)
    grid = years * pl.dt  # whole years from the start (years)
    delayed = any(c.delayed)
    key_data = population.count_key_data(keys)
    t_f = state.t_first[pl.frontier]
    own_delay = _of_own(pl, p.delay) if p.delay is not None else None
    own_dates = state.t_first[:, None]  # [own, 1, T, N]
    counts = [jnp.sum((own_dates <= grid[None, :, None, None]).astype(jnp.float32), axis=0)]
    if own_delay is not None and delayed:
        counts.append(
            jnp.sum((own_dates + own_delay[:, None, None] <= grid[None, :, None, None]).astype(jnp.float32), axis=0)
        )
    rows = []
    for f, path, member_dates in zip(fams, paths, dates):
        if f.spec.first is None:
            continue
        pop, m = c.populations[f.spec.group], p.members[f.spec.group]
        path = jax.tree.map(lambda x: x[: n + 1], path)  # crossings after the horizon do not count
        need = _need(pl, p, f, path, t_f)
        share_level = population.upper_tail(pop.budget, m.budget_a, m.budget_b, population.running(jnp.minimum, need))
        arrival_dates = reached = None
        if pop.entrants:
            tau = jnp.arange(n + 1, dtype=jnp.float32)[:, None, None] * pl.dt
            reached = population.reached_entrants(m, need - m.entry_shift * tau, pl.dt, pop.entry_budget)
            targets = jnp.broadcast_to(m.arrivals[:, None], (pop.entrants, pl.n_thresholds, N))
            arrival_dates = population.invert(reached, targets, _crossing_fraction)[0] * pl.dt
            rows.append(population.kth_smallest(member_dates, arrival_dates, pop.ranks))
        else:
            rows.append(_rows_of(f, member_dates))
        times = [jnp.broadcast_to(grid[:, None], (grid.shape[0], N))]
        if delayed:
            times.append(times[0] - m.delay[None])
        g = population.count_members(
            pop,
            m,
            jnp.concatenate(times),
            member_dates,
            share_level,
            arrival_dates,
            reached,
            key_data,
            c.threshold_ids,
            counting.poisson,
            counting.binomial,
            pl.dt,
        )
        counts = [total + part for total, part in zip(counts, jnp.split(g, len(times)))]
    public = counts[1] if delayed else jnp.zeros((0, pl.n_thresholds, N), jnp.float32)
    return rows, (counts[0], public)


def simulate(keys, params: Params, config: Config) -> Outputs:
    """Simulate N trajectories: :func:`init`, then :func:`step` over the blocks of steps
    (``lax.scan``), then :func:`finalize`. Every array has the trajectories on its LAST
    axis (the layout that vectorises on CPU): ``keys`` [N] drive the per-step shocks only
    (the per-trajectory numbers are already in ``params``, fields [..., N]).

    The path is built a block of steps at a time (a year, or MAX_BLOCK_STEPS steps if a
    year has more). Each draw lane (a stream, or one of a jump process's draws per step)
    has a key of its own, the trajectory's key folded with the lane's stable id, and block
    b's shocks of a lane are block b of its generator, one per step; their running sum
    gives every step of the block at once, and first crossings are found for the whole
    block. Each trajectory's numbers depend on its key and params alone, and a lane's on
    its own id, so adding an actor does not move the others' shocks.

    An actor's row has its own path: its budget through the soft cap plus its lagged
    hardware and algorithms at every step, its crossings dated block by block. A group's
    ranks differ only in their initial budget, and the access budgets only in their
    budget, so they form a family: one shared series and a per-row offset. Row k has
    reached X once ``offset_k >= need(t)``, the uncapped budget it needs beyond the
    group's budget growth (X minus the lagged hardware and algorithms, through the
    inverse soft cap: one per threshold and step). So a family row costs a compare per
    threshold and step: the loop only counts the steps before its first crossing, and
    the crossing is dated after the loop from the family's stored series, by linear
    interpolation of compute within the step, as an actor's.
    """
    pl = plan(config, params)
    lanes = _lane_keys(pl, keys)
    state, start = init(pl, params, lanes)
    state, records = blocks(pl, params, lanes, state)
    return finalize(pl, params, keys, state, start, records)


def blocks(pl: Plan, p: Params, lanes, state: State) -> tuple[State, Record]:
    """The time loop: :func:`step` over every block from ``state`` (``lax.scan``); the
    state after the last block and the records of all blocks, stacked."""
    return jax.lax.scan(step(pl, p, lanes), state, length=pl.n_blocks)


def combine_releases(t_first, release_lag, access_via: tuple[tuple[int, ...], ...], span: float):
    """Open release: a row that lists releasers in ``access_via`` (per row, their row
    indices) gets a capability at the earliest ``t_first(releaser) + release_lag`` if that
    comes before its own crossing and by the horizon ``span`` (years).

    Returns (earliest [R, T], released [R, T]): the date by either channel, and the date by
    release alone (NaN where censored or no releaser)."""
    nan = jnp.full(t_first.shape[1:], jnp.nan, t_first.dtype)
    rows = []
    for via in access_via:
        row = nan
        for q in via:
            date = t_first[q] + release_lag[q]
            row = jnp.fmin(row, jnp.where(date <= span, date, jnp.nan))
        rows.append(row)
    released = jnp.stack(rows) if rows else jnp.full_like(t_first, jnp.nan)
    return jnp.fmin(t_first, released), released
