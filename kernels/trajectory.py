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


def simulate(keys, params: Params, config: Config) -> Outputs:
    """Simulate N trajectories. Every array has the trajectories on its LAST axis (the
    layout that vectorises on CPU): ``keys`` [N] drive the per-step shocks only (the
    per-trajectory numbers are already in ``params``, fields [..., N]).

    The path is built a block of steps at a time (a year, or MAX_BLOCK_STEPS steps if a
    year has more): block b's shocks are block b of the generator, shaped (steps, draws)
    (each step's row one draw per stream, then the draws of each jump process); their
    running sum gives every step of the block at once, and first crossings are found for
    the whole block. Each trajectory's numbers depend on its key and params alone."""
    p, c = params, config
    n_streams, N = p.level0.shape
    n_rows = p.b0.shape[0]
    n_access = p.access.shape[0]
    n_thresholds = len(c.physical)
    spy = c.steps_per_year
    dt = 1.0 / spy
    sqrt_dt = math.sqrt(dt)
    rows_in_order = c.row_stream == tuple(range(2, 2 + n_rows))  # no groups: one stream per row

    def budget_streams(s):
        """Each row's budget stream [n, R, N] from all streams [n, S, N]."""
        if rows_in_order:
            return s[:, 2 : 2 + n_rows]
        return _by_row(c.row_stream, lambda i: s[:, i])

    physical = jnp.asarray(c.physical)[:, None]  # [T, 1]
    # Thresholds by kind: effective ones compare with effective compute, physical ones with
    # physical compute (budget + hardware); each kind's crossings are found separately.
    kinds = [(np.flatnonzero(np.asarray(c.physical) == phys), phys) for phys in (False, True)]
    kinds = [(idx, phys) for idx, phys in kinds if idx.size]
    jump_width = [jump_draws(fam, k) for _, fam, k in c.jumps]
    n_draws = n_streams + sum(jump_width)
    n_all = n_rows + n_access
    boosted = (jnp.arange(n_all) < n_rows) & (jnp.arange(n_all) != c.frontier)  # actors but the frontier
    width = min(spy, MAX_BLOCK_STEPS)  # steps per block
    block_steps = jnp.arange(1, width + 1, dtype=jnp.int32)

    def levels(h, a, win_h, win_a, u):
        """Capped budgets [n, R, N] and effective and physical compute [n, R + K, N] of
        every row and access budget at n steps, from H and A there [n, N], their windows
        of past values and the uncapped budgets [n, R, N]."""
        n = h.shape[0]
        h_i = _lagged(win_h, n, c.hw_lag_steps) - p.penalty
        a_i = _lagged(win_a, n, c.algo_lag_steps)
        capped = soft_cap(u, p.cap)
        phys = jnp.concatenate([capped + h_i, p.access + h[:, None]], axis=1)
        eff = phys + jnp.concatenate([a_i, jnp.broadcast_to(a[:, None], (n, n_access, N))], axis=1)
        return capped, eff, phys

    def crossings(t_first, now, before, first, k, valid):
        """``t_first`` updated with the block's crossings; ``now`` [n, R + K, N] and
        ``before`` [R + K, N] are the (effective, physical) compute at the block's steps
        and one step before it."""
        for idx, phys in kinds:
            vals, prev = now[phys][:, :, None], before[phys][:, None]
            thr = p.thresholds[idx]
            tf = t_first if idx.size == n_thresholds else t_first[:, idx]
            if c.catch_up and not phys:  # the frontier's row is never boosted: its dates come first
                f = c.frontier
                t_f = _first_crossings(vals[:, f : f + 1], prev[f : f + 1], tf[f : f + 1], thr, first, valid, dt)[0]
                tau = jnp.concatenate([first[None], k]).astype(jnp.float32) * dt
                since = jnp.maximum(jnp.nan_to_num(tau[:, None, None] - t_f, nan=0.0), 0.0)  # [n + 1, T, N]
                boost = jnp.where(boosted[:, None, None], p.catch_up * since[:, None], 0.0)
                vals, prev, tf = vals + boost[1:], prev + boost[0], tf.at[f].set(t_f)
            tf = _first_crossings(vals, prev, tf, thr, first, valid, dt)
            t_first = tf if idx.size == n_thresholds else t_first.at[:, idx].set(tf)
        return t_first

    def record(h, a, capped, eff):
        """Fan-chart values at one step: [series, N]."""
        return jnp.concatenate([jnp.stack([h, a]), capped, eff[:n_rows], (h + a)[None]])

    def block(carry, b):
        noise, hist_h, hist_a, last, t_first, draws = carry
        z = block_normals(draws, (width, n_draws))
        shock = p.vol * sqrt_dt * z[:, :n_streams]
        at = n_streams
        for j, ((stream, fam, k_max), w) in enumerate(zip(c.jumps, jump_width)):
            jumps = jump_sum(jnp.moveaxis(z[:, at : at + w], 1, 0), p.jump_rate[j], p.jump_a[j], p.jump_b[j],
                             fam, k_max, dt)
            shock = shock.at[:, stream].add(jumps)
            at += w
        # Levels are trend + accumulated noise: the trend is evaluated afresh at every step
        # (not summed), so float32 rounding does not build up over thousands of steps.
        path = noise + _running_sum(shock)
        first = b * width
        k = first + block_steps
        s = trend(p, c.decaying, k.astype(jnp.float32) * dt) + path
        h, a = s[:, 0], s[:, 1]
        win_h, win_a = jnp.concatenate([hist_h, h]), jnp.concatenate([hist_a, a])
        capped, eff, phys = levels(h, a, win_h, win_a, p.b0 + budget_streams(s))
        t_first = crossings(t_first, (eff, phys), last, first, k, k <= c.n_steps)
        if width == spy:  # a block is a year: its last step is the year's end
            pick = lambda x: x[-1]
        else:  # the block's step at the next whole year (used only if within the block)
            i = jnp.minimum((first // spy + 1) * spy - first - 1, width - 1)
            pick = lambda x: jax.lax.dynamic_index_in_dim(x, i, keepdims=False)
        carry = (path[-1], win_h[width:], win_a[width:], (eff[-1], phys[-1]), t_first,
                 block_draws(keys, b + 1, width * n_draws, c.generator))
        return carry, record(pick(h), pick(a), pick(capped), pick(eff))

    # Before the start each factor is extended backwards along its trend (no noise).
    past = jnp.arange(1 - c.buffer, 1, dtype=jnp.float32)[:, None] * dt
    hist_h = p.level0[0] + p.rate0[0] * past
    hist_a = p.level0[1] + p.rate0[1] * past
    s = trend(p, c.decaying, jnp.zeros((1,), jnp.float32))
    h, a = s[:, 0], s[:, 1]
    capped, eff, phys = levels(h, a, hist_h, hist_a, p.b0 + budget_streams(s))
    at_start = jnp.where(physical, phys[0][:, None], eff[0][:, None])  # [R + K, T, N]
    t_first = jnp.where(at_start >= p.thresholds, 0.0, jnp.nan).astype(jnp.float32)
    carry = (jnp.zeros((n_streams, N), jnp.float32), hist_h, hist_a, (eff[0], phys[0]), t_first,
             block_draws(keys, 0, width * n_draws, c.generator))
    n_blocks = -(-c.n_years * spy // width)
    carry, records = jax.lax.scan(block, carry, jnp.arange(n_blocks, dtype=jnp.int32))
    years = np.arange(1, c.n_years + 1) * spy
    fan = jnp.concatenate([record(h[0], a[0], capped[0], eff[0])[None], records[(years - 1) // width]])
    return Outputs(t_first=carry[4][:n_rows], diffusion=carry[4][n_rows:], fan=fan)


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
