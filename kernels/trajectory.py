"""The per-trajectory simulation kernel: one joint path of hardware, algorithms and
budgets, scanned over time, reduced to first-crossing times on the fly.

Everything is in log10 units (OOM) and in years since the start (``tau``); nothing is
exponentiated except inside the soft cap, where the exponent is never positive. The kernel
is written for ONE trajectory and is pure: the engine vmaps, jits and chunks it.

Streams are the random processes: 0 = hardware H, 1 = algorithms A, then one budget
process per actor or group. Rows are what gets reported: each actor, and each reported
rank of each group (a group's ranks share their group's budget stream). Access rows are
buyers of a fixed budget at frontier hardware and algorithms.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp

LN10 = math.log(10.0)


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
      buffer: length of the ring buffer of past H and A values (> largest lag in steps).
      decaying: streams whose rate decays towards a long-run rate.
      jumps: per jump process, (stream, size family, most jumps counted per step).
      frontier: the frontier's row.
      catch_up: whether requirements fall for followers once the frontier reaches them.
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


class Params(NamedTuple):
    """The numbers of one trajectory.

    Per stream [S]: level0 (log10 units at start; 0 for budget streams, whose level is per
    row), rate0 and rate_inf (OOM/yr at the start and in the long run), decay (years; inf:
    none), vol (OOM/sqrt(yr)). Per jump process [J]: jump_rate (per year) and the size
    distribution's parameters jump_a, jump_b (OOM). Per row [R]: b0 and cap (log10 $; cap
    = +inf: none), penalty (OOM). thresholds [T] (log10 FLOP), access [K] (log10 $),
    catch_up (OOM/yr).
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
    """What one trajectory reports.

    t_first: [rows, thresholds] years from start to the first crossing by the row's own
      compute (the "trained" channel), NaN if censored.
    diffusion: [access budgets, thresholds] the same for a buyer of each access budget at
      frontier hardware and algorithms (the access effect).
    fan: [n_years + 1, series] values at each whole year from the start, series being
      hardware, algorithms, each row's capped budget, each row's effective compute, each
      access budget's capability (log10 effective FLOP), each threshold's cost to reach
      (log10 $ at frontier hardware and algorithms).
    """

    t_first: jax.Array
    diffusion: jax.Array
    fan: jax.Array


def soft_cap(uncapped, cap):
    """``cap - log10(1 + 10**(cap - uncapped))``, stably (log10 $); cap = +inf is no cap."""
    x = cap - uncapped
    softplus10 = jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x) * LN10)) / LN10
    return jnp.where(jnp.isinf(cap), uncapped, cap - softplus10)


def trend(p: Params, decaying: tuple[int, ...], tau):
    """Deterministic part of every stream at time ``tau`` (years): level0 plus the integral
    of ``r(t) = r_inf + (r0 - r_inf) exp(-t / decay)``."""
    y = p.level0 + p.rate0 * tau
    if decaying:
        i = jnp.asarray(decaying)
        t_dec = p.decay[i]
        gap = tau + t_dec * jnp.expm1(-tau / t_dec)  # tau - T (1 - exp(-tau/T))
        y = y.at[i].add(jnp.where(jnp.isinf(t_dec), 0.0, (p.rate_inf[i] - p.rate0[i]) * gap))
    return y


def poisson_cdf(mean, k_max: int):
    """P(N <= k) for k = 0..k_max-1 of N ~ Poisson(mean)."""
    terms = [jnp.exp(-mean)]
    for k in range(1, k_max):
        terms.append(terms[-1] * mean / k)
    return jnp.cumsum(jnp.stack(terms), axis=0)


