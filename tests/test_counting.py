"""Poisson and binomial counts (kernels/counting.py): their distributions match scipy's,
each lane's counts depend only on its key, the stream and its own parameters (bit for
bit, whatever the number of lanes, the tiling, the tail buffer, jit or not, and however
many rounds other lanes need), and the numerical pieces are as accurate as claimed.

False-alarm budget (the seeds are fixed, so a pass is deterministic; this is the chance
that a correct sampler fails for the seeds chosen): 20 chi-square tests at ALPHA = 1e-4
(2e-3); 39 checks of means, variances and correlations at K = 5 standard errors (5.7e-7
each under the normal approximation, 2.2e-5 together); one Kolmogorov-Smirnov test of the
uniforms at 1e-4; bounds of 7 to 8 standard deviations on single edge-case draws (below
1e-8 together). In all about 2.1e-3.

Run with ``-s`` to see the speed report (ns per draw per lane at N = 2048).
"""

from __future__ import annotations

import contextlib
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from scipy import stats

from mcengine.kernels import counting as C
from mcengine.kernels.normals import block_draws, block_normals, threefry2x32

ALPHA = 1e-4  # level of each chi-square test
K = 5.0  # standard errors allowed for a mean, a variance or a correlation
LANES, ROWS = 2048, 50  # each case: 50 elements in each of 2048 lanes, 102,400 draws
STREAM_P, STREAM_B = 11, 12

LAMBDAS = (0.0, 1e-3, 0.5, 3.0, 9.99, 10.0, 30.0, 1e3, 1e6, 1e9)
BINOMIALS = (
    (0, 0.3),
    (1, 0.5),
    (10, 1e-3),
    (20, 0.5),
    (100, 0.07),
    (1e4, 0.3),
    (1e6, 1e-5),
    (1e6, 0.999),
    (1e12, 1e-9),
    (1e12, 0.5),
)
POISSON_EDGES = (
    0.0,
    -1.0,
    np.nan,
    np.inf,
    -np.inf,
    1e-30,
    1e-45,
    9.999999,
    10.0,
    10.000001,
    2.0**24,
    1e12,
    1e18,
    1e19,
    3e38,
)
BINOMIAL_EDGES = (
    (5, 0.0),
    (5, 1.0),
    (0, 0.7),
    (1e12, 0.0),
    (1e12, 1.0),
    (-1, 0.5),
    (5, -0.1),
    (5, 1.1),
    (np.nan, 0.5),
    (5, np.nan),
    (np.inf, 0.5),
    (1e12, 1e-12),
    (1e6, 1.0001e-5),
    (1e6, 9.999e-6),
    (19, 0.5),
    (21, 0.5),
    (1e12, 1e-11),
    (3, 0.5000001),
    (2.0**24 + 2, 0.75),
    (1e12, 0.9999999),
    (1e18, 0.5),
    (2e18, 0.5),
)
MIXED_ROWS = 12  # rows of random parameters over every regime, for the invariance checks
REF_ROUNDS = 40  # rounds of the reference; an element needs more with probability < 0.3**40

POISSON = jax.jit(C.poisson)
BINOMIAL = jax.jit(C.binomial)


def key_data(n: int, seed: int):
    return jax.random.key_data(jax.random.split(jax.random.key(seed), n)).T


def f32(x) -> float:
    return float(np.float32(x))


