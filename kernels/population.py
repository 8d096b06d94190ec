"""Groups as populations: how many members can reach each threshold, and when the k-th does,
for groups of any size and with members who join over time (MODEL.md §4 "Populations
that grow"), without materialising the members.

All members of a group share its path; member j differs only by its offset u_j (log10 $:
its budget had it been a member from the start). ``need(t)`` [steps + 1, T, N] is the
offset a member needs to reach each threshold at step t (the threshold less the shared
path, through the inverse soft cap where capped), and a member that joined at step s has
reached X by step t iff ``u_j >= min(need[s..t])``.

* **Initial members** (``count`` of them, offsets i.i.d. from the group's budget
  distribution): the sampled ones are order statistics (the family's rows, dated by the
  kernel like actors); the others are counted by binomial draws in the gaps between
  them, so counts and dates come from one sample of the members and agree.
* **Entrants** arrive as a Poisson process of rate ``rate * 10**(growth * tau)`` per year;
  those arriving during step s join at its end with offsets from the entry budget
  distribution, and follow the shared path plus ``shift * tau`` (OOM). The expected
  number that have reached X by step t, ``reached[t] = sum_s mass_s P(u >= min(need[s..t]))``,
  follows from one recursion over the steps: with ``j`` the last step before t whose need
  is at or below need[t], every cohort after j sees need[t] as its minimum and every
  cohort up to j is as it was at step j, so ``reached[t] = reached[j] + mass(j, t] *
  P(u >= need[t])``. The entrants who have reached X form a Poisson process with mean
  ``reached(t)``: the first ones are dated by inverting it at the arrival times of a
  unit-rate Poisson process (sampled once per trajectory, shared by the thresholds), the
  rest are counted by Poisson draws.
* **Rank k** of a group is the k-th member (initial or entrant) to reach X: the k-th
  smallest of the sampled initial members' and entrants' dates.
* **Counts**: at each requested time, the members reached (sampled ones by their dates,
  the others by the draws above, taken in time order so that counts never fall).

Everything is vectorised over trajectories (the last axis) and pure.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from .normals import fold_in

LN10 = math.log(10.0)
_COUNT_KEY = 0x636F756E  # folded into a trajectory's key for its count draws


class Population(NamedTuple):
    """Static description of a group as a population.

    first_row: its first row; ranks: the reported ranks (rows first_row, ...); count:
    initial members; points: the ranks of the sampled initial members (the family's rows:
    the reported ranks, or 1..min(max rank, count) with entrants); budget: (family,
    transform) of the initial budget distribution; entrants: unit-rate Poisson arrival
    times sampled for the entrants (0: the group has no entrants); entry_budget: (family,
    transform) of the entrants' offset distribution; stream: a stable id of the group for
    its count draws; delayed: whether it has a publication delay."""

    first_row: int
    ranks: tuple[int, ...]
    count: int  # type: ignore[assignment]  # a field named as tuple.count: the number of members
    points: tuple[int, ...]
    budget: tuple[str, str]
    entrants: int
    entry_budget: tuple[str, str]
    stream: int
    delayed: bool


class Members(NamedTuple):
    """A group's numbers, trajectories on the last axis: the sampled initial members'
    offsets and upper-tail shares [points, N]; the parameters (a, b) [N] of the initial
    and entry budget distributions; the entry rate (members per year at the start), its
    growth (OOM/yr) and the entrants' extra growth (OOM/yr) [N]; the entrants' unit-rate
    Poisson arrival times [entrants, N]; the publication delay (years) [N]."""

    offsets: jax.Array
    shares: jax.Array
    budget_a: jax.Array
    budget_b: jax.Array
    entry_rate: jax.Array
    entry_growth: jax.Array
    entry_shift: jax.Array
    entry_a: jax.Array
    entry_b: jax.Array
    arrivals: jax.Array
    delay: jax.Array


def upper_tail(dist: tuple[str, str], a, b, x):
    """P(X >= x) for a budget distribution (family, transform) with parameters (a, b) (as
    in ``mcengine.distributions``), x in log10 $ (inf: 0; -inf: 1)."""
    family, transform = dist
    if family == "fixed":
        return (a >= x).astype(jnp.float32)
    if transform == "log10":
        x = 10.0 ** jnp.minimum(x, 38.0)
    if family == "normal":
        return jnp.where(b > 0, jsp.ndtr((a - x) / jnp.where(b > 0, b, 1.0)), (a >= x).astype(jnp.float32))
    if family == "uniform":
        return jnp.clip((b - x) / (b - a), 0.0, 1.0)
    raise ValueError(f"no upper tail for a {family} budget")  # pragma: no cover - guarded by the parser


def _exprel(x):
    """(exp(x) - 1) / x, 1 at 0."""
    small = jnp.abs(x) < 1e-4
    return jnp.where(small, 1.0 + 0.5 * x, jnp.expm1(x) / jnp.where(small, 1.0, x))


def arrivals_between(m: Members, dt: float, j, k):
    """Expected entrants arriving in steps (j, k] (j <= k, whole numbers), [..., N]."""
    g = m.entry_growth * LN10
    steps = (k - j).astype(jnp.float32)
    return m.entry_rate * dt * steps * jnp.exp(g * j.astype(jnp.float32) * dt) * _exprel(g * steps * dt)


def running(op, x):
    """The running ``op`` (``jnp.maximum`` or ``jnp.minimum``) of ``x`` along its first
    axis (steps), one step after another. (``lax.cummax`` and ``lax.cummin`` lower to a
    reduce-window on the CPU, whose transposes are not vectorised: 10 times slower at
    [301, 7, 2,048].) Exact, so the same bits either way."""

    def body(so_far, now):
        so_far = op(so_far, now)
        return so_far, so_far

    return jnp.concatenate([x[:1], jax.lax.scan(body, x[0], x[1:])[1]])


PREVIOUS_PARTS = 2  # ranges of steps that previous_at_or_below searches apart
# Steps a pass of the loops over steps (previous_at_or_below, invert) handles: XLA fuses the
# unrolled steps into one pass over the [steps, T, N] arrays, instead of one pass a step.
UNROLL = 16


def previous_at_or_below(x):
    """For each step k >= 1 of ``x`` [steps + 1, ...], the last step j in [1, k - 1] with
    x[j] <= x[k] (0 if none); int32, the shape of ``x``. A compare of every step with every
    later one (steps**2 compares, no gathers: faster than a search on the CPU at the
    lengths scenarios have). The steps are counted in int16 where they fit: the loop then
    runs 3.7 times faster on a CPU (more lanes a vector, half the memory). The steps k are
    searched in PREVIOUS_PARTS consecutive ranges, each compared only with the steps j before its
    end: 3/4 of the compares with two ranges (four: 5/8, but each range is one more loop to
    compile). UNROLL steps j are compared in one pass over the steps k (1/UNROLL of the
    memory traffic of a pass per step j; 32 was slower than 16 on a CPU)."""
    n = x.shape[0]
    step = jnp.int16 if n <= np.iinfo(np.int16).max else jnp.int32
    x = x.at[0].set(jnp.inf)  # step 0 is the start, not a cohort
    later = jnp.arange(n, dtype=step).reshape((n,) + (1,) * (x.ndim - 1))
    ends = sorted({round(n * (i + 1) / PREVIOUS_PARTS) for i in range(PREVIOUS_PARTS)})

    def search(lo, hi):  # steps k in [lo, hi), compared with the steps j in [1, hi - 2]
        xs, ks = x[lo:hi], later[lo:hi]

        def body(j, found):
            j = j.astype(step)
            ok = (jax.lax.dynamic_index_in_dim(x, j, 0) <= xs) & (ks > j)
            return jnp.where(ok, j, found)

        return jax.lax.fori_loop(1, max(hi - 1, 1), body, jnp.zeros(xs.shape, step), unroll=UNROLL)

    found = [search(lo, hi) for lo, hi in zip([0] + ends[:-1], ends) if hi > lo]
    return jnp.concatenate(found).astype(jnp.int32)


def reached_entrants(m: Members, need, dt: float, entry_budget: tuple[str, str]):
    """Expected entrants [steps + 1, T, N] that have reached each threshold by each step,
    from their need ``need`` [steps + 1, T, N] (log10 $ of offset; step 0 is the start, when
    no entrant has joined yet). Non-decreasing along the steps."""
    tail = upper_tail(entry_budget, m.entry_a, m.entry_b, need)  # P(u >= need[t])
    last = previous_at_or_below(need)

    def body(reached, k):
        j = last[k]
        now = jnp.take_along_axis(reached, j[None], axis=0)[0] + arrivals_between(m, dt, j, k) * tail[k]
        return jax.lax.dynamic_update_index_in_dim(reached, now, k, 0), None

    reached = jnp.zeros(need.shape, jnp.float32)
    reached, _ = jax.lax.scan(body, reached, jnp.arange(1, need.shape[0], dtype=jnp.int32))
    return running(jnp.maximum, reached)  # rounding never makes it fall


def invert(series, targets, fraction):
    """Where the non-decreasing ``series`` [steps + 1, T, N] first reaches each of
    ``targets`` [n, T, N] (> series[0]): (date in steps, float32, interpolated within the
    step by ``fraction(shortfall, rise)``; the step itself, int32, steps + 1 if never)."""
    n_steps = series.shape[0] - 1

    def body(k, hi):  # hi: steps whose value is below the target (the first reaching step)
        return hi + (jax.lax.dynamic_index_in_dim(series, k, 0) < targets).astype(jnp.int32)

    hi = jax.lax.fori_loop(0, n_steps + 1, body, jnp.zeros(targets.shape, jnp.int32), unroll=UNROLL)
    at = jnp.clip(hi, 1, n_steps)
    v1 = jnp.take_along_axis(series, at, axis=0)
    v0 = jnp.take_along_axis(series, at - 1, axis=0)
    date = (at - 1).astype(jnp.float32) + fraction(targets - v0, v1 - v0)
    return jnp.where(hi <= n_steps, date, jnp.nan), hi


def kth_smallest(a, b, ranks: tuple[int, ...]):
    """The r-th smallest (1-based), for each r in ``ranks``, of the union of ``a`` [m, ...]
    and ``b`` [n, ...], each sorted along axis 0 (NaN: never, after every date), by a
    binary search on how many come from ``a``; [len(ranks), ...]."""
    a = jnp.where(jnp.isnan(a), jnp.inf, a)
    b = jnp.where(jnp.isnan(b), jnp.inf, b)
    m, n = a.shape[0], b.shape[0]
    pad = lambda x: jnp.concatenate([jnp.full((1,) + x.shape[1:], -jnp.inf), x, jnp.full((1,) + x.shape[1:], jnp.inf)])
    a, b = pad(a), pad(b)  # a[i] is the i-th smallest (1-based); a[0] = -inf, a[m + 1] = inf
    # every rank at once (one search in the program, not one per rank); a rank whose
    # search has converged (lo = hi) is left as it is by the further rounds
    shape = (len(ranks),) + (1,) * (a.ndim - 1)
    ks = np.asarray(ranks, np.int32)
    lo_0, hi_0 = np.maximum(0, ks - n), np.minimum(ks, m)  # i: how many of the r smallest come from a
    rounds = max(1, math.ceil(math.log2(int(np.max(hi_0 - lo_0)) + 2)))
    r = jnp.asarray(ks.reshape(shape))
    full = lambda x: jnp.broadcast_to(jnp.asarray(x.reshape(shape)), (len(ranks),) + a.shape[1:])
    lo, hi = full(lo_0), full(hi_0)
    take = lambda x, i: jnp.take_along_axis(x, i, axis=0)
    for _ in range(rounds):
        i = (lo + hi + 1) // 2
        too_many = take(a, i) > take(b, r - i + 1)  # a's i-th is after b's (r - i + 1)-th
        lo, hi = jnp.where(too_many, lo, i), jnp.where(too_many, i - 1, hi)
    picked = jnp.maximum(take(a, lo), take(b, r - lo))
    return jnp.where(jnp.isinf(picked), jnp.nan, picked)


def at_time(series, steps):
    """``series`` [steps + 1, T, N] at fractional ``steps`` [..., N] (linear within a step)."""
    n = series.shape[0] - 1
    k = jnp.clip(jnp.floor(steps), 0, n - 1).astype(jnp.int32)
    w = jnp.clip(steps - k.astype(jnp.float32), 0.0, 1.0)
    take = lambda i: jnp.take_along_axis(series, jnp.broadcast_to(i[:, None], (i.shape[0],) + series.shape[1:]), axis=0)
    return (1.0 - w[:, None]) * take(k) + w[:, None] * take(k + 1)


def count_members(
    pop: Population,
    m: Members,
    times,
    point_dates,
    share_level,
    arrival_dates,
    reached,
    key_data,
    thresholds: tuple[int, ...],
    poisson,
    binomial,
    dt: float,
):
    """Members of a group that have reached each threshold by each of ``times`` [n, N]
    (years since the start, any order; negative: none), [n, T, N] float32.

    point_dates [points, T, N]: the sampled initial members' dates (years; NaN: never);
    share_level [steps + 1, T, N]: the upper-tail share of the initial budget distribution
    at the lowest need so far (members with a smaller share have reached X), at each step
    of ``dt`` years; arrival_dates [entrants, T, N] (years) and reached [steps + 1, T, N]:
    the first entrants' dates and the expected entrants reached (see
    :func:`reached_entrants`). The members in the gaps between sampled initial members and
    the entrants after the sampled ones are drawn (``binomial``, ``poisson`` as in
    ``kernels.counting``) in time order, so that each trajectory's counts never fall; the
    draws of a threshold are tied to its stable id in ``thresholds`` (they do not move when
    thresholds are added)."""
    n = times.shape[0]
    order = jnp.argsort(times, axis=0)
    t_sorted = jnp.take_along_axis(times, order, axis=0)
    T, N = share_level.shape[1], share_level.shape[2]
    ids = jnp.asarray(np.asarray(thresholds, np.uint32))
    points = np.asarray(pop.points, np.float32)
    ranks_lo = jnp.asarray(np.concatenate([[0.0], points]))  # rank of the last sampled member reached
    ranks_hi = jnp.asarray(np.concatenate([points, [pop.count + 1.0]]))
    shares_lo = jnp.concatenate([jnp.zeros((1, N)), m.shares])[:, None]  # [points + 1, 1, N]
    shares_hi = jnp.concatenate([m.shares, jnp.ones((1, N))])[:, None]
    level_at = lambda series, t: jnp.where(t >= 0, at_time(series, jnp.broadcast_to(t / dt, (1, N)))[0], 0.0)

    def step(carry, i):
        gap_prev, in_gap, level_prev, tail, drawn_to = carry
        t = t_sorted[i]  # [N]
        total = jnp.zeros((T, N), jnp.float32)
        if pop.count:  # initial members: the sampled ones by their dates, the others drawn in the gaps
            done = jnp.sum((point_dates <= t).astype(jnp.int32), axis=0)  # [T, N]
            level = level_at(share_level, t)
            lo_r, hi_r = ranks_lo[done], ranks_hi[done]
            lo_s = jnp.take_along_axis(shares_lo, done[None], axis=0)[0]
            hi_s = jnp.take_along_axis(shares_hi, done[None], axis=0)[0]
            same = done == gap_prev  # still in the gap of the previous time
            base = jnp.where(same, jnp.maximum(lo_s, level_prev), lo_s)
            left = hi_r - lo_r - 1.0 - jnp.where(same, in_gap, 0.0)
            q = jnp.clip((level - base) / jnp.maximum(hi_s - base, 1e-30), 0.0, 1.0)
            in_gap = jnp.where(same, in_gap, 0.0) + binomial(
                key_data, _stream(pop.stream, 1, i), jnp.maximum(left, 0.0), q, ids
            )
            total = total + lo_r + in_gap
            gap_prev, level_prev = done, jnp.maximum(level, base)
        if pop.entrants:  # entrants: the first ones by their dates, the rest drawn
            seen = jnp.sum((arrival_dates <= t).astype(jnp.float32), axis=0)
            level = level_at(reached, t)
            after = seen >= pop.entrants
            more = poisson(key_data, _stream(pop.stream, 2, i), jnp.maximum(level - drawn_to, 0.0), ids)
            tail = tail + jnp.where(after, more, 0.0)
            drawn_to = jnp.where(after, jnp.maximum(level, drawn_to), drawn_to)
            total = total + seen + tail
        return (gap_prev, in_gap, level_prev, tail, drawn_to), total

    zeros = jnp.zeros((T, N), jnp.float32)
    last = jnp.broadcast_to(m.arrivals[-1], (T, N)) if pop.entrants else zeros
    carry = (jnp.full((T, N), -1, jnp.int32), zeros, zeros, zeros, last)
    _, counts = jax.lax.scan(step, carry, jnp.arange(n))
    inverse = jnp.argsort(order, axis=0)
    return jnp.take_along_axis(counts, jnp.broadcast_to(inverse[:, None], counts.shape), axis=0)


def _stream(group: int, kind: int, i):
    """The counter stream of a group's draws of one kind at the i-th count time."""
    base = np.uint32((group * 0x9E3779B1 + kind * 0xC2B2AE3D) % 2**32)
    return jnp.uint32(base) + jnp.asarray(i, jnp.uint32) * jnp.uint32(0x27D4EB2F)


def count_key_data(keys):
    """The key words [2, N] of the trajectories' count draws, from their shock keys [N]."""
    return jax.random.key_data(fold_in(keys, _COUNT_KEY)).T
