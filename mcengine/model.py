"""From a validated scenario to a pure function of trajectory keys.

:func:`build` splits a scenario into a static :class:`Model` (shapes, lags, which features
are on: a jit cache key) and a numeric spec (a pytree: changing its numbers never
recompiles). :func:`trajectories` samples each trajectory's numbers from its own key and
runs the kernel on all of them at once.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from . import random
from .distributions import Dist
from .kernels import Config, Members, Params, Population, combine_releases, simulate
from .layout import OutputLayout, Row
from .scenario import Scenario, correlation_matrix

jax.tree_util.register_dataclass(
    Dist,
    data_fields=["a", "b", "c", "d", "cut_lo", "cut_hi", "lower", "upper", "weights", "parts"],
    meta_fields=["family", "transform", "truncated"],
)

_f32 = lambda x: jnp.asarray(x, jnp.float32)


def sample(dist: Dist, z):
    """Map a standard-normal draw ``z`` (float32 array) to the number, in engine units.
    The number increases with ``z`` (so copula correlations keep their sign); a fixed
    number ignores ``z`` and returns a constant."""
    if dist.family == "fixed":
        return _f32(dist.a)
    if dist.family == "mixture":
        return _mixture(dist, z)
    a = _f32(dist.a)
    b = _f32(dist.b)
    if dist.transform == "log2_over":
        z = -z  # the conversion is decreasing: keep every number increasing in its draw
    if dist.truncated or dist.family in ("triangular", "beta"):
        x = _base_inverse(dist, z)
    elif dist.family == "normal":
        x = a + b * z
    elif dist.family == "lognormal":
        x = 10.0 ** (a + b * z)
    elif dist.family == "uniform":
        x = a + (b - a) * jsp.ndtr(z)
    else:  # pragma: no cover - guarded by the parser
        raise ValueError(dist.family)
    if dist.transform == "log10":
        return jnp.log10(x)
    if dist.transform == "log2_over":
        return math.log10(2.0) / x
    return x


def sample_upper(dist: Dist, s):
    """The number whose upper-tail probability is ``s`` (float32 array in (0, 1)), i.e.
    the inverse CDF at ``1 - s`` computed without losing precision for tiny ``s``: the
    k-th largest of n draws is ``sample_upper(dist, S)`` with S ~ Beta(k, n - k + 1).
    For increasing conversions and the closed-form families only (fixed, normal, uniform
    and lognormal, untruncated; the parser refuses others for budgets): used for budgets."""
    if dist.family == "fixed":
        return _f32(dist.a)
    if dist.family == "uniform":
        a = _f32(dist.a)
        x = a + (_f32(dist.b) - a) * (1.0 - s)
        return jnp.log10(x) if dist.transform == "log10" else x
    return sample(dist, -jsp.ndtri(s))


def _base_inverse(dist: Dist, z):
    """The family's value (its own units, before any conversion) at ``u = Phi(z)`` within
    the kept CDF range: from the lower-tail probability where u <= 1/2, else from the
    upper-tail probability ``1 - u``, so neither tail loses precision; clipped into the
    truncation bounds against rounding."""
    keep = 1.0 - _f32(dist.cut_lo) - _f32(dist.cut_hi)
    u = _f32(dist.cut_lo) + keep * jsp.ndtr(z)
    s = _f32(dist.cut_hi) + keep * jsp.ndtr(-z)
    lower_tail = u <= 0.5
    safe_u, safe_s = jnp.where(lower_tail, u, 0.25), jnp.where(lower_tail, 0.25, s)
    a, b, c, d = (_f32(x) for x in (dist.a, dist.b, dist.c, dist.d))
    f = dist.family
    if f in ("normal", "lognormal"):
        w = jnp.where(lower_tail, a + b * jsp.ndtri(safe_u), a - b * jsp.ndtri(safe_s))
        x = 10.0**w if f == "lognormal" else w
    elif f == "uniform":
        x = jnp.where(lower_tail, a + (b - a) * u, b - (b - a) * s)
    elif f == "triangular":
        # lower-tail formula for u below the mode's CDF, upper-tail one above it
        left = (c - a) / (b - a)
        below = jnp.where(lower_tail, u < left, s > 1.0 - left)
        uu, ss = jnp.where(lower_tail, u, 1.0 - s), jnp.where(lower_tail, 1.0 - u, s)
        x = jnp.where(below, a + jnp.sqrt(uu * (b - a) * (c - a)), b - jnp.sqrt(ss * (b - a) * (b - c)))
    elif f == "beta":
        x = jnp.where(lower_tail, a + (b - a) * betaincinv(c, d, safe_u), b - (b - a) * betaincinv(d, c, safe_s))
    else:  # pragma: no cover - guarded by the parser
        raise ValueError(f)
    return jnp.clip(x, _f32(dist.lower), _f32(dist.upper))


def _sortable(x):
    """float32 -> uint32 keys in the floats' order (-0 just below +0)."""
    bits = jax.lax.bitcast_convert_type(jnp.asarray(x, jnp.float32), jnp.uint32)
    return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(0x80000000))