@contextlib.contextmanager
def settings(**values):
    """Module constants of the samplers changed for a block (they are read when tracing,
    so a function traced inside sees them)."""
    old = {k: getattr(C, k) for k in values}
    try:
        for k, v in values.items():
            setattr(C, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(C, k, v)


# ----------------------------------------------------------------------------- the draws


def _cycle(values, lanes):
    return np.resize(np.asarray(values, np.float32), lanes)


@pytest.fixture(scope="module")
def poisson_case():
    """(key data, lam [rows, LANES], counts): ROWS rows per value of LAMBDAS, then a row of
    edge values and MIXED_ROWS rows of lam = 10**U(-3, 9)."""
    rng = np.random.default_rng(7)
    lam = [np.full((ROWS, LANES), x, np.float32) for x in LAMBDAS]
    lam.append(_cycle(POISSON_EDGES, LANES)[None])
    lam.append((10.0 ** rng.uniform(-3, 9, (MIXED_ROWS, LANES))).astype(np.float32))
    lam = np.concatenate(lam)
    kd = key_data(LANES, 1)
    return kd, lam, np.asarray(POISSON(kd, STREAM_P, jnp.asarray(lam)))


@pytest.fixture(scope="module")
def binomial_case():
    """(key data, n, p, counts) laid out as for the Poisson case; the mixed rows have
    n = round(10**U(0, 12)) and p = U**4, flipped to 1 - p in half of the elements."""
    rng = np.random.default_rng(8)
    n = [np.full((ROWS, LANES), x[0], np.float32) for x in BINOMIALS]
    p = [np.full((ROWS, LANES), x[1], np.float32) for x in BINOMIALS]
    n.append(_cycle([b[0] for b in BINOMIAL_EDGES], LANES)[None])
    p.append(_cycle([b[1] for b in BINOMIAL_EDGES], LANES)[None])
    n.append(np.round(10.0 ** rng.uniform(0, 12, (MIXED_ROWS, LANES))).astype(np.float32))
    q = rng.uniform(0, 1, (MIXED_ROWS, LANES)) ** 4
    p.append(np.where(rng.uniform(size=q.shape) < 0.5, q, 1 - q).astype(np.float32))
    n, p = np.concatenate(n), np.concatenate(p)
    kd = key_data(LANES, 2)
    return kd, n, p, np.asarray(BINOMIAL(kd, STREAM_B, jnp.asarray(n), jnp.asarray(p)))


# ----------------------------------------------------------------------------- distributions


def expected_bins(dist, size: int, nbins: int = 200):
    """Bin edges (float32 values) and expected counts of ``size`` draws of ``dist`` rounded
    to float32 (as the samplers return them), bins merged to expect at least 5 each."""
    qs = dist.ppf(np.arange(1, nbins) / nbins)
    edges = np.unique(np.float32(qs[np.isfinite(qs)]))
    below = np.nextafter(edges, np.float32(-np.inf)).astype(np.float64)
    first = np.ceil((below + edges) / 2)  # the smallest whole number rounding to the edge or above
    first = np.where(np.float32(first) >= edges, first, first + 1)
    surv = np.concatenate([[1.0], dist.sf(first - 1), [0.0]])
    expect = (surv[:-1] - surv[1:]) * size  # bin i: edges[i - 1] <= x < edges[i]
    group, closes, acc = np.zeros(len(expect), int), [], 0.0
    for i, e in enumerate(expect):
        group[i] = len(closes)
        acc += e
        if acc >= 5 and i < len(expect) - 1:
            closes.append(i)
            acc = 0.0
    if acc < 5 and closes:  # a last group expecting too little joins the one before
        group[group == len(closes)] = len(closes) - 1
        closes.pop()
    return edges[closes], np.bincount(group, expect)


def chi_square_p(x, dist) -> float:
    edges, expect = expected_bins(dist, x.size)
    if len(expect) < 2:
        return 1.0
    observed = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(expect))
    return stats.chisquare(observed, expect * (x.size / expect.sum())).pvalue


def check_moments(x, mean, var, kurt_excess, check_var=True):
    """Sample mean and (unbiased) variance within K standard errors; the variance's is
    sqrt(mu4 / n - var**2 (n - 3) / (n (n - 1))) with mu4 = var**2 (3 + excess kurtosis)."""
    x = x.astype(np.float64)
    n = x.size
    assert abs(x.mean() - mean) <= K * math.sqrt(var / n), (x.mean(), mean)
    if check_var:
        se_var = math.sqrt(var**2 * (3.0 + kurt_excess) / n - var**2 * (n - 3) / (n * (n - 1)))
        assert abs(x.var(ddof=1) - var) <= K * se_var, (x.var(ddof=1), var)


@pytest.mark.parametrize("i", range(len(LAMBDAS)), ids=[f"lam={x:g}" for x in LAMBDAS])
def test_poisson_distribution(poisson_case, i):
    lam = f32(LAMBDAS[i])
    x = poisson_case[2][i * ROWS : (i + 1) * ROWS].ravel()
    assert np.all(np.isfinite(x)) and np.all(x >= 0) and np.all(x == np.round(x))
    if lam == 0:
        assert np.all(x == 0)
        return
    assert chi_square_p(x, stats.poisson(lam)) > ALPHA
    check_moments(x, lam, lam, 1.0 / lam)


