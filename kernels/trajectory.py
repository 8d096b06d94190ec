"""The per-trajectory simulation kernel: one joint path of hardware, algorithms and
budgets, scanned over time, reduced to first-crossing times on the fly.

Everything is in log10 units (OOM) and in years since the start (``tau``); nothing is
exponentiated except inside the soft cap, where the exponent is never positive. The kernel
is written for ONE trajectory and is pure: the engine vmaps, jits and chunks it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

LN10 = math.log(10.0)


class Config(NamedTuple):
    """Static shape of a simulation (hashable; changing it recompiles).

    Attributes:
      n_steps: steps from start to horizon; crossings after the horizon are censored.
      steps_per_year: steps per calendar year (dt = 1 / steps_per_year years).
      n_years: whole years simulated (>= n_steps / steps_per_year); fan points are the
        n_years + 1 year boundaries from the start.
      hw_lag_steps, algo_lag_steps: per actor, the hardware and algorithm lags in steps
        (may be fractional: read by linear interpolation).
      physical: per threshold, True where it compares physical compute (budget + hardware).
      buffer: length of the ring buffer of past H and A values (> largest lag in steps).
    """

    n_steps: int
    steps_per_year: int
    n_years: int
    hw_lag_steps: tuple[float, ...]
    algo_lag_steps: tuple[float, ...]
    physical: tuple[bool, ...]
    buffer: int


class Params(NamedTuple):
    """The numbers of one trajectory (scalars or per-actor / per-threshold vectors).

    h0, a0: initial hardware (log10 FLOP/$) and algorithms (log10 multiplier).
    h_rate, a_rate, b_rate: growth rates, OOM/yr (b_rate per actor).
    h_vol, a_vol, b_vol: volatilities, OOM/sqrt(yr) (b_vol per actor).
    b0, cap: per actor, initial budget and soft cap, log10 $ (cap = +inf: none).
    penalty: per actor, hardware penalty, OOM.
    thresholds: per threshold, log10 FLOP (effective or physical per Config.physical).
    access: per access budget, log10 $.
    """

    h0: jax.Array
    h_rate: jax.Array
    h_vol: jax.Array
    a0: jax.Array
    a_rate: jax.Array
    a_vol: jax.Array
    b0: jax.Array
    b_rate: jax.Array
    b_vol: jax.Array
    cap: jax.Array
    penalty: jax.Array
    thresholds: jax.Array
    access: jax.Array


class Outputs(NamedTuple):
    """What one trajectory reports.

    t_first: [actors, thresholds] years from start to the first crossing, NaN if censored.
    diffusion: [access budgets, thresholds] the same for a buyer of each access budget at
      frontier hardware and algorithms (the access effect).
    fan: [n_years + 1, 2 + 2 * actors] values at each whole year from the start:
      hardware, algorithms, each actor's (capped) budget, each actor's effective compute.
    """

    t_first: jax.Array
    diffusion: jax.Array
    fan: jax.Array


def soft_cap(uncapped, cap):
    """``cap - log10(1 + 10**(cap - uncapped))``, stably (log10 $); cap = +inf is no cap."""
    x = cap - uncapped
    softplus10 = jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x) * LN10)) / LN10
    return jnp.where(jnp.isinf(cap), uncapped, cap - softplus10)


def _lagged(buf, current, y0, rate, k, lag_steps, dt):
    """Values of a factor ``lag_steps`` (static, per actor) before step ``k``: read from a
    ring buffer of past steps, linearly interpolated between whole steps. Before the start
    the path is extended backwards along its trend, ``y0 + rate * (step index) * dt``.
    Each distinct whole-step offset is one slice at an index shared by all trajectories
    (cheaper than a per-actor gather)."""
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
    numbers are already in ``params``): step k uses ``normal(fold_in(key, k))``, one
    draw per stream (hardware, algorithms, then each actor's budget)."""
    p, c = params, config
    n_actors = p.b0.shape[0]
    dt = 1.0 / c.steps_per_year
    sqrt_dt = math.sqrt(dt)
    physical = jnp.asarray(c.physical)
    level0 = jnp.concatenate([jnp.stack([p.h0, p.a0]), jnp.broadcast_to(p.b0, (n_actors,))])
    rate = jnp.concatenate([jnp.stack([p.h_rate, p.a_rate]), jnp.broadcast_to(p.b_rate, (n_actors,))])
    vol = jnp.concatenate([jnp.stack([p.h_vol, p.a_vol]), jnp.broadcast_to(p.b_vol, (n_actors,))])

    def state(k, noise):
        """Hardware, algorithms and uncapped budgets at step k: trend plus noise."""
        y = level0 + rate * (k.astype(jnp.float32) * dt) + noise
        return y[0], y[1], y[2:]

    def levels(k, h, a, u, buf_h, buf_a):
        """Effective and physical compute of every actor and access budget at step k."""
        h_i = _lagged(buf_h, h, p.h0, p.h_rate, k, c.hw_lag_steps, dt) - p.penalty
        a_i = _lagged(buf_a, a, p.a0, p.a_rate, k, c.algo_lag_steps, dt)
        physical_i = soft_cap(u, p.cap) + h_i
        phys = jnp.concatenate([physical_i, p.access + h])
        eff = phys + jnp.concatenate([a_i, jnp.broadcast_to(a, p.access.shape)])
        return eff, phys

    def per_threshold(eff, phys):
        if not any(c.physical):
            return jnp.broadcast_to(eff[:, None], (eff.shape[0], len(c.physical)))
        return jnp.where(physical[None, :], phys[:, None], eff[:, None])

    def step(carry, _):
        # Levels are trend + accumulated noise: the trend is evaluated afresh each step
        # (not summed), so float32 rounding does not build up over thousands of steps.
        k, noise, buf_h, buf_a, lev, t_first = carry
        eps = jax.random.normal(jax.random.fold_in(key, k), (2 + n_actors,), jnp.float32)
        noise = noise + vol * sqrt_dt * eps
        k = k + 1
        h, a, u = state(k, noise)
        slot = jnp.mod(k, c.buffer)
        buf_h = buf_h.at[slot].set(h)
        buf_a = buf_a.at[slot].set(a)
        new = per_threshold(*levels(k, h, a, u, buf_h, buf_a))
        crossed = jnp.isnan(t_first) & (new >= p.thresholds) & (k <= c.n_steps)
        frac = (p.thresholds - lev) / (new - lev)
        t_first = jnp.where(crossed, ((k - 1).astype(jnp.float32) + frac) * dt, t_first)
        return (k, noise, buf_h, buf_a, new, t_first), None

    def record(carry):
        """Fan-chart values at the current step: H, A, budgets, effective compute."""
        k, noise, buf_h, buf_a, _, _ = carry
        h, a, u = state(k, noise)
        eff, _ = levels(k, h, a, u, buf_h, buf_a)
        return jnp.concatenate([jnp.stack([h, a]), soft_cap(u, p.cap), eff[:n_actors]])

    def year(carry, _):
        values = record(carry)
        carry, _ = jax.lax.scan(step, carry, None, length=c.steps_per_year)
        return carry, values

    k = jnp.int32(0)
    noise = jnp.zeros((2 + n_actors,), jnp.float32)
    h, a, u = state(k, noise)
    buf_h = jnp.full((c.buffer,), h, jnp.float32)
    buf_a = jnp.full((c.buffer,), a, jnp.float32)
    lev = per_threshold(*levels(k, h, a, u, buf_h, buf_a))
    t_first = jnp.where(lev >= p.thresholds, 0.0, jnp.nan).astype(jnp.float32)
    carry = (k, noise, buf_h, buf_a, lev, t_first)
    carry, records = jax.lax.scan(year, carry, None, length=c.n_years)
    t_first = carry[-1]
    fan = jnp.concatenate([records, record(carry)[None, :]])
    return Outputs(t_first=t_first[:n_actors], diffusion=t_first[n_actors:], fan=fan)
