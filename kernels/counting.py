"""Poisson and binomial counts from the counter-based hash (draft)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .normals import threefry2x32

F32 = jnp.float32

SMALL_MEAN = 10.0  # below: inversion; at or above: transformed rejection (PTRS / BTRS)
TERMS = 37  # pmf terms of the inversion: P(Poisson(10) >= 37) = 4.5e-11 < 2**-33
UNROLLED = 2  # rejection rounds drawn for every element before the loop over pending ones
MAX_ROUNDS = 512  # an element still rejected after this many rounds is NaN (never seen)
PENDING = -1.0  # marks an element whose rejection rounds are not finished (counts are >= 0)
TAIL_SHARE, TAIL_MIN = 16, 64  # buffer of the pending elements: 1/16 of them, at least 64
CPU_BLOCK = 4096  # elements sampled together on CPU, so that the intermediates stay in cache
BLOCK: int | None = None  # None: CPU_BLOCK on CPU, everything at once elsewhere
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
    """(U, us): U uniform in (-1/2, 1/2) from the word's top bit (sign) and low 31 bits, and
    us = 1/2 - |U| from the complement of those bits, each with float32 relative precision."""
    x, xc = _half31(w)
    return jnp.where(_top_bit(w), -x, x), xc


def _words(k0, k1, e, r):
    """The hash of the counters (e, r), its two words packed as the bits of one complex64
    number so that the compiler computes the hash once for both words."""
    w0, w1 = threefry2x32(k0, k1, e, r)
    return lax.complex(lax.bitcast_convert_type(w0, F32), lax.bitcast_convert_type(w1, F32))


def _bits(c):
    return lax.bitcast_convert_type(jnp.real(c), jnp.uint32), lax.bitcast_convert_type(jnp.imag(c), jnp.uint32)


def _rounds(propose, d, k0, k1, e, active):
    """The first UNROLLED rejection rounds of every element (1-D arrays): (j, w0) with j the
    offset from the first accepted round (NaN: still pending; 0 where not active) and w0 the
    first word of round 0. The loop stops early once no element is pending; the draws of
    the next round are hashed a round ahead and kept in the loop state, so that the hash is
    computed once, not once per consumer of its words."""
    first = _words(k0, k1, e, jnp.uint32(0))

    def body(c):
        r, first, cur, j = c
        w0, w1 = _bits(cur)
        v, ok = propose(d, w0, w1)
        j = jnp.where(jnp.isnan(j) & ok, v, j)
        return r + 1, first, _words(k0, k1, e, (r + 1).astype(jnp.uint32)), j

    init = (jnp.int32(0), first, first, jnp.where(active, jnp.nan, F32(0.0)))
    _, first, _, j = lax.while_loop(lambda c: (c[0] < UNROLLED) & jnp.any(jnp.isnan(c[3])), body, init)
    return j, _bits(first)[0]


def _compact(mask, buf: int):
    """Flat indices of the first ``buf`` True elements of the 1-D ``mask`` in ascending order,
    padded with mask.size: the mask is packed 32 bits a word; each slot finds its word by a
    binary search over the running counts, then its bit by a binary search in the word."""
    size = mask.shape[0]
    bits = jnp.pad(mask, (0, -size % 32)).reshape(-1, 32).astype(jnp.uint32)
    words = jnp.sum(bits << jnp.arange(32, dtype=jnp.uint32), axis=1, dtype=jnp.uint32)
    counts = lax.population_count(words).astype(jnp.int32)
    ends = jnp.cumsum(counts)
    s = jnp.arange(buf, dtype=jnp.int32)
    w = jnp.minimum(jnp.searchsorted(ends, s, side="right"), words.shape[0] - 1)
    rank = s - (ends[w] - counts[w])
    word = words[w]
    pos = jnp.zeros(buf, jnp.uint32)
    for width in (16, 8, 4, 2, 1):
        low = lax.population_count((word >> pos) & jnp.uint32((1 << width) - 1)).astype(jnp.int32)
        go = rank >= low
        rank = jnp.where(go, rank - low, rank)
        pos = jnp.where(go, pos + jnp.uint32(width), pos)
    return jnp.where(s < ends[-1], w * 32 + pos.astype(jnp.int32), size)


def _tail(out, raw, s0, s1, lanes: int, setup, propose, finish):
    """Finish the elements of ``out`` (flat) still PENDING after UNROLLED rounds: gather up to
    a buffer of them, run their further rounds until each is accepted, scatter the counts
    back; again while any is left (only if more were pending than the buffer holds)."""
    size = out.shape[0]
    buf = min(size, max(TAIL_MIN, -(-size // TAIL_SHARE)))

    def gather_and_finish(out):
        idx = _compact(out == PENDING, buf)
        at = jnp.minimum(idx, size - 1)
        lane, e = at % lanes, (at // lanes).astype(jnp.uint32)
        k0, k1 = s0[lane], s1[lane]
        d = setup(*(x[at] for x in raw))

        def body(c):
            r, j = c
            v, ok = propose(d, *threefry2x32(k0, k1, e, r))
            new = jnp.where(ok, v, jnp.where(r >= MAX_ROUNDS - 1, jnp.inf, jnp.nan))
            return r + jnp.uint32(1), jnp.where(jnp.isnan(j), new, j)

        init = (jnp.full(buf, UNROLLED, jnp.uint32), jnp.where(idx < size, jnp.nan, F32(0.0)))
        _, j = lax.while_loop(lambda c: jnp.any(jnp.isnan(c[1])), body, init)
        counts = jnp.where(jnp.isinf(j), jnp.nan, finish(d, j))  # inf: gave up (never seen)
        return out.at[idx].set(counts, mode="drop")

    return lax.while_loop(lambda o: jnp.any(o == PENDING), gather_and_finish, out)


def _tile(m: int, lanes: int) -> tuple[int, int]:
    """(rows, lanes) of the tiles sampled together: about BLOCK elements on CPU (so that a
    tile's intermediates stay in cache), everything at once elsewhere."""
    block = BLOCK if BLOCK is not None else (CPU_BLOCK if jax.default_backend() == "cpu" else m * lanes)
    if lanes >= block:
        return 1, block
    return max(1, min(m, block // lanes)), lanes


def _sample(key_data, stream, raw, block, setup, propose, finish):
    """Counts [M, N] from the parameter arrays ``raw`` (each [M, N]): ``block`` computes the
    counts of a tile [R, C] of elements (PENDING where rounds remain), ``_tail`` the rest.
    Tiles are R whole rows or C lanes of one row, so that their keys are a slice, not a
    gather; padding elements (parameters 0) are dropped."""
    s0, s1 = _subkey(key_data, stream)
    m, lanes = raw[0].shape
    r, c = _tile(m, lanes)
    mp, lp = -(-m // r) * r, -(-lanes // c) * c
    if (r, c) == (m, lanes):
        out = block(*raw, s0, s1, jnp.arange(m, dtype=jnp.uint32)[:, None])
    else:
        nl = lp // c
        pad = lambda x: jnp.pad(x, ((0, mp - m), (0, lp - lanes)))
        tiles = tuple(pad(x).reshape(mp // r, r, nl, c).transpose(0, 2, 1, 3).reshape(-1, r, c) for x in raw)
        keys = jnp.broadcast_to(jnp.pad(jnp.stack([s0, s1]), ((0, 0), (0, lp - lanes))).reshape(2, 1, nl, c),
                                (2, mp // r, nl, c)).reshape(2, -1, c)
        rows = jnp.broadcast_to(jnp.arange(mp, dtype=jnp.uint32).reshape(mp // r, 1, r, 1), (mp // r, nl, r, 1))

        def one(args):
            *xs, k, e = args
            return block(*xs, k[0], k[1], e)

        out = lax.map(one, (*tiles, keys.transpose(1, 0, 2), rows.reshape(-1, r, 1)))
        out = out.reshape(mp // r, nl, r, c).transpose(0, 2, 1, 3).reshape(mp, lp)[:m, :lanes]
    size = m * lanes
    flat = tuple(x.reshape(size) for x in raw)
    return _tail(out.reshape(size), flat, s0, s1, lanes, setup, propose, finish).reshape(m, lanes)


# ----------------------------------------------------------------------------- Poisson


class _Ptrs(NamedTuple):
    lam: jax.Array
    b: jax.Array
    a: jax.Array
    invalpha: jax.Array
    vr: jax.Array
    m: jax.Array
    frac: jax.Array


def _ptrs_setup(lam):
    """Hormann's PTRS constants for lam >= 10, and its floor m and fraction lam - m (exact)."""
    b = 0.931 + 2.53 * jnp.sqrt(lam)
    a = -0.059 + 0.02483 * b
    m = jnp.floor(lam)
    return _Ptrs(lam, b, a, 1.1239 + 1.1328 / (b - 3.4), 0.9277 - 3.6224 / (b - 2.0), m, lam - m)


def _ptrs_propose(d: _Ptrs, w0, w1):
    """One round of PTRS: (j, accepted), the count being m + j. The test compares with
    log f(k) in Loader's form, -stirlerr(k) - bd0(k, lam) - log(2 pi k) / 2, whose terms
    stay small for any lam (no cancellation of k log lam against lam)."""
    u, us = _signed(w0)
    v = _unit23(w1)
    j = jnp.floor((2.0 * d.a / us + d.b) * u + (d.frac + 0.43))
    quick = (us >= 0.07) & (v <= d.vr)
    reject = (j < -d.m) | ((us < 0.013) & (v > us))
    zero = j == -d.m
    x = jnp.maximum(d.m + j, 1.0)
    log_fk = jnp.where(zero, -d.lam, -(_stirlerr(x) + _bd0(x, d.lam, j - d.frac)))
    us2 = us * us
    lhs = jnp.log(v * d.invalpha * us2 / (d.a + d.b * us2) * jnp.where(zero, 1.0, jnp.sqrt(2.0 * math.pi * x)))
    return j, quick | (~reject & (lhs <= log_fk))


def _ptrs_finish(d: _Ptrs, j):
    return d.m + j


def _poisson_big(lam):
    return (lam >= SMALL_MEAN) & jnp.isfinite(lam)


def _poisson_tail_setup(lam):
    return _ptrs_setup(jnp.where(_poisson_big(lam), lam, SMALL_MEAN))


def _poisson_block(lam, k0, k1, e):
    big = _poisson_big(lam)
    d = _poisson_tail_setup(lam)
    j, w0 = _rounds(_ptrs_propose, d, k0, k1, e, big)
    small = lam < SMALL_MEAN
    lam_s = jnp.where(small, lam, 0.0)
    inv = lax.cond(jnp.any(small), lambda w, l: _invert(w, jnp.exp(-l), lambda k: l * F32(1.0 / k)),
                   lambda w, l: jnp.zeros(l.shape, F32), w0, lam_s)
    out = jnp.where(small, inv, jnp.where(jnp.isnan(j), PENDING, _ptrs_finish(d, j)))
    return jnp.where((lam >= 0) & jnp.isfinite(lam), out, jnp.nan)


def poisson(key_data, stream, lam) -> jax.Array:
    """Poisson(lam) counts as float32, lam float32 [..., N] (>= 0; 0 -> 0; inf/nan -> nan)."""
    lam = jnp.asarray(lam, F32)
    out = _sample(key_data, stream, (_as_elements(lam),), _poisson_block, _poisson_tail_setup, _ptrs_propose,
                  _ptrs_finish)
    return out.reshape(lam.shape)


# ----------------------------------------------------------------------------- binomial


class _Btrs(NamedTuple):
    n: jax.Array
    p: jax.Array
    flip: jax.Array
    mean: jax.Array
    mean_q: jax.Array
    mh: jax.Array
    mi: jax.Array
    mf: jax.Array
    rest: jax.Array
    dm: jax.Array
    t_m: jax.Array
    edge0: jax.Array
    edge_n: jax.Array
    b: jax.Array
    a: jax.Array
    alpha: jax.Array
    vr: jax.Array


def _binomial_prepare(n, p):
    """(valid, flip, n, p', hi, lo): p' = min(p, 1 - p) (exact) and hi + lo = n p' to about
    2**-48 relative; invalid elements become n = 0."""
    valid = (n >= 0) & jnp.isfinite(n) & (p >= 0) & (p <= 1)
    n = jnp.where(valid, n, 0.0)
    flip = p > 0.5
    pp = jnp.where(valid, jnp.where(flip, 1.0 - p, p), 0.0)
    hi, lo = _two_prod(n, pp)
    return valid, flip, n, pp, hi, lo


def _btrs_setup(n, pp, hi, lo, flip):
    """Hormann's BTRS constants for n p >= 10, p <= 1/2, with the mode m = floor((n + 1) p)
    kept as mh + mi (mh = floor(hi) exact, mi a small whole number) and dm = m - n p."""
    q = 1.0 - pp
    mh = jnp.floor(hi)
    mi = jnp.floor(((hi - mh) + lo) + pp)
    mf = mh + mi
    dm = (mi - (hi - mh)) - lo
    rest = n - mf  # n - m
    mean_q = (n - hi) - lo  # n q
    spq = jnp.sqrt(hi * q)
    b = 1.15 + 2.53 * spq
    t_m = _stirlerr(mf) + _stirlerr(rest) + _bd0(mf, hi, dm) + _bd0(rest, mean_q, -dm)
    return _Btrs(n, pp, flip, hi, mean_q, mh, mi, mf, rest, dm, t_m, jnp.log(q / hi), jnp.log(pp / mean_q), b,
                 -0.0873 + 0.0248 * b + 0.01 * pp, (2.83 + 5.1 / b) * spq, 0.92 - 4.2 / b)


def _btrs_propose(d: _Btrs, w0, w1):
    """One round of BTRS: (j, accepted), the count being m + j (before the flip). The test
    compares with log f(k) / f(m) in Loader's form: Stirling errors, the deviances bd0 of
    k from n p and of n - k from n q, and a log of ratios near 1, all relative to the mean."""
    u, us = _signed(w0)
    v = _unit23(w1)
    j = jnp.floor((2.0 * d.a / us + d.b) * u + (0.5 - d.dm))
    quick = (us >= 0.07) & (v <= d.vr)
    reject = (j < -d.mf) | (j > d.rest)
    jc = jnp.clip(j, 1.0 - d.mf, d.rest - 1.0)  # k = 0 and k = n from their neighbours
    kc = d.mf + jc
    nk = d.rest - jc
    dk = jc + d.dm  # k - n p
    t_k = _stirlerr(kc) + _stirlerr(nk) + _bd0(kc, d.mean, dk) + _bd0(nk, d.mean_q, -dk)
    edge = jnp.where(j < jc, d.edge0, jnp.where(j > jc, d.edge_n, 0.0))
    us2 = us * us
    lhs = jnp.log(v * d.alpha * us2 / (d.a + d.b * us2) * jnp.sqrt((kc / d.mf) * (nk / d.rest)))
    return j, quick | (~reject & (lhs <= d.t_m - t_k + edge))


def _btrs_finish(d: _Btrs, j):
    """The count m + j, or n - (m + j) where p > 1/2, each rounded once to float32."""
    t = d.mi + j
    s, es = _two_sum(d.n, -d.mh)
    return jnp.where(d.flip, s + (es - t), d.mh + t)


def _binomial_tail_setup(n, p):
    valid, flip, n, pp, hi, lo = _binomial_prepare(n, p)
    big = valid & (hi >= SMALL_MEAN)
    return _btrs_setup(jnp.where(big, n, 20.0), jnp.where(big, pp, 0.5), jnp.where(big, hi, 10.0),
                       jnp.where(big, lo, 0.0), flip)


def _binomial_block(n, p, k0, k1, e):
    valid, flip, n, pp, hi, lo = _binomial_prepare(n, p)
    small = hi < SMALL_MEAN
    big = valid & ~small
    d = _btrs_setup(jnp.where(big, n, 20.0), jnp.where(big, pp, 0.5), jnp.where(big, hi, 10.0),
                    jnp.where(big, lo, 0.0), flip)
    j, w0 = _rounds(_btrs_propose, d, k0, k1, e, big)

    def invert(w, n, pp):
        r = pp / (1.0 - pp)
        return _invert(w, jnp.exp(n * jnp.log1p(-pp)), lambda k: (n - F32(k - 1)) * (r * F32(1.0 / k)))

    n_s, p_s = jnp.where(small, n, 0.0), jnp.where(small, pp, 0.0)
    inv = lax.cond(jnp.any(small & valid), invert, lambda w, n, pp: jnp.zeros(n.shape, F32), w0, n_s, p_s)
    out = jnp.where(small, jnp.where(flip, n - inv, inv), jnp.where(jnp.isnan(j), PENDING, _btrs_finish(d, j)))
    return jnp.where(valid, out, jnp.nan)


def binomial(key_data, stream, n, p) -> jax.Array:
    """Binomial(n, p) counts as float32, n float32 whole numbers [..., N] (0 <= n <= 1e12),
    p in [0, 1]."""
    n = jnp.asarray(n, F32)
    p = jnp.asarray(p, F32)
    shape = jnp.broadcast_shapes(n.shape, p.shape)
    raw = (_as_elements(jnp.broadcast_to(n, shape)), _as_elements(jnp.broadcast_to(p, shape)))
    out = _sample(key_data, stream, raw, _binomial_block, _binomial_tail_setup, _btrs_propose, _btrs_finish)
    return out.reshape(shape)


def _as_elements(x):
    if x.ndim == 0:
        raise ValueError("parameters must have the trajectories on their last axis")
    return x.reshape(-1, x.shape[-1])
