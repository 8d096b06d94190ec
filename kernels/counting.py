"""Poisson and binomial counts from the counter-based hash (draft)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from .normals import threefry2x32

F32 = jnp.float32

SMALL_MEAN = 10.0  # below: inversion; at or above: transformed rejection (PTRS / BTRS)
TERMS = 37  # pmf terms of the inversion: P(Poisson(10) >= 37) = 4.5e-11 < 2**-33
UNROLLED = 2  # rejection rounds drawn for every element before the loop over pending ones
MAX_ROUNDS = 512  # an element still rejected after this many rounds is NaN (never seen)
_SUBKEY_COUNTER = 0xFFFFFFFF
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_STIRLERR_SMALL = {k: math.lgamma(k + 1) - (k + 0.5) * math.log(k) + k - _HALF_LOG_2PI for k in (1, 2, 3)}


# ----------------------------------------------------------------------------- bits


def _lane_keys(key_data):
    kd = jnp.asarray(key_data, jnp.uint32)
    if kd.ndim != 2 or kd.shape[0] != 2:
        raise ValueError(f"key_data must be uint32 [2, N], got shape {kd.shape}")
    return kd[0], kd[1]


def _unit23(w):
    """(top 23 bits + 0.5) / 2**23: a uniform in (0, 1), every step exact in float32."""
    return ((w >> jnp.uint32(9)).astype(jnp.int32).astype(F32) + 0.5) * F32(2.0**-23)


def _half31(w):
    """The low 31 bits as (r + 0.5) / 2**32, a uniform in (0, 0.5] with float32's relative
    precision near 0 (smallest 2**-33), and the complement 0.5 minus it, computed from
    2**31 - 1 - r so that it has the same relative precision near 0."""
    r = (w & jnp.uint32(0x7FFFFFFF)).astype(jnp.int32)
    x = (r.astype(F32) + 0.5) * F32(2.0**-32)
    xc = ((jnp.int32(0x7FFFFFFF) - r).astype(F32) + 0.5) * F32(2.0**-32)
    return x, xc


def _top_bit(w):
    return (w >> jnp.uint32(31)) == jnp.uint32(1)


def uniforms(key_data, stream, shape) -> jax.Array:
    """Uniforms in (0, 1), float32, ``shape + (N,)``, from the hash of counters (stream, i)
    under each trajectory's key."""
    k0, k1 = _lane_keys(key_data)
    shape = tuple(int(s) for s in shape)
    size = math.prod(shape)
    half = (size + 1) // 2
    i = jnp.arange(half, dtype=jnp.uint32)[:, None]
    a, b = threefry2x32(k0, k1, jnp.asarray(stream, jnp.uint32), i)
    words = jnp.stack([a, b], axis=1).reshape(2 * half, k0.shape[0])[:size]
    return _unit23(words).reshape(shape + (k0.shape[0],))


def _subkey(key_data, stream):
    k0, k1 = _lane_keys(key_data)
    return threefry2x32(k0, k1, jnp.asarray(stream, jnp.uint32), jnp.uint32(_SUBKEY_COUNTER))


# ----------------------------------------------------------------------------- numerics


def _two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split12(x):
    """x = hi + lo, both with at most 12 significant bits (mask of the low mantissa bits)."""
    hi = lax.bitcast_convert_type(lax.bitcast_convert_type(x, jnp.uint32) & jnp.uint32(0xFFFFF000), F32)
    return hi, x - hi


def _two_prod(a, b):
    """(hi, lo) with hi + lo = a * b to about 2**-48 relative: every partial product is exact,
    so no multiply-add contraction by the compiler can change the result."""
    ah, al = _split12(a)
    bh, bl = _split12(b)
    s, e1 = _two_sum(ah * bh, ah * bl)
    s, e2 = _two_sum(s, al * bh)
    return s, (e1 + e2) + al * bl


def _stirlerr(x):
    """log(x!) - (x + 1/2) log x + x - log(2 pi)/2 for whole x >= 1."""
    y = 1.0 / x
    y2 = y * y
    s = y * (1.0 / 12 - y2 * (1.0 / 360 - y2 * (1.0 / 1260 - y2 * (1.0 / 1680))))
    for k, v in _STIRLERR_SMALL.items():
        s = jnp.where(x == k, F32(v), s)
    return s


def _bd0(x, mu, d):
    """x log(x / mu) + mu - x for x > 0, given d = x - mu (Loader's deviance term), with
    float32 relative precision: a series in v = d / (x + mu) for |v| < 1/4."""
    v = d / (x + mu)
    v2 = v * v
    poly = 1.0 / 3 + v2 * (1.0 / 5 + v2 * (1.0 / 7 + v2 * (1.0 / 9 + v2 * (1.0 / 11 + v2 * (1.0 / 13)))))
    series = d * v + 2.0 * x * v * v2 * poly
    direct = x * jnp.log1p(d / mu) - d
    return jnp.where(jnp.abs(v) < 0.25, series, direct)


# ----------------------------------------------------------------------------- inversion