def _unsortable(k):
    bits = jnp.where(k >> 31 == 1, k & jnp.uint32(0x7FFFFFFF), ~k)
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


def _smallest_true(pred, low, high):
    """The smallest float32 x in (low, high] with ``pred(x)`` true, for ``pred`` false
    below some point and true from it on (``high`` if none): bisection over the float32
    values themselves (32 halvings of the uint32 keys reach adjacent floats whatever the
    bracket), so the result does not depend on the bracket and is monotone wherever
    ``pred`` is."""
    lo, hi = _sortable(low), _sortable(high)
    lo = jnp.where(lo > 0, lo - 1, lo)

    def body(_, state):
        lo, hi = state
        mid = lo + (hi - lo) // 2
        active = hi - lo > 1
        ok = pred(_unsortable(mid))
        return jnp.where(active & ~ok, mid, lo), jnp.where(active & ok, mid, hi)

    _, hi = jax.lax.fori_loop(0, 32, body, (lo, hi))
    return _unsortable(hi)


def betaincinv(a, b, u):
    """x in [0, 1] with I_x(a, b) = u (float32; the regularized incomplete beta's inverse,
    which jax.scipy.special lacks): the smallest float32 x with betainc(a, b, x) >= u."""
    a, b, u = jnp.broadcast_arrays(_f32(a), _f32(b), _f32(u))
    return _smallest_true(lambda x: jsp.betainc(a, b, x) >= u, jnp.zeros_like(u), jnp.ones_like(u))


def _cdf_sf(dist: Dist, y):
    """(P(X <= y), P(X > y)) of a non-mixture at ``y`` in engine units (float32)."""
    if dist.transform == "log10":
        x = 10.0 ** jnp.minimum(y, 38.5)
    elif dist.transform == "log2_over":
        x = math.log10(2.0) / jnp.where(y > 0, y, 1.0)
    else:
        x = y
    a, b, c, d = (_f32(v) for v in (dist.a, dist.b, dist.c, dist.d))
    f = dist.family
    if f == "fixed":
        cdf, sf = (x >= a).astype(jnp.float32), (x < a).astype(jnp.float32)
    elif f in ("normal", "lognormal"):
        w = jnp.log10(jnp.maximum(x, 1e-38)) if f == "lognormal" else x
        sd = jnp.where(b > 0, b, 1.0)
        cdf = jnp.where(b > 0, jsp.ndtr((w - a) / sd), (w >= a).astype(jnp.float32))
        sf = jnp.where(b > 0, jsp.ndtr((a - w) / sd), (w < a).astype(jnp.float32))
        if f == "lognormal":
            cdf, sf = jnp.where(x > 0, cdf, 0.0), jnp.where(x > 0, sf, 1.0)
    elif f == "uniform":
        cdf, sf = jnp.clip((x - a) / (b - a), 0.0, 1.0), jnp.clip((b - x) / (b - a), 0.0, 1.0)
    elif f == "triangular":
        left = jnp.clip(x - a, 0.0, None) ** 2 / ((b - a) * jnp.where(c > a, c - a, 1.0))
        right = jnp.clip(b - x, 0.0, None) ** 2 / ((b - a) * jnp.where(b > c, b - c, 1.0))
        cdf = jnp.clip(jnp.where(x <= c, left, 1.0 - right), 0.0, 1.0)
        sf = jnp.clip(jnp.where(x <= c, 1.0 - left, right), 0.0, 1.0)
    elif f == "beta":
        cdf = jsp.betainc(c, d, jnp.clip((x - a) / (b - a), 0.0, 1.0))
        sf = jsp.betainc(d, c, jnp.clip((b - x) / (b - a), 0.0, 1.0))
    else:  # pragma: no cover - guarded by the parser
        raise ValueError(f)
    if dist.truncated:
        keep = 1.0 - _f32(dist.cut_lo) - _f32(dist.cut_hi)
        cdf = jnp.where(x < dist.lower, 0.0, jnp.clip((cdf - dist.cut_lo) / keep, 0.0, 1.0))
        sf = jnp.where(x >= dist.upper, 0.0, jnp.clip((sf - dist.cut_hi) / keep, 0.0, 1.0))
    if dist.transform == "log2_over":  # decreasing: the tails swap
        return jnp.where(y > 0, sf, 0.0), jnp.where(y > 0, cdf, 1.0)
    return cdf, sf