def jump_sum(z, rate, a, b, family: str, k_max: int, dt: float):
    """Total jump size (OOM) of one process in one step: N ~ Poisson(rate dt) jumps (at
    most k_max; k_max is chosen so that more is below 1e-12), each of a size from
    ``family`` with parameters (a, b). ``z`` holds the standard normals for this process:
    z[0] decides N, the rest the sizes."""
    n = jnp.sum(jsp.ndtr(z[0]) > poisson_cdf(rate * dt, k_max)).astype(jnp.float32)
    if family == "fixed":
        return n * a
    if family == "normal":  # a sum of n normals is normal: exact with one draw
        return n * a + jnp.sqrt(n) * b * z[1]
    sizes = 10.0 ** (a + b * z[1:]) if family == "lognormal" else a + (b - a) * jsp.ndtr(z[1:])
    return jnp.sum(jnp.where(jnp.arange(k_max) < n, sizes, 0.0))


def jump_draws(family: str, k_max: int) -> int:
    """Standard normals one jump process uses per step."""
    return 1 + {"fixed": 0, "normal": 1}.get(family, k_max)


def _lagged(buf, current, y0, rate, k, lag_steps, dt):
    """Values of a factor ``lag_steps`` (static, per row) before step ``k``: read from a
    ring buffer of past steps, linearly interpolated between whole steps. Before the start
    the path is extended backwards along its trend, ``y0 + rate * (step index) * dt``.
    Each distinct whole-step offset is one slice at an index shared by all trajectories
    (cheaper than a per-row gather)."""
    whole = [math.floor(s) for s in lag_steps]
    frac = [s - w for s, w in zip(lag_steps, whole)]
    taps = {}
    for o in sorted(set(whole) | {w + 1 for w, f in zip(whole, frac) if f > 0}):
        if o == 0:
            taps[o] = current
            continue
        i = k - o
        past = jax.lax.dynamic_index_in_dim(buf, jnp.mod(i, buf.shape[0]), keepdims=False)
        taps[o] = jnp.where(i < 0, y0 + rate * (i.astype(jnp.float32) * dt), past)
    return jnp.stack([taps[w] if f == 0 else (1.0 - f) * taps[w] + f * taps[w + 1] for w, f in zip(whole, frac)])


