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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from .normals import DEFAULT_GENERATOR, block_draws, block_normals

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


class Params(NamedTuple):
    """The numbers of N trajectories, each field with the trajectories on its last axis.

    Per stream [S, N]: level0 (log10 units at start; 0 for budget streams, whose level is per
    row), rate0 and rate_inf (OOM/yr at the start and in the long run), decay (years; inf:
    none), vol (OOM/sqrt(yr)). Per jump process [J, N]: jump_rate (per year) and the size
    distribution's parameters jump_a, jump_b (OOM). Per row [R, N]: b0 and cap (log10 $;
    cap = +inf: none), penalty (OOM). thresholds [T, N] (log10 FLOP), access [K, N] (log10
    $), catch_up [N] (OOM/yr).
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


class Outputs(NamedTuple):
    """What the trajectories report (trajectories on the last axis, N).

    t_first: [rows, thresholds, N] years from start to the first crossing by the row's own
      compute (the "trained" channel), NaN if censored.
    diffusion: [access budgets, thresholds, N] the same for a buyer of each access budget at
      frontier hardware and algorithms (the access effect).
    fan: [n_years + 1, series, N] values at each whole year from the start, series being
      hardware H (log10 FLOP/$), algorithms A (OOM), each row's capped budget (log10 $),
      each row's effective compute (log10 FLOP), and H + A (log10 effective FLOP per $ at
      the frontier: an access budget's capability and a threshold's cost to reach are
      fixed shifts of it, or of H for physical thresholds, so they are not stored).
    """

    t_first: jax.Array
    diffusion: jax.Array
    fan: jax.Array


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
    frac = jnp.clip((thresholds - v0) / (v1 - v0), 0.0, 1.0)
    date = (first_step + below).astype(jnp.float32) + frac
    return jnp.where(jnp.isnan(t_first) & (below < n), date * dt, t_first)


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


class _Family(NamedTuple):
    """Rows that are one series shifted by a per-row offset: a group's ranks (offset: each
    rank's initial budget) or the access budgets (offset: the budget; no stream, lag or cap).
    offset [m, N] (log10 $); stream: the budget stream (None: none); hw_lag, algo_lag in
    steps; penalty [N] (OOM) or None; cap [N] (log10 $) or None (no cap); boosted: whether
    catch-up lowers its requirements."""

    offset: jax.Array
    stream: int | None
    hw_lag: float
    algo_lag: float
    penalty: jax.Array | None
    cap: jax.Array | None
    boosted: bool


def simulate(keys, params: Params, config: Config) -> Outputs:
    """Simulate N trajectories. Every array has the trajectories on its LAST axis (the
    layout that vectorises on CPU): ``keys`` [N] drive the per-step shocks only (the
    per-trajectory numbers are already in ``params``, fields [..., N]).

    The path is built a block of steps at a time (a year, or MAX_BLOCK_STEPS steps if a
    year has more): block b's shocks are block b of the generator, shaped (steps, draws)
    (each step's row one draw per stream, then the draws of each jump process); their
    running sum gives every step of the block at once, and first crossings are found for
    the whole block. Each trajectory's numbers depend on its key and params alone.

    An actor's row has its own path: its budget through the soft cap plus its lagged
    hardware and algorithms at every step, its crossings dated block by block. A group's
    ranks differ only in their initial budget, and the access budgets only in their
    budget, so they form a family: one shared series and a per-row offset. Row k has
    reached X once ``offset_k >= need(t)``, the uncapped budget it needs beyond the
    group's budget growth (X minus the lagged hardware and algorithms, through the
    inverse soft cap: one per threshold and step; a capped group with no more ranks than
    thresholds is cheaper row by row, and is). So a family row costs a compare per
    threshold and step: the loop only counts the steps before its first crossing, and
    the crossing is dated after the loop from the family's stored series, by linear
    interpolation of compute within the step, as an actor's.
    """
    p, c = params, config
    n_streams, N = p.level0.shape
    n_rows = p.b0.shape[0]
    n_access = p.access.shape[0]
    n_thresholds = len(c.physical)
    spy = c.steps_per_year
    dt = 1.0 / spy
    sqrt_dt = math.sqrt(dt)

    capped_rows = c.capped or (True,) * n_rows
    shared = [(first, m) for first, m in c.groups if not capped_rows[first] or m > n_thresholds]
    families = [_Family(p.b0[first : first + m], c.row_stream[first], c.hw_lag_steps[first],
                        c.algo_lag_steps[first], p.penalty[first], p.cap[first] if capped_rows[first] else None,
                        c.catch_up) for first, m in shared]
    if n_access:
        families.append(_Family(p.access, None, 0.0, 0.0, None, None, False))
    in_family = {r for first, m in shared for r in range(first, first + m)}
    own = [r for r in range(n_rows) if r not in in_family]  # rows with a path of their own
    of_own = (lambda x: x) if not in_family else (lambda x: x[np.asarray(own)])
    b0, cap, penalty = of_own(p.b0), of_own(p.cap), of_own(p.penalty)
    own_stream = tuple(c.row_stream[r] for r in own)
    own_hw = tuple(c.hw_lag_steps[r] for r in own)
    own_algo = tuple(c.algo_lag_steps[r] for r in own)
    own_capped = any(capped_rows[r] for r in own)
    frontier = own.index(c.frontier)
    boosted = jnp.arange(len(own)) != frontier  # all but the frontier

    def in_row_order(parts, axis=0):
        """Rows in the scenario's order along ``axis`` from [own rows, each group family's]."""
        if not in_family:
            return parts[0]
        pieces, done, starts = [], 0, dict(zip((first for first, _ in shared), parts[1:]))
        for r in range(n_rows):
            if r in starts:
                pieces.append(starts[r])
            elif r not in in_family:
                pieces.append(jax.lax.slice_in_dim(parts[0], done, done + 1, axis=axis))
                done += 1
        return jnp.concatenate(pieces, axis=axis)

    physical = jnp.asarray(c.physical)[:, None]  # [T, 1]
    # Thresholds by kind: effective ones compare with effective compute, physical ones with
    # physical compute (budget + hardware); each kind's crossings are found separately.
    kinds = [(np.flatnonzero(np.asarray(c.physical) == phys), phys) for phys in (False, True)]
    kinds = [(idx, phys) for idx, phys in kinds if idx.size]
    jump_width = [jump_draws(sizes, k) for _, sizes, k in c.jumps]
    n_draws = n_streams + sum(jump_width)
    width = min(spy, MAX_BLOCK_STEPS)  # steps per block
    block_steps = jnp.arange(1, width + 1, dtype=jnp.int32)

    def own_levels(s, h, a, win_h, win_a):
        """Capped budgets, effective and physical compute [n, own rows, N] at n steps, from
        all streams [n, S, N], H and A there [n, N] and their windows of past values."""
        n = h.shape[0]
        if own_stream == tuple(range(2, 2 + len(own))):  # a stream per row, in order
            streams = s[:, 2 : 2 + len(own)]
        else:
            streams = _by_row(own_stream, lambda i: s[:, i])
        u = b0 + streams
        capped = soft_cap(u, cap) if own_capped else u
        phys = capped + (_lagged(win_h, n, own_hw) - penalty)
        return capped, phys + _lagged(win_a, n, own_algo), phys

    def family_series(f, s, win_h, win_a):
        """(budget stream or None, physical shift, effective shift) [n, N] of a family at
        the last n steps of the windows: a row's physical compute is its capped budget
        (offset + budget stream) plus the physical shift (lagged, penalised hardware)."""
        n = s.shape[0]
        hw = _lagged(win_h, n, (f.hw_lag,))[:, 0]
        if f.penalty is not None:
            hw = hw - f.penalty
        return (None if f.stream is None else s[:, f.stream]), hw, hw + _lagged(win_a, n, (f.algo_lag,))[:, 0]

    def family_values(f, series, phys, thr, boost):
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

    def catch_up(step, t_f):
        """Catch-up (OOM) at ``step`` (int) given the frontier's dates ``t_f`` [T, N] (years;
        NaN: not yet), broadcast together."""
        return p.catch_up * jnp.maximum(jnp.nan_to_num(step.astype(jnp.float32) * dt - t_f, nan=0.0), 0.0)

    def crossings(t_first, now, before, first, k, valid):
        """(``t_first`` of the own rows [rows, T, N] updated with the block's crossings, and
        per kind the catch-up at the block's steps [n, T_kind, N] or None); ``now`` [n, rows,
        N] and ``before`` [rows, N] are their (effective, physical) compute at the block's
        steps and one step before it."""
        boosts = []
        for idx, is_phys in kinds:
            thr = p.thresholds[idx]
            vals, prev = now[is_phys][:, :, None], before[is_phys][:, None]
            tf = t_first if idx.size == n_thresholds else t_first[:, idx]
            boost = None
            if c.catch_up and not is_phys:  # the frontier is never boosted: its dates come first
                f = frontier
                t_f = _first_crossings(vals[:, f : f + 1], prev[f : f + 1], tf[f : f + 1], thr, first, valid, dt)[0]
                boost = catch_up(jnp.concatenate([first[None], k])[:, None, None], t_f)  # [n + 1, T, N]
                on = boosted[:, None, None]
                vals = vals + jnp.where(on, boost[1:, None], 0.0)
                prev, tf = prev + jnp.where(on, boost[0], 0.0), tf.at[f].set(t_f)
                boost = boost[1:]
            tf = _first_crossings(vals, prev, tf, thr, first, valid, dt)
            t_first = tf if idx.size == n_thresholds else t_first.at[:, idx].set(tf)
            boosts.append(boost)
        return t_first, boosts

    def count_below(state, fam, boosts, valid):
        """Each family's state (per kind: steps below [m, T_kind, N], running maximum, and
        whether reached at the start) advanced by a block, from its series at the block's
        steps and the catch-up."""
        out = []
        for f, series, per_kind in zip(families, fam, state):
            new = []
            for (idx, is_phys), boost, (below, peak, at_start) in zip(kinds, boosts, per_kind):
                vals, levels = family_values(f, series, is_phys, p.thresholds[idx], boost if f.boosted else None)
                steps, peak = _steps_below(vals, peak, levels, valid)
                new.append((below + steps, peak, at_start))
            out.append(tuple(new))
        return out

    def family_dates(f, paths, per_kind, t_f):
        """A family's first crossings [m, T, N] (years; NaN: censored) from its steps below
        each threshold and its series at every step from the start ``paths`` [steps + 1,
        N]: dated as an actor's, by interpolating compute between the step before the
        crossing and the crossing step."""
        t_first = jnp.full((f.offset.shape[0], n_thresholds, N), jnp.nan, jnp.float32)
        for (idx, is_phys), (below, _, at_start) in zip(kinds, per_kind):
            thr = p.thresholds[idx]
            at = jnp.minimum(below, paths[1].shape[0] - 2)

            def margin(i):  # compute over the threshold at step i [m, T, N]
                budget, phys_shift, eff_shift = (None if x is None else jnp.take_along_axis(x[:, None, None], i[None], 0)[0]
                                                 for x in paths)
                over = (phys_shift if is_phys else eff_shift) - thr
                if f.boosted and not is_phys:
                    over = over + catch_up(i, t_f[idx])
                if budget is None:
                    return over + f.offset[:, None]
                u = f.offset[:, None] + budget
                return over + (u if f.cap is None else soft_cap(u, f.cap))

            m0, m1 = margin(at), margin(at + 1)
            # the loop decided the crossing in other arithmetic: a margin that did not rise
            # (a touch at float32 resolution) dates it at the crossing step, never 0/0
            frac = jnp.where(m1 > m0, -m0 / (m1 - m0), 1.0)
            date = (below.astype(jnp.float32) + jnp.clip(frac, 0.0, 1.0)) * dt
            t_first = t_first.at[:, idx].set(jnp.where(at_start, 0.0, jnp.where(below < c.n_steps, date, jnp.nan)))
        return t_first

    def fan_record(h, a, capped, eff, fam):
        """What the fan chart needs from one step: (H, A [N], the own rows' capped budgets
        and effective compute [own rows, N], per group family its rows' capped budgets
        [m, N] and its effective shift [N])."""
        groups = [(f.offset + budget if f.cap is None else soft_cap(f.offset + budget, f.cap), eff_shift)
                  for f, (budget, _, eff_shift) in zip(families, fam) if f.stream is not None]
        return h, a, capped, eff, groups

    def fan(h, a, capped, eff, groups):
        """Fan-chart values [years, series, N] from fan records stacked over the years."""
        cap_g = [capped] + [budget for budget, _ in groups]
        eff_g = [eff] + [budget + shift[:, None] for budget, shift in groups]
        return jnp.concatenate([jnp.stack([h, a], axis=1), in_row_order(cap_g, axis=1), in_row_order(eff_g, axis=1),
                                (h + a)[:, None]], axis=1)

    def block(carry, b):
        noise, hist_h, hist_a, last, t_first, state, draws = carry
        z = block_normals(draws, (width, n_draws))
        shock = p.vol * sqrt_dt * z[:, :n_streams]
        at = n_streams
        for j, ((stream, sizes, k_max), w) in enumerate(zip(c.jumps, jump_width)):
            jumps = jump_sum(jnp.moveaxis(z[:, at : at + w], 1, 0), p.jump_rate[j], p.jump_a[j], p.jump_b[j],
                             sizes, k_max, dt)
            shock = shock.at[:, stream].add(jumps)
            at += w
        # Levels are trend + accumulated noise: the trend is evaluated afresh at every step
        # (not summed), so float32 rounding does not build up over thousands of steps.
        path = noise + _running_sum(shock)
        first = b * width
        k = first + block_steps
        valid = k <= c.n_steps
        s = trend(p, c.decaying, k.astype(jnp.float32) * dt) + path
        h, a = s[:, 0], s[:, 1]
        win_h, win_a = jnp.concatenate([hist_h, h]), jnp.concatenate([hist_a, a])
        capped, eff, phys = own_levels(s, h, a, win_h, win_a)
        fam = [family_series(f, s, win_h, win_a) for f in families]
        t_first, boosts = crossings(t_first, (eff, phys), last, first, k, valid)
        state = count_below(state, fam, boosts, valid)
        if width == spy:  # a block is a year: its last step is the year's end
            pick = lambda x: x[-1]
        else:  # the block's step at the next whole year (used only if within the block)
            i = jnp.minimum((first // spy + 1) * spy - first - 1, width - 1)
            pick = lambda x: jax.lax.dynamic_index_in_dim(x, i, keepdims=False)
        carry = (path[-1], win_h[width:], win_a[width:], (eff[-1], phys[-1]), t_first, state,
                 block_draws(keys, b + 1, width * n_draws, c.generator))
        return carry, (fan_record(*jax.tree.map(pick, (h, a, capped, eff, fam))), fam)

    # Before the start each factor is extended backwards along its trend (no noise).
    past = jnp.arange(1 - c.buffer, 1, dtype=jnp.float32)[:, None] * dt
    hist_h = p.level0[0] + p.rate0[0] * past
    hist_a = p.level0[1] + p.rate0[1] * past
    s = trend(p, c.decaying, jnp.zeros((1,), jnp.float32))
    h, a = s[:, 0], s[:, 1]
    capped, eff, phys = own_levels(s, h, a, hist_h, hist_a)
    fam = [family_series(f, s, hist_h, hist_a) for f in families]
    at_start = jnp.where(physical, phys[0][:, None], eff[0][:, None])  # [own rows, T, N]
    t_first = jnp.where(at_start >= p.thresholds, 0.0, jnp.nan).astype(jnp.float32)
    state = []
    for f, series in zip(families, fam):
        per_kind = []
        for idx, is_phys in kinds:
            boost = jnp.zeros((1, idx.size, N)) if f.boosted and not is_phys else None  # no catch-up yet
            vals, levels = family_values(f, series, is_phys, p.thresholds[idx], boost)
            reached = vals[0] >= levels
            per_kind.append((jnp.zeros(reached.shape, jnp.int32), vals[0], reached))
        state.append(tuple(per_kind))
    carry = (jnp.zeros((n_streams, N), jnp.float32), hist_h, hist_a, (eff[0], phys[0]), t_first, state,
             block_draws(keys, 0, width * n_draws, c.generator))
    n_blocks = -(-c.n_years * spy // width)
    carry, (records, fam_blocks) = jax.lax.scan(block, carry, jnp.arange(n_blocks, dtype=jnp.int32))
    years = np.arange(1, c.n_years + 1) * spy
    at_years = lambda start, ys: jnp.concatenate([start[None], ys if width == spy else ys[(years - 1) // width]])
    fan_values = fan(*jax.tree.map(at_years, fan_record(h[0], a[0], capped[0], eff[0], jax.tree.map(lambda x: x[0], fam)),
                                   records))
    t_first, state = carry[4], carry[5]
    t_f = t_first[frontier]
    # each family's series at every step from the start: [steps + 1, N]
    paths = jax.tree.map(lambda start, ys: jnp.concatenate([start, ys.reshape(-1, N)]), fam, fam_blocks)
    dates = [family_dates(f, path, per_kind, t_f) for f, path, per_kind in zip(families, paths, state)]
    rows = in_row_order([t_first] + dates[: len(shared)])
    diffusion = dates[-1] if n_access else jnp.zeros((0, n_thresholds, N), jnp.float32)
    return Outputs(t_first=rows, diffusion=diffusion, fan=fan_values)


def combine_releases(t_first, release_lag, access_via: tuple[tuple[int, ...], ...], span: float):
    """Open release: a row that lists releasers in ``access_via`` (per row, their row
    indices) gets a capability at the earliest ``t_first(releaser) + release_lag`` if that
    comes before its own crossing and by the horizon ``span`` (years).

    Returns (earliest [R, T], released [R, T]): the date by either channel, and the date by
    release alone (NaN where censored or no releaser)."""
    released = jnp.full_like(t_first, jnp.nan)
    for row, via in enumerate(access_via):
        for q in via:
            date = t_first[q] + release_lag[q]
            released = released.at[row].set(jnp.fmin(released[row], jnp.where(date <= span, date, jnp.nan)))
    return jnp.fmin(t_first, released), released