def _mixture(dist: Dist, z):
    """A mixture's value at ``u = Phi(z)``: the smallest float32 x whose mixture CDF
    reaches u (compared through the upper tail ``1 - u`` where u > 1/2), searched between
    the smallest and the largest of the parts' own values at z (the mixture's quantile
    always lies between them)."""
    z = jnp.asarray(z, jnp.float32)
    values = jnp.stack([jnp.broadcast_to(sample(p, z), z.shape) for p in dist.parts])
    u, s = jsp.ndtr(z), jsp.ndtr(-z)
    w = [_f32(x) for x in dist.weights]

    def reached(x):
        cdfs, sfs = zip(*(_cdf_sf(p, x) for p in dist.parts))
        cdf = sum(wk * ck for wk, ck in zip(w, cdfs))
        sf = sum(wk * sk for wk, sk in zip(w, sfs))
        return jnp.where(u <= 0.5, cdf >= u, sf <= s)

    return _smallest_true(reached, jnp.min(values, axis=0), jnp.max(values, axis=0))


@dataclasses.dataclass(frozen=True)
class Model:
    """Everything static about a scenario's simulation (hashable: a jit cache key)."""

    config: Config
    layout: OutputLayout
    streams: tuple[str, ...]  # dotted prefix of each stream: hardware, algorithms, actors.x, groups.y
    rate_keys: tuple[str, ...]  # the key holding each stream's rate
    groups: tuple[tuple[str, int, tuple[int, ...]], ...]  # (path, count, ranks) of each group
    via: tuple[tuple[int, ...], ...]  # per row: rows it gets releases from
    regimes: int  # number of regimes (0: none)
    correlated: tuple[str, ...]  # draw paths joined by the copula, in matrix order
    span: float  # years from start to horizon
    n_access: int
    inputs: tuple[str, ...] = ()  # uncertain per-trajectory numbers, reported per trajectory

    @property
    def rows(self) -> tuple[Row, ...]:
        return self.layout.rows