def simulate(key, params: Params, config: Config) -> Outputs:
    """Simulate one trajectory. ``key`` drives the per-step shocks only (per-trajectory
    numbers are already in ``params``): year y's shocks are ``normal(fold_in(key, y),
    (steps_per_year, draws))``, each step's row one draw per stream, then the draws of
    each jump process (one call per year amortises the key derivation over its steps)."""
    p, c = params, config
    n_streams = p.level0.shape[0]
    n_rows = p.b0.shape[0]
    dt = 1.0 / c.steps_per_year
    sqrt_dt = math.sqrt(dt)
    row_stream = jnp.asarray(c.row_stream, jnp.int32)
    physical = jnp.asarray(c.physical)
    jump_width = [jump_draws(fam, k) for _, fam, k in c.jumps]
    n_draws = n_streams + sum(jump_width)
    is_actor = jnp.arange(n_rows + p.access.shape[0]) < n_rows
    boosted = (is_actor & (jnp.arange(n_rows + p.access.shape[0]) != c.frontier))[:, None] & ~physical[None, :]

    def state(k, noise):
        """Hardware, algorithms and each row's uncapped budget at step k."""
        y = trend(p, c.decaying, k.astype(jnp.float32) * dt) + noise
        return y[0], y[1], p.b0 + y[row_stream]

    def levels(k, h, a, u, buf_h, buf_a):
        """Effective and physical compute of every row and access budget at step k."""
        h_i = _lagged(buf_h, h, p.level0[0], p.rate0[0], k, c.hw_lag_steps, dt) - p.penalty
        a_i = _lagged(buf_a, a, p.level0[1], p.rate0[1], k, c.algo_lag_steps, dt)
        phys = jnp.concatenate([soft_cap(u, p.cap) + h_i, p.access + h])
        eff = phys + jnp.concatenate([a_i, jnp.broadcast_to(a, p.access.shape)])
        return eff, phys

    def per_threshold(eff, phys):
        if not any(c.physical):
            return jnp.broadcast_to(eff[:, None], (eff.shape[0], len(c.physical)))
        return jnp.where(physical[None, :], phys[:, None], eff[:, None])

    def catch_up(tau, t_first):
        """How far the requirement has fallen for every other actor (OOM) at time tau: only
        effective thresholds (distillation does not cut the FLOP a regulation counts), and
        not for access budgets (a diffusion date is budget + H + A alone, MODEL.md §5)."""
        since = jnp.maximum(jnp.nan_to_num(tau - t_first[c.frontier], nan=0.0), 0.0)
        return jnp.where(boosted, p.catch_up * since[None, :], 0.0)

    def step(carry, z):
        # Levels are trend + accumulated noise: the trend is evaluated afresh each step
        # (not summed), so float32 rounding does not build up over thousands of steps.
        k, noise, buf_h, buf_a, lev, t_first = carry
        noise = noise + p.vol * sqrt_dt * z[:n_streams]
        at = n_streams
        for j, ((stream, fam, k_max), width) in enumerate(zip(c.jumps, jump_width)):
            noise = noise.at[stream].add(jump_sum(z[at : at + width], p.jump_rate[j], p.jump_a[j], p.jump_b[j],
                                                  fam, k_max, dt))
            at += width
        k = k + 1
        h, a, u = state(k, noise)
        slot = jnp.mod(k, c.buffer)
        buf_h = buf_h.at[slot].set(h)
        buf_a = buf_a.at[slot].set(a)
        raw = per_threshold(*levels(k, h, a, u, buf_h, buf_a))
        new, prev = raw, lev
        if c.catch_up:  # the frontier's row is never boosted, so its date this step is final
            f = c.frontier
            crossed_f = jnp.isnan(t_first[f]) & (raw[f] >= p.thresholds) & (k <= c.n_steps)
            frac_f = (p.thresholds - lev[f]) / (raw[f] - lev[f])
            t_first = t_first.at[f].set(jnp.where(crossed_f, ((k - 1).astype(jnp.float32) + frac_f) * dt, t_first[f]))
            new = raw + catch_up(k.astype(jnp.float32) * dt, t_first)
            prev = lev + catch_up((k - 1).astype(jnp.float32) * dt, t_first)
        crossed = jnp.isnan(t_first) & (new >= p.thresholds) & (k <= c.n_steps)
        frac = (p.thresholds - prev) / (new - prev)
        t_first = jnp.where(crossed, ((k - 1).astype(jnp.float32) + frac) * dt, t_first)
        return (k, noise, buf_h, buf_a, raw, t_first), None

    def record(carry):
        """Fan-chart values at the current step."""
        k, noise, buf_h, buf_a, _, _ = carry
        h, a, u = state(k, noise)
        eff, _ = levels(k, h, a, u, buf_h, buf_a)
        cost = p.thresholds - h - jnp.where(physical, 0.0, a)
        return jnp.concatenate([jnp.stack([h, a]), soft_cap(u, p.cap), eff, cost])

    def year(carry, y):
        values = record(carry)
        z = jax.random.normal(jax.random.fold_in(key, y), (c.steps_per_year, n_draws), jnp.float32)
        carry, _ = jax.lax.scan(step, carry, z)
        return carry, values

    k = jnp.int32(0)
    noise = jnp.zeros((n_streams,), jnp.float32)
    h, a, u = state(k, noise)
    buf_h = jnp.full((c.buffer,), h, jnp.float32)
    buf_a = jnp.full((c.buffer,), a, jnp.float32)
    lev = per_threshold(*levels(k, h, a, u, buf_h, buf_a))
    t_first = jnp.where(lev >= p.thresholds, 0.0, jnp.nan).astype(jnp.float32)
    carry = (k, noise, buf_h, buf_a, lev, t_first)
    carry, records = jax.lax.scan(year, carry, jnp.arange(c.n_years, dtype=jnp.int32))
    t_first = carry[-1]
    fan = jnp.concatenate([records, record(carry)[None, :]])
    return Outputs(t_first=t_first[:n_rows], diffusion=t_first[n_rows:], fan=fan)


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