def _invert(w, p0, factor):
    """Inversion by a search over the first TERMS pmf values p_0, p_k = p_{k-1} factor(k).
    The uniform v is split by its top bit: v = x (compare with the upper tail sums) or
    v = 1 - x (compare with the lower ones), x in (0, 1/2] with resolution down to 2**-33."""
    lower = _top_bit(w)
    x, _ = _half31(w)
    ps = [p0]
    for k in range(1, TERMS):
        ps.append(ps[-1] * factor(k))
    cdf, below = [], F32(0.0)
    for k in range(TERMS - 1):
        below = below + ps[k]
        cdf.append(below)
    sf, above = [None] * (TERMS - 1), F32(0.0)
    for k in range(TERMS - 2, -1, -1):
        above = above + ps[k + 1]
        sf[k] = above
    count = jnp.zeros(jnp.shape(x), F32)
    for k in range(TERMS - 1):
        count = count + jnp.where(lower, cdf[k] <= x, sf[k] >= x).astype(F32)
    return count


# ----------------------------------------------------------------------------- rejection


def _signed(w):
    """(U, us): U uniform in (-1/2, 1/2) from the word's sign bit and 31 bits, us = 1/2 - |U|,
    each with float32 relative precision."""
    x, xc = _half31(w)
    return jnp.where(_top_bit(w), -x, x), xc