@pytest.mark.parametrize("i", range(len(BINOMIALS)), ids=[f"n={n:g},p={p:g}" for n, p in BINOMIALS])
def test_binomial_distribution(binomial_case, i):
    n, p = f32(BINOMIALS[i][0]), f32(BINOMIALS[i][1])
    x = binomial_case[3][i * ROWS : (i + 1) * ROWS].ravel()
    assert np.all(np.isfinite(x)) and np.all(x >= 0) and np.all(x <= n) and np.all(x == np.round(x))
    if n == 0:
        assert np.all(x == 0)
        return
    assert chi_square_p(x, stats.binom(n, p)) > ALPHA
    var = n * p * (1 - p)
    # (a Bernoulli variance is a function of its mean: checked with it)
    check_moments(x, n * p, var, (1 - 6 * p * (1 - p)) / var, check_var=n > 1)


def test_elements_are_independent(poisson_case, binomial_case):
    """Neighbouring elements of a lane (counters (e, r) and (e + 1, r)) are uncorrelated."""
    for x in (poisson_case[2][7 * ROWS : 8 * ROWS], binomial_case[3][5 * ROWS : 6 * ROWS]):
        a, b = x[:-1].ravel().astype(np.float64), x[1:].ravel().astype(np.float64)
        assert abs(np.corrcoef(a, b)[0, 1]) <= K / math.sqrt(a.size)


def test_poisson_edge_values(poisson_case):
    lam = poisson_case[1][len(LAMBDAS) * ROWS]
    x = poisson_case[2][len(LAMBDAS) * ROWS]
    invalid = ~(lam >= 0) | ~np.isfinite(lam)
    assert np.all(np.isnan(x[invalid])) and np.all(np.isfinite(x[~invalid]))
    assert np.all(x[lam == 0] == 0) and np.all(x[~invalid] >= 0)
    assert np.all(x[(lam > 0) & (lam < 1e-29)] == 0)  # P(X >= 1) = lam, below the uniforms' 2**-33
    for big in (2.0**24, 1e12, 1e18):  # within 7 standard deviations (plus float32 rounding)
        sel = lam == np.float32(big)
        assert np.all(np.abs(x[sel].astype(np.float64) - f32(big)) <= 7 * math.sqrt(f32(big)) + f32(big) * 2**-23)
    huge = np.isfinite(lam) & (lam >= C.HUGE_MEAN)  # rounded to float32, the count is lam itself
    assert np.any(huge) and np.all(x[huge] == lam[huge])


def test_binomial_edge_values(binomial_case):
    n = binomial_case[1][len(BINOMIALS) * ROWS]
    p = binomial_case[2][len(BINOMIALS) * ROWS]
    x = binomial_case[3][len(BINOMIALS) * ROWS]
    invalid = ~(n >= 0) | ~(n <= C.MAX_N) | ~(p >= 0) | ~(p <= 1)
    assert np.any(invalid & np.isfinite(n) & (n > C.MAX_N))
    assert np.all(np.isnan(x[invalid])) and np.all(np.isfinite(x[~invalid]))
    ok = ~invalid
    assert np.all(x[ok] >= 0) and np.all(x[ok] <= n[ok]) and np.all(x[ok] == np.round(x[ok]))
    assert np.all(x[ok & (p == 0)] == 0) and np.all(x[ok & (p == 1)] == n[ok & (p == 1)]) and np.all(x[n == 0] == 0)
    nn, pp = n[ok].astype(np.float64), p[ok].astype(np.float64)
    assert np.all(np.abs(x[ok] - nn * pp) <= 8 * np.sqrt(nn * pp * (1 - pp)) + 8 + nn * 2.0**-23)