def build(scenario: Scenario) -> tuple[Model, dict]:
    """Translate a validated scenario into its static model and numeric spec (a pytree:
    sweeping its numbers never recompiles)."""
    s = scenario
    spy = s.steps_per_year
    layout = OutputLayout.of(s)
    rows, row_stream, hw, algo = layout.rows, [], [], []
    streams, rate_keys, groups = ["hardware", "algorithms"], ["rate", "rate"], []
    for i, a in enumerate(s.actors):
        streams.append(a.path)
        rate_keys.append("growth")
        if a.is_group:
            groups.append((a.path, a.count, a.ranks))
        for _ in a.ranks if a.is_group else (1,):
            row_stream.append(2 + i)
            hw.append(round(a.hw_lag * spy, 9))
            algo.append(round(a.algo_lag * spy, 9))
    base = s.draws()
    per_regime = {
        path: tuple(r.overrides.get(path, base.get(path, _ABSENT.get(path.rsplit(".", 1)[-1]))) for r in s.regimes)
        for path in sorted({p for r in s.regimes for p in r.overrides})
    }
    draws = {**base, **{p: _ABSENT[p.rsplit(".", 1)[-1]] for p in per_regime if p not in base}}
    decaying = tuple(i for i, prefix in enumerate(streams) if f"{prefix}.decay_years" in draws)
    dt = 1.0 / spy
    jumps, jump_specs = [], []
    for i, prefix in enumerate(streams):
        j = _process(s, prefix).jumps
        if j is not None:
            most = max(
                d.quantile(1 - 1e-9)
                for d in (j.per_year,)
                + tuple(r.overrides.get(f"{prefix}.jumps.per_year", j.per_year) for r in s.regimes)
            )
            jumps.append((i, j.size.family, _poisson_bound(most * dt)))
            jump_specs.append(j.size)
    populations = []
    for a in s.actors:
        if not a.is_group:
            continue
        entrants = a.ranks[-1] if a.entry is not None else 0
        points = tuple(range(1, min(a.ranks[-1], a.count) + 1)) if entrants else a.ranks
        entry = a.entry.budget if a.entry is not None else Dist("fixed", 0.0)
        populations.append(
            Population(
                rows.index(Row(a.name, a.ranks[0], "group")),
                a.ranks,
                a.count,
                points,
                (a.budget.family, a.budget.transform),
                entrants,
                (entry.family, entry.transform),
                zlib.crc32(a.path.encode()),
                a.publication_delay is not None,
            )
        )
    names = [row.actor for row in rows]  # releasers are single actors: one row each
    via = tuple(
        tuple(names.index(v) for v in next(a for a in s.actors if a.name == row.actor).access_via) for row in rows
    )
    config = Config(
        n_steps=s.n_steps,
        steps_per_year=spy,
        n_years=math.ceil(s.n_steps / spy),
        row_stream=tuple(row_stream),
        hw_lag_steps=tuple(hw),
        algo_lag_steps=tuple(algo),
        physical=tuple(t.kind == "physical" for t in s.thresholds),
        buffer=int(math.floor(max(hw + algo))) + 2,
        decaying=decaying,
        jumps=tuple(jumps),
        frontier=layout.frontier,
        catch_up=s.catch_up_rate != Dist("fixed", 0.0) or "algorithms.catch_up_rate" in per_regime,
        groups=tuple((row_stream.index(2 + i), len(a.ranks)) for i, a in enumerate(s.actors) if a.is_group),
        capped=tuple(f"{streams[i]}.cap" in draws for i in row_stream),
        populations=tuple(populations),
        threshold_ids=tuple(zlib.crc32(t.name.encode()) for t in s.thresholds),
        delayed=tuple(f"{streams[i]}.publication_delay" in draws for i in row_stream),
        stream_ids=tuple(zlib.crc32(prefix.encode()) for prefix in streams),
    )
    paths, chol = correlation_matrix(s.correlations) if s.correlations else ([], np.zeros((0, 0)))
    inputs = tuple(
        [p for p, d in draws.items() if d.is_random or p in per_regime]
        + [f"{path}.budget#{k}" for (path, _, ranks), pop in zip(groups, populations) for k in ranks if k in pop.points]
    )
    model = Model(
        config,
        layout,
        tuple(streams),
        tuple(rate_keys),
        tuple(groups),
        via,
        len(s.regimes),
        tuple(paths),
        s.horizon - s.start,
        len(s.access_budgets),
        inputs,
    )
    spec = {
        "draws": draws,
        "regime_draws": per_regime,
        "group_budgets": {path: next(a for a in s.actors if a.path == path).budget for path, _, _ in groups},
        "entry_budgets": {a.path: a.entry.budget for a in s.actors if a.entry is not None},
        "jump_sizes": tuple(jump_specs),
        "regime_cdf": np.cumsum([r.weight for r in s.regimes])[:-1].astype(np.float32),
        "chol": chol.astype(np.float32),
        "thresholds": np.array([t.level for t in s.thresholds], np.float32),
        "access": np.array([math.log10(b) for b in s.access_budgets], np.float32),
    }
    return model, spec


