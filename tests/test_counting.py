"""Poisson and binomial counts (kernels/counting.py): their distributions match scipy's,
each lane's counts depend only on its key, the stream and its own parameters, and the
numerical pieces are as accurate as claimed.

False-alarm budget (the seeds are fixed, so a pass is deterministic; this is the chance
that a correct sampler fails for the seeds chosen): 20 chi-square tests at ALPHA = 1e-4
(2e-3), 40 mean and variance checks at K = 5 standard errors (about 6e-7 each under the
normal approximation, 2.3e-5 together) and one uniformity test of the words at 1e-4: in
all about 2.1e-3.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from mcengine.kernels import counting as C
from mcengine.kernels.normals import block_draws, block_normals, threefry2x32

ALPHA = 1e-4  # level of each chi-square test
K = 5.0  # standard errors allowed for a mean or a variance
LANES, PER_LANE = 1024, 100  # 102,400 draws per case

LAMBDAS = (0.0, 1e-3, 0.5, 3.0, 9.99, 10.0, 30.0, 1e3, 1e6, 1e9)
BINOMIALS = ((0, 0.3), (1, 0.5), (10, 1e-3), (20, 0.5), (100, 0.07), (1e4, 0.3), (1e6, 1e-5), (1e6, 0.999),
             (1e12, 1e-9), (1e12, 0.5))


def key_data(n: int, seed: int = 0):
    return jax.random.key_data(jax.random.split(jax.random.key(seed), n)).T


def f32(x) -> float:
    return float(np.float32(x))


def expected_bins(dist, size: int, nbins: int = 200):
    """Bin edges (float32 values) and expected counts of ``size`` draws of ``dist`` rounded
    to float32 (as the samplers return them), bins merged to expect at least 5."""
    qs = dist.ppf(np.arange(1, nbins) / nbins)
    edges = np.unique(np.float32(qs[np.isfinite(qs)]))
    below = np.nextafter(edges, np.float32(-np.inf)).astype(np.float64)
    mid = (below + edges) / 2
    first = np.ceil(mid)  # the smallest whole number rounding to the edge or above
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


@pytest.fixture(scope="module")
def poisson_draws():
    lam = np.repeat(np.float32(LAMBDAS), PER_LANE)[:, None] * np.ones((1, LANES), np.float32)
    out = np.asarray(jax.jit(C.poisson)(key_data(LANES, 1), 11, jnp.asarray(lam)))
    return out.reshape(len(LAMBDAS), PER_LANE * LANES)


@pytest.fixture(scope="module")
def binomial_draws():
    n = np.repeat(np.float32([b[0] for b in BINOMIALS]), PER_LANE)[:, None] * np.ones((1, LANES), np.float32)
    p = np.repeat(np.float32([b[1] for b in BINOMIALS]), PER_LANE)[:, None] * np.ones((1, LANES), np.float32)
    out = np.asarray(jax.jit(C.binomial)(key_data(LANES, 2), 12, jnp.asarray(n), jnp.asarray(p)))
    return out.reshape(len(BINOMIALS), PER_LANE * LANES)


@pytest.mark.parametrize("i", range(len(LAMBDAS)), ids=[f"lam={x:g}" for x in LAMBDAS])
def test_poisson_distribution(poisson_draws, i):
    lam = f32(LAMBDAS[i])
    x = poisson_draws[i]
    assert np.all(np.isfinite(x)) and np.all(x >= 0) and np.all(x == np.round(x))
    if lam == 0:
        assert np.all(x == 0)
        return
    assert chi_square_p(x, stats.poisson(lam)) > ALPHA
    check_moments(x, lam, lam, 1.0 / lam)


@pytest.mark.parametrize("i", range(len(BINOMIALS)), ids=[f"n={n:g},p={p:g}" for n, p in BINOMIALS])
def test_binomial_distribution(binomial_draws, i):
    n, p = f32(BINOMIALS[i][0]), f32(BINOMIALS[i][1])
    x = binomial_draws[i]
    assert np.all(np.isfinite(x)) and np.all(x >= 0) and np.all(x <= n) and np.all(x == np.round(x))
    if n == 0:
        assert np.all(x == 0)
        return
    assert chi_square_p(x, stats.binom(n, p)) > ALPHA
    var = n * p * (1 - p)
    # (a Bernoulli variance is a function of the mean: checked with it)
    check_moments(x, n * p, var, (1 - 6 * p * (1 - p)) / var, check_var=n > 1)