def test_mixed_parameters_have_the_right_means(poisson_case, binomial_case):
    """The rows of random parameters (every regime, switch points included, n up to 1e12,
    p near 0 and near 1): the sum of the draws is within K standard deviations of the sum
    of the means."""
    rows = slice(len(LAMBDAS) * ROWS + 1, None)
    lam, x = poisson_case[1][rows].astype(np.float64), poisson_case[2][rows].astype(np.float64)
    assert abs((x - lam).sum()) <= K * math.sqrt(lam.sum())
    rows = slice(len(BINOMIALS) * ROWS + 1, None)
    n, p, x = (v[rows].astype(np.float64) for v in binomial_case[1:])
    assert abs((x - n * p).sum()) <= K * math.sqrt((n * p * (1 - p)).sum())


# ----------------------------------------------------------------------------- invariance


def reference_poisson(kd, stream, lam):
    """Counts by the plain definition: every element runs rounds 0, 1, ... in order on the
    whole array and keeps its first accepted one (no tiles, no early exit, no tail).
    Also returns how many rounds each element's count took (0 for the inversion)."""
    s0, s1 = C._subkey(kd, stream)
    e = jnp.arange(lam.shape[0], dtype=jnp.uint32)[:, None]
    d = C._poisson_tail_setup(lam)

    def body(r, c):
        j, used = c
        v, ok = C._ptrs_propose(d, *threefry2x32(s0, s1, e, r.astype(jnp.uint32)))
        take = jnp.isnan(j) & ok
        return jnp.where(take, v, j), jnp.where(take, r + 1, used)

    j, used = lax.fori_loop(0, REF_ROUNDS, body, (jnp.full(lam.shape, jnp.nan), jnp.zeros(lam.shape, jnp.int32)))
    small = lam < C.SMALL_MEAN
    ls = jnp.where(small, lam, 0.0)
    inv = C._invert(threefry2x32(s0, s1, e, jnp.uint32(0))[0], jnp.exp(-ls), lambda k: ls * np.float32(1.0 / k))
    out = jnp.where(small, inv, jnp.where(lam < C.HUGE_MEAN, C._ptrs_finish(d, j), lam))
    return jnp.where((lam >= 0) & jnp.isfinite(lam), out, jnp.nan), jnp.where(C._poisson_big(lam), used, 0)


def reference_binomial(kd, stream, n, p):
    s0, s1 = C._subkey(kd, stream)
    e = jnp.arange(n.shape[0], dtype=jnp.uint32)[:, None]
    valid, flip, nv, pp, hi, lo = C._binomial_prepare(n, p)
    small = hi < C.SMALL_MEAN
    d = C._binomial_tail_setup(n, p)

    def body(r, c):
        j, used = c
        v, ok = C._btrs_propose(d, *threefry2x32(s0, s1, e, r.astype(jnp.uint32)))
        take = jnp.isnan(j) & ok
        return jnp.where(take, v, j), jnp.where(take, r + 1, used)

    j, used = lax.fori_loop(0, REF_ROUNDS, body, (jnp.full(n.shape, jnp.nan), jnp.zeros(n.shape, jnp.int32)))
    ns, ps = jnp.where(small, nv, 0.0), jnp.where(small, pp, 0.0)
    r = ps / (1.0 - ps)
    inv = C._invert(
        threefry2x32(s0, s1, e, jnp.uint32(0))[0],
        jnp.exp(ns * jnp.log1p(-ps)),
        lambda k: (ns - np.float32(k - 1)) * (r * np.float32(1.0 / k)),
    )
    out = jnp.where(small, jnp.where(flip, nv - inv, inv), C._btrs_finish(d, j))
    return jnp.where(valid, out, jnp.nan), jnp.where(valid & ~small, used, 0)


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