# What a number set only by some regimes is in the others: no decay, no cap.
_ABSENT = {"decay_years": Dist("fixed", math.inf), "long_run_rate": Dist("fixed", 0.0), "cap": Dist("fixed", math.inf)}


def _process(s: Scenario, prefix: str):
    if prefix in ("hardware", "algorithms"):
        return getattr(s, prefix).process
    return next(a for a in s.actors if a.path == prefix).process


def _poisson_bound(mean: float) -> int:
    """Smallest k with P(N >= k) < 1e-12 for N ~ Poisson(mean)."""
    k, term, cdf = 0, math.exp(-mean), 0.0
    while 1.0 - cdf - term >= 1e-12 and k < 10_000:
        cdf += term
        k += 1
        term *= mean / k
    return k + 1


BATCHED_GAP = 16  # rank gaps up to this draw their uniforms together (a row of this width each)
MAX_PRODUCT_GAP = 1024  # rank gaps up to this are sampled from uniforms, not by rejection


def _betas(keys, gaps):
    """Beta(a, b) draws [len(gaps)] for whole numbers (a, b) >= 1 in ``gaps``, one per key.
    For a <= MAX_PRODUCT_GAP it is 1 - (the a-th largest of a + b - 1 uniforms), that order
    statistic being a product of successive maxima: prod_i U_i^(1/(a + b - i)), i = 1..a
    (exact, no rejection loop; expm1 keeps the tiny shares of large groups exact), from the
    key's first a uniforms. Larger a use JAX's sampler (a rejection loop, slower to compile)."""
    exponents = lambda a, b: 1.0 / (a + b - 1 - np.arange(a, dtype=np.float32))
    product = lambda u, e: -jnp.expm1(jnp.sum(jnp.log1p(-u) * e, axis=-1))

    def batched(u, e):  # summed in order, so that a gap's zero exponents beyond its a add exactly 0
        total = jnp.zeros(u.shape[:-1], jnp.float32)
        for j in range(u.shape[-1]):
            total = total + jnp.log1p(-u[..., j]) * e[..., j]
        return -jnp.expm1(total)

    out = [jnp.float32(0.0)] * len(gaps)
    small = [i for i, (a, _) in enumerate(gaps) if a <= BATCHED_GAP]
    if small:
        width = max(gaps[i][0] for i in small)
        e = np.zeros((len(small), width), np.float32)  # 0: a uniform beyond the gap's a
        for row, i in enumerate(small):
            e[row, : gaps[i][0]] = exponents(*gaps[i])
        w = batched(random.uniforms(keys[np.asarray(small)], width), e)
        for row, i in enumerate(small):
            out[i] = w[row]
    for i, (a, b) in enumerate(gaps):
        if BATCHED_GAP < a <= MAX_PRODUCT_GAP:
            out[i] = product(random.uniforms(keys[i], a), exponents(a, b))
        elif a > MAX_PRODUCT_GAP:
            out[i] = jax.random.beta(keys[i], float(a), float(b), (), jnp.float32)
    return out