def _buffer(size: int) -> int:
    return min(size, max(64, -(-size // 8)))


def _rejection(propose, params, s0, s1, active):
    """Per element of ``active`` [M, N], the value of its first accepted round: round r of
    element e of lane l hashes the counters (e, r) under the lane's subkey (s0, s1)[l]."""
    m, n = active.shape
    e = jnp.arange(m, dtype=jnp.uint32)[:, None]
    value = jnp.zeros(active.shape, F32)
    pending = active
    for r in range(UNROLLED):
        w0, w1 = threefry2x32(s0, s1, e, jnp.uint32(r))
        v, ok = propose(params, w0, w1)
        value = jnp.where(pending & ok, v, value)
        pending = pending & ~ok
    size = m * n
    buf = _buffer(size)
    flat = tuple(jnp.broadcast_to(p, (m, n)).reshape(size) for p in params)

    def cond(state):
        return jnp.any(state[1])

    def body(state):
        value, pending, rounds = state
        idx = jnp.nonzero(pending, size=buf, fill_value=size)[0]
        get = lambda x: x.at[idx].get(mode="clip")
        lane = jnp.minimum(idx, size - 1) % n
        elem = (jnp.minimum(idx, size - 1) // n).astype(jnp.uint32)
        r = get(rounds)
        w0, w1 = threefry2x32(s0[lane], s1[lane], elem, r)
        v, ok = propose(tuple(get(p) for p in flat), w0, w1)
        done = ok | (r >= MAX_ROUNDS - 1)
        v = jnp.where(ok, v, jnp.nan)
        value = value.at[idx].set(jnp.where(done, v, get(value)), mode="drop")
        pending = pending.at[idx].set(~done, mode="drop")
        rounds = rounds.at[idx].set(r + jnp.uint32(1), mode="drop")
        return value, pending, rounds

    state = (value.reshape(size), pending.reshape(size), jnp.full(size, UNROLLED, jnp.uint32))
    value, _, _ = lax.while_loop(cond, body, state)
    return value.reshape(m, n)


def _ptrs_propose(params, w0, w1):
    """One round of Hormann's PTRS for Poisson(lam), lam >= 10: (j, accepted), the count
    being floor(lam) + j. The acceptance test is in Loader's form around the mean."""
    (lam,) = params
    slam = jnp.sqrt(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    m = jnp.floor(lam)
    frac = lam - m
    u, us = _signed(w0)
    v = _unit23(w1)
    j = jnp.floor((2.0 * a / us + b) * u + (frac + 0.43))
    quick = (us >= 0.07) & (v <= vr)
    reject = (j < -m) | ((us < 0.013) & (v > us))
    zero = j == -m
    x = jnp.maximum(m + j, 1.0)
    d = j - frac  # k - lam
    log_pk = jnp.where(zero, -lam, -(_stirlerr(x) + _bd0(x, lam, d)))
    us2 = us * us
    lhs = jnp.log(v * invalpha * us2 / (a + b * us2) * jnp.where(zero, 1.0, jnp.sqrt(2.0 * math.pi * x)))
    return j, quick | (~reject & (lhs <= log_pk))


def _btrs_propose(params, w0, w1):
    """One round of Hormann's BTRS for Binomial(n, p), p <= 1/2, n p >= 10: (j, accepted),
    the count being the mode m plus j. The test compares log f(k) / f(m) in Loader's form,
    every term relative to the mean."""
    n, p, mean, mean_q, mf, rest, dm, log_fm, edge0, edge_n, b, a, alpha, vr = params
    u, us = _signed(w0)
    v = _unit23(w1)
    j = jnp.floor((2.0 * a / us + b) * u + (0.5 - dm))
    quick = (us >= 0.07) & (v <= vr)
    reject = (j < -mf) | (j > rest)
    jc = jnp.clip(j, 1.0 - mf, rest - 1.0)
    kc = mf + jc
    nk = rest - jc
    d = jc + dm  # k - n p
    log_fk = _stirlerr(kc) + _stirlerr(nk) + _bd0(kc, mean, d) + _bd0(nk, mean_q, -d)
    edge = jnp.where(j < jc, edge0, jnp.where(j > jc, edge_n, 0.0))
    us2 = us * us
    lhs = jnp.log(v * alpha * us2 / (a + b * us2) * jnp.sqrt((kc / mf) * (nk / rest)))
    return j, quick | (~reject & (lhs <= log_fm - log_fk + edge))


# ----------------------------------------------------------------------------- samplers


def _as_elements(x):
    x = jnp.asarray(x, F32)
    if x.ndim == 0:
        raise ValueError("parameters must have the trajectories on their last axis")
    return x.reshape(-1, x.shape[-1])


def poisson(key_data, stream, lam) -> jax.Array:
    """Poisson(lam) counts as float32, lam float32 [..., N] (>= 0; 0 -> 0; inf/nan -> nan)."""
    lam = jnp.asarray(lam, F32)
    shape = lam.shape
    lam2 = _as_elements(lam)
    s0, s1 = _subkey(key_data, stream)
    e = jnp.arange(lam2.shape[0], dtype=jnp.uint32)[:, None]
    w0, _ = threefry2x32(s0, s1, e, jnp.uint32(0))
    small = lam2 < SMALL_MEAN
    lam_s = jnp.where(small, lam2, 0.0)
    inv = _invert(w0, jnp.exp(-lam_s), lambda k: lam_s * F32(1.0 / k))
    big = (lam2 >= SMALL_MEAN) & jnp.isfinite(lam2)
    lam_b = jnp.where(big, lam2, SMALL_MEAN)
    j = _rejection(_ptrs_propose, (lam_b,), s0, s1, big)
    out = jnp.where(small, inv, jnp.floor(lam_b) + j)
    out = jnp.where((lam2 >= 0) & jnp.isfinite(lam2), out, jnp.nan)
    return out.reshape(shape)


def binomial(key_data, stream, n, p) -> jax.Array:
    """Binomial(n, p) counts as float32, n float32 whole numbers [..., N] (0 <= n <= 1e12),
    p in [0, 1]."""
    n = jnp.asarray(n, F32)
    p = jnp.asarray(p, F32)
    shape = jnp.broadcast_shapes(n.shape, p.shape)
    n2 = _as_elements(jnp.broadcast_to(n, shape))
    p2 = _as_elements(jnp.broadcast_to(p, shape))
    valid = (n2 >= 0) & jnp.isfinite(n2) & (p2 >= 0) & (p2 <= 1)
    n2 = jnp.where(valid, n2, 0.0)
    flip = p2 > 0.5
    pp = jnp.where(valid, jnp.where(flip, 1.0 - p2, p2), 0.0)
    qq = 1.0 - pp
    hi, lo = _two_prod(n2, pp)
    s0, s1 = _subkey(key_data, stream)
    e = jnp.arange(n2.shape[0], dtype=jnp.uint32)[:, None]
    w0, _ = threefry2x32(s0, s1, e, jnp.uint32(0))

    small = hi < SMALL_MEAN
    n_s = jnp.where(small, n2, 0.0)
    r_s = jnp.where(small, pp / qq, 0.0)
    p0 = jnp.exp(n_s * jnp.log1p(-jnp.where(small, pp, 0.0)))
    inv = _invert(w0, p0, lambda k: (n_s - F32(k - 1)) * (r_s * F32(1.0 / k)))

    big = ~small
    nb = jnp.where(big, n2, 20.0)
    pb = jnp.where(big, pp, 0.5)
    hib = jnp.where(big, hi, 10.0)
    lob = jnp.where(big, lo, 0.0)
    qb = 1.0 - pb
    mh = jnp.floor(hib)
    mi = jnp.floor(((hib - mh) + lob) + pb)  # the mode floor((n + 1) p) is mh + mi
    mf = mh + mi
    dm = ((mi - (hib - mh)) - lob)  # mode - n p
    rest = nb - mf  # n - mode
    mean_q = (nb - hib) - lob
    spq = jnp.sqrt(hib * qb)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * pb
    alpha = (2.83 + 5.1 / b) * spq
    vr = 0.92 - 4.2 / b
    log_fm = _stirlerr(mf) + _stirlerr(rest) + _bd0(mf, hib, dm) + _bd0(rest, mean_q, -dm)
    edge0 = jnp.log(qb / hib)
    edge_n = jnp.log(pb / mean_q)
    params = (nb, pb, hib, mean_q, mf, rest, dm, log_fm, edge0, edge_n, b, a, alpha, vr)
    j = _rejection(_btrs_propose, params, s0, s1, big)
    t = mi + j
    s, es = _two_sum(nb, -mh)
    out_big = jnp.where(flip, s + (es - t), mh + t)
    out_small = jnp.where(flip, n2 - inv, inv)
    out = jnp.where(small, out_small, out_big)
    return jnp.where(valid, out, jnp.nan).reshape(shape)