@pytest.mark.parametrize("kind", ["poisson", "binomial"])
def test_lanes_depend_only_on_their_key_and_parameters(poisson_case, binomial_case, kind):
    """A lane's counts are the same bits as in the N = 2048 draws (jitted, tiles of 8 rows):
    (1) with N = 1000 lanes in a scrambled order, not jitted, in tiles of 256 lanes (the
    last one of each row padded) and a 16-element tail buffer, so that the tail takes
    several passes; (2) from the reference at N = 64, which runs every round for every
    element on the whole array; (3) when the lanes whose elements took the most rounds
    are replaced by lanes with nothing to reject."""
    if kind == "poisson":
        kd, lam, counts = poisson_case
        params, sampler, jitted, reference, stream = (lam,), C.poisson, POISSON, reference_poisson, STREAM_P
    else:
        kd, n, p, counts = binomial_case
        params, sampler, jitted, reference, stream = (n, p), C.binomial, BINOMIAL, reference_binomial, STREAM_B
    lanes = lambda x, sel: tuple(jnp.asarray(v[:, sel]) for v in x)
    first = np.arange(64)
    rng = np.random.default_rng(3)
    order = rng.permutation(np.concatenate([first, rng.permutation(np.arange(64, LANES))[:936]]))
    with settings(BLOCK=256, TAIL_SHARE=10**6, TAIL_MIN=16):
        eager = sampler(kd[:, order], stream, *lanes(params, order))
    assert same(eager, counts[:, order])

    ref, used = jax.jit(lambda k, *x: reference(k, stream, *x))(kd[:, first], *lanes(params, first))
    assert same(ref, counts[:, first])
    used = np.asarray(used)
    assert used.max() > C.UNROLLED + 1  # some elements went through the tail

    heavy = np.unique(np.nonzero(used >= used.max() - 1)[1])
    assert 0 < len(heavy) < 32
    changed = [np.array(v) for v in params]
    changed[0][:, heavy] = 0.0  # lam = 0 or n = 0: nothing to reject
    again = np.asarray(jitted(kd, stream, *(jnp.asarray(v) for v in changed)))
    keep = np.setdiff1d(np.arange(LANES), heavy)
    assert same(again[:, keep], counts[:, keep])


def test_another_stream_gives_other_counts(poisson_case):
    kd, lam, counts = poisson_case
    rows = slice(7 * ROWS, 8 * ROWS)  # lam = 1000
    other_stream = np.asarray(POISSON(kd, STREAM_P + 1, jnp.asarray(lam)))[rows]
    assert np.mean(other_stream == counts[rows]) < 0.05


# ----------------------------------------------------------------------------- numerics


def test_two_prod():
    """hi + lo = n p to 2**-45 relative (the product of two float32 is exact in float64),
    jitted or not (every partial product is exact, so contraction cannot change it)."""
    rng = np.random.default_rng(0)
    n = np.round(10.0 ** rng.uniform(0, 12, 10000)).astype(np.float32)
    p = (rng.uniform(0, 1, 10000) ** 3).astype(np.float32)
    exact = n.astype(np.float64) * p.astype(np.float64)
    (hi, lo), (hi_jit, lo_jit) = (
        [np.asarray(x, np.float64) for x in f(jnp.asarray(n), jnp.asarray(p))]
        for f in (C._two_prod, jax.jit(C._two_prod))
    )
    assert same(hi, hi_jit) and same(lo, lo_jit)
    assert np.all(np.abs(hi + lo - exact) <= 2.0**-45 * exact)


def test_deviance_and_stirling_error_accuracy():
    """bd0 to float32 relative precision (< 1e-6) where it matters (bd0 < 60), against an
    extended-precision reference; stirlerr to 4e-9 absolute."""
    bd0 = jax.jit(lambda x, mu, d: C._bd0(x, mu, d, 1.0 / (x + mu), 1.0 / mu))
    for mu in (10.0, 10.37, 30.5, 137.1, 1000.25, 1e6 + 0.5, 1e9, 5e11, 1e12):
        sd = math.sqrt(mu)
        x = np.unique(np.floor(mu + np.linspace(-min(mu - 1, 80 * sd), 80 * sd, 4001))).astype(np.float32)
        x = x[x >= 1]
        mu32 = np.float32(mu)
        d = (x.astype(np.float64) - float(mu32)).astype(np.float32)
        got = np.asarray(bd0(jnp.asarray(x), jnp.full(x.shape, mu32), jnp.asarray(d)), np.float64)
        xl, ml = x.astype(np.longdouble), np.longdouble(mu32)
        ref = np.asarray(xl * np.log1p((xl - ml) / ml) - (xl - ml), np.float64)
        sel = ref < 60
        assert np.all(np.abs(got - ref)[sel] <= 1e-6 * ref[sel] + 1e-12), mu
    x = np.arange(1, 200, dtype=np.float32)
    got = np.asarray(jax.jit(lambda x: C._stirlerr(x, 1.0 / x))(jnp.asarray(x)), np.float64)
    ref = np.array(
        [math.lgamma(k + 1) - (k + 0.5) * math.log(k) + k - 0.5 * math.log(2 * math.pi) for k in range(1, 200)]
    )
    assert np.max(np.abs(got - ref)) < 4e-9