def _params(key, spec: dict, model: Model):
    """Sample the numbers of one trajectory: (Params, regime index, release lags per row,
    the uncertain inputs in ``model.inputs`` order)."""
    draws: dict[str, Dist] = spec["draws"]
    # every draw's key at once (one vectorised hash), then the normals at once
    normal = [p for p, d in draws.items() if d.is_random or p in spec["regime_draws"]]
    normal += [p for p in model.correlated if p not in normal]
    groups = list(zip(model.groups, model.config.populations))
    points = [  # each group's sampled members, largest first: (path, (rank gap, count - rank + 1))
        (f"{path}.budget#{k}", (k - k_prev, count - k + 1))
        for (path, count, _), pop in groups
        for k_prev, k in zip((0,) + pop.points, pop.points)
    ]
    arrival_paths = [f"{path}.entry.arrivals" for (path, _, _), pop in groups if pop.entrants]
    paths = normal + [p for p, _ in points] + arrival_paths + (["regime"] if model.regimes else [])
    keys = random.draw_keys(key, paths)
    key_of = lambda path: keys[paths.index(path)]
    z_of = dict(zip(normal, random.normals(keys[: len(normal)]))) if normal else {}
    betas = _betas(keys[len(normal) : len(normal) + len(points)], [gap for _, gap in points])
    regime = jnp.int32(0)
    if model.regimes:
        u = random.uniforms(key_of("regime"), 1)[0]
        regime = jnp.sum(u >= spec["regime_cdf"]).astype(jnp.int32)
    if model.correlated:
        z = jnp.stack([z_of[p] for p in model.correlated])
        z_of.update(zip(model.correlated, spec["chol"] @ z))

    def value(path, default=None):
        if path not in draws:
            return jnp.float32(default)
        d = draws[path]
        if path not in spec["regime_draws"] and not d.is_random:
            return sample(d, None)
        z = z_of[path]
        if path in spec["regime_draws"]:
            recorded[path] = jnp.stack([sample(dr, z) for dr in spec["regime_draws"][path]])[regime]
        else:
            recorded[path] = sample(d, z)
        return recorded[path]

    recorded = {}

    streams = [(prefix, rk) for prefix, rk in zip(model.streams, model.rate_keys)]
    rate0 = jnp.stack([value(f"{p}.{rk}") for p, rk in streams])
    per_stream = lambda key_, default: jnp.stack([value(f"{p}.{key_}", default) for p, _ in streams])
    level0 = jnp.stack([value("hardware.initial"), value("algorithms.initial")] + [jnp.float32(0)] * (len(streams) - 2))

    members = []
    w_of = iter(betas)
    stack = lambda xs: jnp.stack(xs) if xs else jnp.zeros((0,), jnp.float32)
    for (path, _, ranks), pop in groups:
        dist = spec["group_budgets"][path]
        # Joint order statistics, from the largest down: rank k's upper-tail share steps
        # from rank k_prev's by a Beta(k - k_prev, count - k + 1) fraction of the rest.
        s_prev, tail = jnp.float32(0.0), []
        for _ in pop.points:
            s_prev = s_prev + (1.0 - s_prev) * next(w_of)
            tail.append(s_prev)
        shares = jnp.clip(stack(tail), 1e-37, 1.0 - 1e-7)
        # one call for all the members (one inverse CDF in the program, not one per member)
        offsets = jnp.broadcast_to(sample_upper(dist, shares), shares.shape)
        for i, k in enumerate(pop.points):
            if k in ranks:
                recorded[f"{path}.budget#{k}"] = offsets[i]
        entry = spec["entry_budgets"].get(path, Dist("fixed", 0.0))
        arrivals = (
            jnp.cumsum(random.exponentials(key_of(f"{path}.entry.arrivals"), pop.entrants))
            if pop.entrants
            else jnp.zeros((0,), jnp.float32)
        )
        members.append(
            Members(
                offsets=offsets,
                shares=shares,
                budget_a=jnp.float32(dist.a),
                budget_b=jnp.float32(dist.b),
                entry_rate=value(f"{path}.entry.per_year", 0.0),
                entry_growth=value(f"{path}.entry.per_year_growth", 0.0),
                entry_shift=value(f"{path}.entry.relative_growth", 0.0),
                entry_a=jnp.float32(entry.a),
                entry_b=jnp.float32(entry.b),
                arrivals=arrivals,
                delay=value(f"{path}.publication_delay", 0.0),
            )
        )
    row_path = [f"{'groups' if row.is_group else 'actors'}.{row.actor}" for row in model.rows]
    # a group's rows: the offsets of its sampled members at the reported ranks (entrants aside)
    b0 = [
        recorded.get(f"{p}.budget#{row.rank}", jnp.float32(jnp.nan)) if row.is_group else value(f"{p}.budget")
        for p, row in zip(row_path, model.rows)
    ]
    jump_rate = [value(f"{model.streams[i]}.jumps.per_year") for i, _, _ in model.config.jumps]
    params = Params(
        level0=level0,
        rate0=rate0,
        rate_inf=per_stream("long_run_rate", 0.0),
        decay=per_stream("decay_years", jnp.inf),
        vol=per_stream("volatility", 0.0),
        jump_rate=jnp.stack(jump_rate) if jump_rate else jnp.zeros((0,), jnp.float32),
        jump_a=jnp.asarray([d.a for d in spec["jump_sizes"]], jnp.float32),
        jump_b=jnp.asarray([d.b for d in spec["jump_sizes"]], jnp.float32),
        b0=jnp.stack(b0),
        cap=jnp.stack([value(f"{p}.cap", jnp.inf) for p in row_path]),
        penalty=jnp.stack([value(f"{p}.hw_penalty", 0.0) for p in row_path]),
        thresholds=jnp.asarray(spec["thresholds"]),
        access=jnp.asarray(spec["access"]),
        catch_up=value("algorithms.catch_up_rate", 0.0),
        delay=jnp.stack([value(f"{p}.publication_delay", 0.0) for p in row_path]),
        members=tuple(members),
    )
    release_lag = jnp.stack([value(f"{p}.release_lag", 0.0) for p in row_path])
    inputs = jnp.stack([recorded[p] for p in model.inputs]) if model.inputs else jnp.zeros((0,), jnp.float32)
    return params, regime, release_lag, inputs