def test_words_survive_the_complex_packing():
    """The two hash words travel through the round loop as the bits of a complex64: NaN and
    subnormal patterns included, they come back unchanged (jitted, through a loop)."""
    pats = np.array(
        [
            0,
            1,
            0x7F800000,
            0x7F800001,
            0x7FC00000,
            0xFF800001,
            0x7FBFFFFF,
            0x80000001,
            0x007FFFFF,
            0xFFFFFFFF,
            0x80000000,
        ],
        np.uint32,
    )
    w = jnp.asarray(np.concatenate([pats, np.random.default_rng(1).integers(0, 2**32, 5000, dtype=np.uint32)]))

    def trip(a, b):
        c = lax.fori_loop(
            0,
            2,
            lambda i, c: c,
            lax.complex(lax.bitcast_convert_type(a, jnp.float32), lax.bitcast_convert_type(b, jnp.float32)),
        )
        return C._bits(c)

    a, b = jax.jit(trip)(w, w[::-1])
    assert same(a, w) and same(b, w[::-1])


def test_uniform_conversions():
    w = jnp.asarray(np.array([0, 1, 511, 512, 2**31 - 1, 2**31, 2**32 - 1], np.uint32))
    u = np.asarray(C._unit23(w), np.float64)
    assert np.all((u > 0) & (u < 1)) and u[0] == 2.0**-24 and u[-1] == 1 - 2.0**-24
    x, xc = (np.asarray(v, np.float64) for v in C._half31(w))
    assert np.all((x > 0) & (x <= 0.5) & (xc > 0) & (xc <= 0.5))
    assert x[0] == 2.0**-33 and xc[4] == 2.0**-33 and np.all(np.abs(x + xc - 0.5) <= 2.0**-25)


def test_uniforms():
    """Element i of a lane is word i % 2 of the hash of (stream, i // 2) under the lane's
    key, as (top 23 bits + 1/2) / 2**23; a lane's uniforms do not depend on N."""
    kd = key_data(1000, 4)
    draw = jax.jit(lambda k: C.uniforms(k, 9, (5, 7)))
    u = np.asarray(draw(kd))
    assert u.shape == (5, 7, 1000) and u.dtype == np.float32 and np.all((u > 0) & (u < 1))
    words = jax.jit(lambda k: threefry2x32(k[0], k[1], jnp.uint32(9), jnp.arange(18, dtype=jnp.uint32)[:, None]))(kd)
    words = np.stack([np.asarray(w) for w in words], axis=1).reshape(36, 1000)[:35]
    assert same(u.reshape(35, 1000), ((words >> 9).astype(np.float64) + 0.5) / 2**23)
    assert same(np.asarray(draw(kd[:, :40])), u[..., :40])
    assert stats.kstest(u.ravel(), "uniform").pvalue > ALPHA


# ----------------------------------------------------------------------------- speed


def _best(cases: dict, rounds: int, per: int) -> dict:
    """ns per draw of each case (a jitted function and its arguments), the best of
    ``rounds`` interleaved runs (after a first, compiling one)."""
    for f, args in cases.values():
        jax.block_until_ready(f(*args))
    best = dict.fromkeys(cases, math.inf)
    for _ in range(rounds):
        for name, (f, args) in cases.items():
            t = time.perf_counter()
            jax.block_until_ready(f(*args))
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: t / per * 1e9 for name, t in best.items()}