Array = Any  # a jax.Array inside the engine, a numpy array once it is on the host


class Trajectories(NamedTuple):
    """Per-trajectory outputs (years since the start; NaN where censored), shapes given
    trajectories-first (as :func:`mcengine.sample_trajectories` returns them):

    regime [N] (index, 0 without regimes); t_first [N, rows, thresholds] by the earliest
    channel; trained and released [N, rows, thresholds] by each channel alone (released:
    NaN for rows without access_via); diffusion [N, access budgets, thresholds]; fan
    [N, years + 1, series] (in the order of the layout's ``stored_fan``); inputs [N,
    len(model.inputs)]: the uncertain per-trajectory numbers in engine units (log10 for
    levels, OOM/yr for rates); t_public [N, rows, thresholds]: the trained date plus the
    row's publication delay (NaN for rows without one, and after the horizon); counts and
    public_counts [N, whole years + 1, thresholds]: organisations that have reached each
    threshold by each whole year from the start, by reaching and by publishing (the
    latter [N, 0, thresholds] if no row has a delay)."""

    regime: Array
    t_first: Array
    trained: Array
    released: Array
    diffusion: Array
    fan: Array
    inputs: Array
    t_public: Array
    counts: Array
    public_counts: Array

    def trajectories_first(self) -> Trajectories:
        """The same outputs with the trajectories moved from the last axis to the first."""
        return Trajectories(*(jnp.moveaxis(x, -1, 0) for x in self))


def trajectories(keys, spec, model: Model) -> Trajectories:
    """Simulate the trajectories whose keys are ``keys`` [N]. The result has the
    trajectories on the LAST axis of every field (the kernel's layout; see
    :meth:`Trajectories.trajectories_first`)."""
    params, regime, release_lag, inputs = jax.vmap(lambda k: _params(k, spec, model), out_axes=-1)(keys)
    if model.groups:
        # materialised: XLA would otherwise recompute a number inside the groups' fusions that
        # broadcast it over thresholds and steps (a group's cap); without groups, letting the
        # numbers fuse into their readers is faster (peer: 5%)
        params = jax.lax.optimization_barrier(params)
    out = simulate(random.shock_keys(keys), params, model.config)
    earliest, released = combine_releases(out.t_first, release_lag, model.via, model.span)
    delayed = jnp.asarray(model.config.delayed)[:, None, None]
    public = out.t_first + params.delay[:, None]
    t_public = jnp.where(delayed & (public <= model.span), public, jnp.nan)
    return Trajectories(
        regime,
        earliest,
        out.t_first,
        released,
        out.diffusion,
        model.layout.stack_fan(out.fan),
        inputs,
        t_public,
        out.counts,
        out.public_counts,
    )