def _speed_cases(rows: int, options, reuse: bool):
    """The cases of the speed report at N = 2048: ``rows`` draws per lane; ``reuse`` takes
    the module's jitted samplers (compiled for the distribution draws, same shapes)."""
    rng = np.random.default_rng(9)
    full = lambda x: jnp.full((rows, LANES), x, jnp.float32)
    mixed_lam = jnp.asarray((10.0 ** rng.uniform(-3, 9, (rows, LANES))).astype(np.float32))
    mixed_n = jnp.asarray(np.round(10.0 ** rng.uniform(0, 12, (rows, LANES))).astype(np.float32))
    mixed_p = jnp.asarray((rng.uniform(0, 1, (rows, LANES)) ** 4).astype(np.float32))
    keys = jax.random.split(jax.random.key(0), LANES)
    kd = jax.random.key_data(keys).T
    pois = POISSON if reuse else jax.jit(lambda k, s, x: C.poisson(k, s, x), compiler_options=options)
    binom = BINOMIAL if reuse else jax.jit(lambda k, s, n, p: C.binomial(k, s, n, p), compiler_options=options)
    normal = jax.jit(lambda k: block_normals(block_draws(k, 0, rows), (rows,)), compiler_options=options)
    jpois = jax.jit(
        jax.vmap(lambda k, x: jax.random.poisson(k, x, (rows,)), in_axes=(0, 1), out_axes=1), compiler_options=options
    )
    jbinom = jax.jit(
        jax.vmap(lambda k, n, p: jax.random.binomial(k, n, p, (rows,)), in_axes=(0, 1, 1), out_axes=1),
        compiler_options=options,
    )
    cases = {
        "normal (normals.block_draws)": (normal, (keys,)),
        "poisson, lam = 3": (pois, (kd, 1, full(3.0))),
        "poisson, lam = 1e3": (pois, (kd, 1, full(1e3))),
        "poisson, lam = 1e9": (pois, (kd, 1, full(1e9))),
        "poisson, lam = 10**U(-3, 9)": (pois, (kd, 1, mixed_lam)),
        "binomial, n = 100, p = 0.03": (binom, (kd, 1, full(100.0), full(0.03))),
        "binomial, n = 1e6, p = 0.3": (binom, (kd, 1, full(1e6), full(0.3))),
        "binomial, n = 1e12, p = 1e-9": (binom, (kd, 1, full(1e12), full(1e-9))),
        "binomial, n = 10**U(0, 12), p = U**4": (binom, (kd, 1, mixed_n, mixed_p)),
        "jax.random.poisson, lam = 1e3": (jpois, (keys, full(1e3))),
        "jax.random.poisson, lam = 10**U(-3, 9)": (jpois, (keys, mixed_lam)),
        "jax.random.binomial, n = 10**U(0, 12), p = U**4": (jbinom, (keys, mixed_n, mixed_p)),
    }
    if reuse:  # the quick report: fewer cases
        for name in (
            "poisson, lam = 1e9",
            "binomial, n = 1e12, p = 1e-9",
            "jax.random.poisson, lam = 1e3",
            "jax.random.binomial, n = 10**U(0, 12), p = U**4",
        ):
            del cases[name]
    return cases


def test_speed_report(poisson_case):
    """ns per draw per lane at N = 2048 (printed, not asserted), next to the project's
    normal and JAX's own samplers. By default a few cases, with the shapes of the
    distribution draws (no new compile of the samplers), two timed runs; with COUNTING_SPEED=full
    every case, 256 draws a lane, best of 10, with XLA's defaults and with the engine's CPU
    options (the table in the module's docstring)."""
    if os.environ.get("COUNTING_SPEED") == "full":
        from mcengine.engine import CPU_COMPILER_OPTIONS

        columns = {"XLA defaults": None, "engine CPU options": CPU_COMPILER_OPTIONS}
        rows, rounds, reuse = 256, 10, False
    else:
        columns, rows, rounds, reuse = {"XLA defaults": None}, poisson_case[1].shape[0], 2, True
    table = {}
    for column, options in columns.items():
        cases = _speed_cases(rows, options, reuse)
        if reuse:  # JAX's samplers cost about 1 us a draw: time them on fewer draws
            small = _speed_cases(64, options, False)
            cases = {k: (small[k] if k.startswith(("jax", "normal")) else v) for k, v in cases.items() if k in small}
            per = {k: (64 if k.startswith(("jax", "normal")) else rows) * LANES for k in cases}
            table[column] = {k: _best({k: v}, rounds, per[k])[k] for k, v in cases.items()}
        else:
            table[column] = _best(cases, rounds, rows * LANES)
    print(f"\nns per draw per lane, N = 2048, best of {rounds} timed runs after an untimed one ({', '.join(columns)}):")
    for name in table[next(iter(columns))]:
        print(f"  {name:50s}" + "".join(f"{table[c][name]:9.1f}" for c in columns))
