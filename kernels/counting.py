"""Poisson and binomial counts, exact and vectorised, from the counter-based Threefry hash.

The engine counts group members (up to 1e12 of them) who can reach a capability: per
trajectory it draws, a few hundred times, Binomial(n, p) with n up to 1e12 and any p, and
Poisson(lam) with lam up to about 1e9. Counts are float32: exact integers below 2**24,
rounded to float32 above (once, from the exact integer). Arrays have the trajectories
(lanes) on the LAST axis, [..., N]; the functions are pure, with no jit inside.

Bits
----
``uniforms(key_data, stream, shape)``: element i of a lane is word i % 2 of the hash of the
counters (stream, i // 2) under the lane's key, as (top 23 bits + 1/2) / 2**23 (every step
exact in float32). These are the counters ``normals.block_draws`` hashes for block
``stream``: pass a key the normals do not use (e.g. a fold_in of the trajectory key).

The samplers hash under a per-stream subkey, the hash of (stream, 2**32 - 1) under the
lane's key, the counters (e, r) for element e (flat index over the leading axes) and
rejection round r. So an element's count depends only on its lane's key, the stream, e and
its own parameters: never on N, on the other lanes, on the tiling or on how many rounds
other elements needed (tests check all of this bit for bit, jitted or not).

Poisson(lam)
------------
* lam < 10: inversion over the first 37 pmf terms p_k = p_(k-1) lam / k, unrolled.
  P(Poisson(10) >= 37) = 4.5e-11 < 2**-33, the finest uniform used, so the truncation
  loses nothing the uniform can resolve. The uniform's top bit chooses a side: v = x is
  compared with the upper tail sums S(k) = sum_(i>k) p_i, v = 1 - x with the lower ones
  C(k), x = (31 bits + 1/2) / 2**32 in (0, 1/2] (resolution 2**-33 near 0). Both tails are
  summed from small terms, so every probability, including P(X >= 1) = 1 - exp(-lam) for
  tiny lam, is resolved to float32 relative precision down to 2**-33 (a pmf tail below
  1.2e-10 is lost: lam < 1e-10 gives 0).
* lam >= 10: Hormann's PTRS (transformed rejection with squeeze, 1993). Float32 as written
  (k log lam - lam - lgamma(k + 1)) would cancel terms of size 2e10 at lam = 1e9, so the
  test is in Loader's saddle-point form around the mean: log f(k) = -stirlerr(k) -
  bd0(k, lam) - log(2 pi k) / 2 with bd0(x, mu) = x log(x / mu) + mu - x computed from
  d = k - lam (exact: k = floor(lam) + j with j a small whole number) by the series
  d v + 2 x (v**3/3 + ... + v**13/13), v = d / (x + mu), for |v| < 1/4 (relative error
  < 1e-6, checked against extended precision), and directly beyond, where its terms cancel
  at most fivefold; stirlerr by Stirling's series (error < 3.2e-9) with exact values for
  k <= 3. Every term is O(1) to O(100), so the test has float32 precision at any lam.
  The proposal's uniform U and 1/2 - |U| come from the same 31 bits, each with float32
  relative precision (so the far tails, us -> 0, are as finely resolved as the mode).

Binomial(n, p)
--------------
* p > 1/2 draws n - Binomial(n, 1 - p) (1 - p is exact); the subtraction is done once,
  exactly, with a two-sum, so the count is rounded to float32 once.
* n p = hi + lo exactly to 2**-45 relative (a two-product from 12-bit halves: every partial
  product is exact, so compiler multiply-add contraction cannot change it); at n = 1e12
  the float32 product alone would move the mean by up to 0.03 standard deviations.
* n p < 10: inversion as for the Poisson, p_k = p_(k-1) (n - k + 1) / k p / q,
  p_0 = exp(n log1p(-p)). The 37 terms suffice as for the Poisson: for k >= n p + 1 the
  binomial tail is below the Poisson tail of the same mean (Anderson and Samuels 1967).
* n p >= 10: Hormann's BTRS (1993). The mode m = floor((n + 1) p) is kept as a float32
  whole number plus a small integer, the proposal as an offset j from it, and the test
  compares log f(k) / f(m) in Loader's form: Stirling errors of k, n - k, m, n - m, the
  deviances of k from n p and of n - k from n q (d = k - n p and -d, never a difference of
  two huge numbers), and the log of two ratios near 1; k = 0 and k = n from their
  neighbours. Tiny p with huge n (q = 1 in float32) is still the exact binomial.

Rejection rounds
----------------
Elements are sampled in tiles (2**14 elements on CPU, so that the intermediates stay in
cache; 2**22 elsewhere). A tile runs UNROLLED = 2 rounds for all its elements, the words of
round r + 1 hashed during round r and kept in the loop state (packed in a complex64, so the
hash is computed once, not once per fusion that reads it). Elements still rejected (1.2 to
8.5 % of them, depending on the mean) are gathered into a buffer of 1/16 of all elements
and run further rounds, each from its own counters, until accepted (a lax.while_loop; again
if the buffer overflowed). So the cost is about 2.4 rounds an element, and the result is
exact: an element still rejected after MAX_ROUNDS = 512 rounds (probability below 1e-270)
would be NaN. Measured, 2 rounds and this tail beat 3 rounds (and a tail 1/32 the size).

Accuracy: "exact" means the algorithms are exact and the arithmetic float32: the pmf or
acceptance ratios carry relative errors of order 1e-6 (inversion: 37 products and sums;
rejection: the bd0 bound above). Tests draw 102,400 counts for each of 20 cases and compare
them with scipy (chi-square on float32-rounded bins); a separate check with 1e7 draws per
case (lam up to 3e10, n up to 1e12 with p from 3e-12 to 0.5) found no deviation.

Speed: ns per draw per lane at N = 2048 lanes x 256 draws, jitted, the best of 10 runs,
on the development VM (2 cores of an Intel Xeon with AVX-512, jax 0.10.1, shared with
other jobs: load average 8, so +-30 % run to run), printed by
``COUNTING_SPEED=full python -m pytest tests/test_counting.py -s -k speed``
(without COUNTING_SPEED, a shorter report with the tests' shapes):
                                              XLA defaults   engine CPU options
  standard normal (normals.block_draws)             5.8            7.0
  poisson, lam = 3                                 19.5           18.6
  poisson, lam = 1e3                               42.0           30.5
  poisson, lam = 1e9                               45.1           36.0
  poisson, lam = 10**U(-3, 9)                      51.9           44.2
  binomial, n = 100, p = 0.03                      24.8           37.9
  binomial, n = 1e6, p = 0.3                       65.9           65.9
  binomial, n = 1e12, p = 1e-9                     70.5           72.9
  binomial, n = 10**U(0, 12), p = U**4             85.9           88.2
  jax.random.poisson, lam = 1e3                   300            347
  jax.random.poisson, lam = 10**U(-3, 9)          583            646
  jax.random.binomial, n = 10**U(0, 12), p = U**4 684            697

(the engine's CPU options: mcengine.engine.CPU_COMPILER_OPTIONS, 512-bit vectors). The
samplers are 7 to 15 times faster than jax.random.poisson and jax.random.binomial on the
same parameters; a count costs 3 to 15 standard normals. Another run of the same cases,
under slightly less load, read 4.4 / 3.0 ns for the normal, 13 to 51 ns for the Poisson
and 23 to 90 ns for the binomial.

Range: lam >= 2**62 returns lam (Poisson(lam) rounded to float32 is lam itself, the next
rounding edge being at least 64 standard deviations away); n above 2**60 is NaN (the
engine needs 1e12; the acceptance test would overflow float32 beyond about 2**63).

Limitations: compiling one sampler takes 3 to 7 s on this CPU (an XLA program with loops,
a compaction and a 37-term inversion); n must be a whole number (not checked); counts
above 2**24 are rounded to float32; under jit XLA contracts multiplies and adds into FMAs
where an op-by-op run would not, but here the floating-point work runs inside the same
compiled loop and branch bodies in both modes (what runs op by op is integer hashing, the
exact two-sum and two-product, and selections), and the tests find the counts
bit-identical. Not run on a GPU yet: the code uses only portable JAX operations (the
complex64 packing of the hash words is bit-exact moves; a test checks NaN and subnormal
patterns on CPU).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .normals import threefry2x32

F32 = jnp.float32

SMALL_MEAN = 10.0  # below: inversion; at or above: transformed rejection (PTRS / BTRS)
HUGE_MEAN = 2.0**62  # from here Poisson(lam) rounded to float32 is lam (64 sd from a rounding edge)
MAX_N = 2.0**60  # binomial n above: NaN (the acceptance test overflows float32 beyond about 2**63)
TERMS = 37  # pmf terms of the inversion: P(Poisson(10) >= 37) = 4.5e-11 < 2**-33
UNROLLED = 2  # rejection rounds of every element before the pending ones are gathered
MAX_ROUNDS = 512  # an element still rejected after this many rounds is NaN (never seen)
PENDING = -1.0  # marks an element whose rejection rounds are not finished (counts are >= 0)
TAIL_SHARE, TAIL_MIN = 16, 64  # buffer for the pending elements: 1/16 of all, at least 64
CPU_BLOCK = 2**14  # elements sampled together on CPU, so that a tile's intermediates stay in cache
GPU_BLOCK = 2**22  # elsewhere: enough to fill the device, and a bound on the intermediates' memory
BLOCK: int | None = None  # None: CPU_BLOCK on CPU, GPU_BLOCK elsewhere (tests set it)
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
    """(hi, lo) with hi + lo = a * b to 2**-45 relative: every partial product is exact, so
    no multiply-add contraction by the compiler can change the result."""
    ah, al = _split12(a)
    bh, bl = _split12(b)
    s, e1 = _two_sum(ah * bh, ah * bl)
    s, e2 = _two_sum(s, al * bh)
    return s, (e1 + e2) + al * bl


def _stirlerr(x, y):
    """log(x!) - (x + 1/2) log x + x - log(2 pi)/2 for whole x >= 1, given y = 1/x: Stirling's
    series to the x**-7 term for x >= 4 (error below 1/(1188 x**9) <= 3.2e-9), exact values
    below."""
    y2 = y * y
    s = y * (1.0 / 12 - y2 * (1.0 / 360 - y2 * (1.0 / 1260 - y2 * (1.0 / 1680))))
    for k, v in _STIRLERR_SMALL.items():
        s = jnp.where(x == k, F32(v), s)
    return s


def _bd0(x, mu, d, inv_sum, inv_mu):
    """x log(x / mu) + mu - x for x > 0 (Loader's deviance term), given d = x - mu,
    inv_sum = 1 / (x + mu) and inv_mu = 1 / mu, with float32 relative precision: for
    |v| < 1/4, v = d / (x + mu), the series d v + 2 x (v**3/3 + v**5/5 + ... + v**13/13)
    (truncation below 1/4**12 of the sum); else x log(x / mu) - d, where the two terms
    cancel at most about fivefold."""
    v = d * inv_sum
    v2 = v * v
    poly = 1.0 / 3 + v2 * (1.0 / 5 + v2 * (1.0 / 7 + v2 * (1.0 / 9 + v2 * (1.0 / 11 + v2 * (1.0 / 13)))))
    series = d * v + 2.0 * x * v * v2 * poly
    direct = x * jnp.log(x * inv_mu) - d
    return jnp.where(jnp.abs(v) < 0.25, series, direct)


# ----------------------------------------------------------------------------- inversion


def _invert(w, p0, factor):
    """The count #{k < TERMS - 1 : P(X > k) >= v} for a uniform v, from the pmf values p_0,
    p_k = p_(k-1) factor(k). The word's top bit picks v = x, compared with the upper tail
    sums S(k) = p_(k+1) + p_(k+2) + ..., or v = 1 - x, compared (as C(k) <= x) with the
    lower sums C(k) = p_0 + ... + p_k; x in (0, 1/2] resolves 2**-33, and each side's sums
    are accumulated from their small end, so both tails keep float32 relative precision."""
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


def _rounds(setup, propose, finish, raw, first, k0, k1, e, active):
    """The counts of the ``active`` elements of a tile after UNROLLED rejection rounds
    (PENDING where none was accepted yet; 0 elsewhere). The draws of round r + 1 are hashed
    during round r and kept in the loop state, so that the hash is computed once, not once
    per fusion that reads its words. It runs in a branch taken only if some element is
    active, so that a tile without one computes none of the constants (the compiler would
    otherwise hoist them out of the loop and compute them anyway)."""

    def run(raw, first):
        d = setup(*raw)

        def body(r, c):
            cur, j = c
            w0, w1 = _bits(cur)
            v, ok = propose(d, w0, w1)
            j = jnp.where(jnp.isnan(j) & ok, v, j)
            return _words(k0, k1, e, lax.convert_element_type(r + 1, jnp.uint32)), j

        _, j = lax.fori_loop(0, UNROLLED, body, (first, jnp.where(active, jnp.nan, F32(0.0))))
        return jnp.where(active, jnp.where(jnp.isnan(j), PENDING, finish(d, j)), 0.0)

    return lax.cond(jnp.any(active), run, lambda raw, first: jnp.zeros(active.shape, F32), raw, first)


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


def _tail(out, raw, s0, s1, lanes: int, setup, propose, finish, ids):
    """Finish the elements of ``out`` (flat) still PENDING after UNROLLED rounds: gather up to
    a buffer of them, run their further rounds until each is accepted, scatter the counts
    back; again while any is left (only if more were pending than the buffer holds)."""
    size = out.shape[0]
    buf = min(size, max(TAIL_MIN, -(-size // TAIL_SHARE)))

    def gather_and_finish(out):
        idx = _compact(out == PENDING, buf)
        at = jnp.minimum(idx, size - 1)
        lane, e = at % lanes, ids[at // lanes]
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
    """(rows, lanes) of the tiles sampled together, about BLOCK elements: whole rows, or a
    slice of the lanes of one row when a row alone has more."""
    block = BLOCK if BLOCK is not None else (CPU_BLOCK if jax.default_backend() == "cpu" else GPU_BLOCK)
    if lanes >= block:
        return 1, block
    return max(1, min(m, block // lanes)), lanes


def _sample(key_data, stream, raw, block, setup, propose, finish, ids=None):
    """Counts [M, N] from the parameter arrays ``raw`` (each [M, N]): ``block`` computes the
    counts of a tile (PENDING where rounds remain), ``_tail`` the rest. A tile is R whole
    rows, or C lanes of one row, so that its keys are the lanes' keys or a slice of them;
    padding elements (parameters 0) are dropped. ``ids`` (uint32 [M], distinct; default
    0..M-1) are the elements' counters: with stable ids, an element's count does not move
    when elements are added or removed around it."""
    s0, s1 = _subkey(key_data, stream)
    m, lanes = raw[0].shape
    r, c = _tile(m, lanes)
    e = jnp.arange(m, dtype=jnp.uint32) if ids is None else jnp.asarray(ids, jnp.uint32).reshape(m)
    if (r, c) == (m, lanes):
        out = block(*raw, s0, s1, e[:, None])
    elif c == lanes:  # tiles of r rows
        mp = -(-m // r) * r
        tiles = tuple(jnp.pad(x, ((0, mp - m), (0, 0))).reshape(mp // r, r, lanes) for x in raw)
        rows = jnp.pad(e, (0, mp - m)).reshape(mp // r, r, 1)
        out = lax.map(lambda a: block(*a[:-1], s0, s1, a[-1]), (*tiles, rows)).reshape(mp, lanes)[:m]
    else:  # tiles of c lanes of one row
        nl = -(-lanes // c)
        tiles = tuple(jnp.pad(x, ((0, 0), (0, nl * c - lanes))).reshape(m * nl, 1, c) for x in raw)
        keys = jnp.pad(jnp.stack([s0, s1]), ((0, 0), (0, nl * c - lanes))).reshape(2, nl, c)

        def one(a):
            *xs, t = a
            k = keys[:, t % nl]
            return block(*xs, k[0], k[1], e[t // nl].reshape(1, 1))

        out = lax.map(one, (*tiles, jnp.arange(m * nl, dtype=jnp.int32))).reshape(m, nl * c)[:, :lanes]
    size = m * lanes
    flat = tuple(x.reshape(size) for x in raw)
    return _tail(out.reshape(size), flat, s0, s1, lanes, setup, propose, finish, e).reshape(m, lanes)


# ----------------------------------------------------------------------------- Poisson


class _Ptrs(NamedTuple):
    lam: jax.Array
    inv_lam: jax.Array
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
    return _Ptrs(lam, 1.0 / lam, b, a, 1.1239 + 1.1328 / (b - 3.4), 0.9277 - 3.6224 / (b - 2.0), m, lam - m)


def _ptrs_propose(d: _Ptrs, w0, w1):
    """One round of PTRS: (j, accepted), the count being m + j. The test compares with
    log f(k) in Loader's form, -stirlerr(k) - bd0(k, lam) - log(2 pi k) / 2, whose terms
    stay small for any lam (no cancellation of k log lam against lam)."""
    u, us = _signed(w0)
    v = _unit23(w1)
    hat = d.a + d.b * us * us
    t = 1.0 / (us * hat)  # 1 / us = hat t and us**2 / hat = us**3 t, from one division
    j = jnp.floor((2.0 * d.a * hat * t + d.b) * u + (d.frac + 0.43))
    quick = (us >= 0.07) & (v <= d.vr)
    reject = (j < -d.m) | ((us < 0.013) & (v > us))
    zero = j == -d.m
    x = jnp.maximum(d.m + j, 1.0)
    t2 = 1.0 / (x * (x + d.lam))  # 1 / x and 1 / (x + lam)
    log_fk = -(_stirlerr(x, (x + d.lam) * t2) + _bd0(x, d.lam, j - d.frac, x * t2, d.inv_lam))
    lhs = jnp.log(v * d.invalpha * (us * us * us) * t * jnp.where(zero, 1.0, jnp.sqrt(2.0 * math.pi * x)))
    return j, quick | (~reject & (lhs <= jnp.where(zero, -d.lam, log_fk)))


def _ptrs_finish(d: _Ptrs, j):
    return d.m + j


def _poisson_big(lam):
    return (lam >= SMALL_MEAN) & (lam < HUGE_MEAN)


def _poisson_tail_setup(lam):
    return _ptrs_setup(jnp.where(_poisson_big(lam), lam, SMALL_MEAN))


def _poisson_block(lam, k0, k1, e):
    first = _words(k0, k1, e, jnp.uint32(0))
    big = _poisson_big(lam)
    rejected = _rounds(_poisson_tail_setup, _ptrs_propose, _ptrs_finish, (lam,), first, k0, k1, e, big)
    small = lam < SMALL_MEAN
    inv = lax.cond(
        jnp.any(small),
        lambda w, lam: _invert(w, jnp.exp(-lam), lambda k: lam * F32(1.0 / k)),
        lambda w, lam: jnp.zeros(lam.shape, F32),
        _bits(first)[0],
        jnp.where(small, lam, 0.0),
    )
    out = jnp.where(small, inv, jnp.where(lam < HUGE_MEAN, rejected, lam))
    return jnp.where((lam >= 0) & jnp.isfinite(lam), out, jnp.nan)


def poisson(key_data, stream, lam, ids=None) -> jax.Array:
    """Poisson(lam) counts as float32, lam float32 [..., N] (>= 0; 0 -> 0; inf/nan -> nan;
    negative -> nan; lam >= 2**62 -> lam, which is Poisson(lam) rounded to float32 but for a
    chance below 1e-300). ``ids``: optional distinct uint32 counters of the elements (the
    leading axes, flattened), so that an element's count is tied to its id, not its place."""
    lam = jnp.asarray(lam, F32)
    out = _sample(
        key_data, stream, (_as_elements(lam),), _poisson_block, _poisson_tail_setup, _ptrs_propose, _ptrs_finish, ids
    )
    return out.reshape(lam.shape)


# ----------------------------------------------------------------------------- binomial


class _Btrs(NamedTuple):
    n: jax.Array
    flip: jax.Array
    mean: jax.Array
    mean_q: jax.Array
    inv_mean: jax.Array
    inv_mean_q: jax.Array
    mh: jax.Array
    mi: jax.Array
    mf: jax.Array
    rest: jax.Array
    inv_m_rest: jax.Array
    dm: jax.Array
    t_m: jax.Array
    edge0: jax.Array
    edge_n: jax.Array
    b: jax.Array
    a: jax.Array
    alpha: jax.Array
    vr: jax.Array


def _binomial_prepare(n, p):
    """(valid, flip, n, p', hi, lo): p' = min(p, 1 - p) (exact) and hi + lo = n p' to
    2**-45 relative; invalid elements (n outside [0, MAX_N], p outside [0, 1], NaN) become
    n = 0."""
    valid = (n >= 0) & (n <= MAX_N) & (p >= 0) & (p <= 1)
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
    inv_mean, inv_mean_q = 1.0 / hi, 1.0 / mean_q
    t_m = (
        _stirlerr(mf, 1.0 / mf)
        + _stirlerr(rest, 1.0 / rest)
        + _bd0(mf, hi, dm, 1.0 / (mf + hi), inv_mean)
        + _bd0(rest, mean_q, -dm, 1.0 / (rest + mean_q), inv_mean_q)
    )
    spq = jnp.sqrt(hi * q)
    b = 1.15 + 2.53 * spq
    return _Btrs(
        n,
        flip,
        hi,
        mean_q,
        inv_mean,
        inv_mean_q,
        mh,
        mi,
        mf,
        rest,
        1.0 / (mf * rest),
        dm,
        t_m,
        jnp.log(q * inv_mean),
        jnp.log(pp * inv_mean_q),
        b,
        -0.0873 + 0.0248 * b + 0.01 * pp,
        (2.83 + 5.1 / b) * spq,
        0.92 - 4.2 / b,
    )


def _btrs_propose(d: _Btrs, w0, w1):
    """One round of BTRS: (j, accepted), the count being m + j (before the flip). The test
    compares with log f(k) / f(m) in Loader's form: Stirling errors, the deviances bd0 of
    k from n p and of n - k from n q, and a log of ratios near 1, all relative to the mean."""
    u, us = _signed(w0)
    v = _unit23(w1)
    hat = d.a + d.b * us * us
    t = 1.0 / (us * hat)  # 1 / us = hat t and us**2 / hat = us**3 t, from one division
    j = jnp.floor((2.0 * d.a * hat * t + d.b) * u + (0.5 - d.dm))
    quick = (us >= 0.07) & (v <= d.vr)
    reject = (j < -d.mf) | (j > d.rest)
    jc = jnp.clip(j, 1.0 - d.mf, d.rest - 1.0)  # k = 0 and k = n from their neighbours
    kc = d.mf + jc
    nk = d.rest - jc
    dk = jc + d.dm  # k - n p
    tk = 1.0 / (kc * (kc + d.mean))  # 1 / k and 1 / (k + n p)
    tn = 1.0 / (nk * (nk + d.mean_q))  # 1 / (n - k) and 1 / (n - k + n q)
    t_k = (
        _stirlerr(kc, (kc + d.mean) * tk)
        + _stirlerr(nk, (nk + d.mean_q) * tn)
        + _bd0(kc, d.mean, dk, kc * tk, d.inv_mean)
        + _bd0(nk, d.mean_q, -dk, nk * tn, d.inv_mean_q)
    )
    edge = jnp.where(j < jc, d.edge0, jnp.where(j > jc, d.edge_n, 0.0))
    lhs = jnp.log(v * d.alpha * (us * us * us) * t * jnp.sqrt(kc * nk * d.inv_m_rest))
    return j, quick | (~reject & (lhs <= d.t_m - t_k + edge))


def _btrs_finish(d: _Btrs, j):
    """The count m + j, or n - (m + j) where p > 1/2, each rounded once to float32."""
    t = d.mi + j
    s, es = _two_sum(d.n, -d.mh)
    return jnp.where(d.flip, s + (es - t), d.mh + t)


def _binomial_tail_setup(n, p):
    valid, flip, n, pp, hi, lo = _binomial_prepare(n, p)
    big = valid & (hi >= SMALL_MEAN)
    return _btrs_setup(
        jnp.where(big, n, 20.0), jnp.where(big, pp, 0.5), jnp.where(big, hi, 10.0), jnp.where(big, lo, 0.0), flip
    )


def _binomial_block(n, p, k0, k1, e):
    first = _words(k0, k1, e, jnp.uint32(0))
    valid, flip, nv, pp, hi, lo = _binomial_prepare(n, p)
    small = hi < SMALL_MEAN
    rejected = _rounds(_binomial_tail_setup, _btrs_propose, _btrs_finish, (n, p), first, k0, k1, e, valid & ~small)

    def invert(w, n, pp):
        r = pp / (1.0 - pp)
        return _invert(w, jnp.exp(n * jnp.log1p(-pp)), lambda k: (n - F32(k - 1)) * (r * F32(1.0 / k)))

    n_s, p_s = jnp.where(small, nv, 0.0), jnp.where(small, pp, 0.0)
    inv = lax.cond(jnp.any(small & valid), invert, lambda w, n, pp: jnp.zeros(n.shape, F32), _bits(first)[0], n_s, p_s)
    return jnp.where(valid, jnp.where(small, jnp.where(flip, nv - inv, inv), rejected), jnp.nan)


def binomial(key_data, stream, n, p, ids=None) -> jax.Array:
    """Binomial(n, p) counts as float32, n float32 whole numbers [..., N] (0 <= n <= 1e12;
    the sampler is valid to 2**60), p in [0, 1] (n or p outside, or NaN -> nan); n and p
    broadcast together. ``ids``: as for :func:`poisson`."""
    n = jnp.asarray(n, F32)
    p = jnp.asarray(p, F32)
    shape = jnp.broadcast_shapes(n.shape, p.shape)
    raw = (_as_elements(jnp.broadcast_to(n, shape)), _as_elements(jnp.broadcast_to(p, shape)))
    out = _sample(key_data, stream, raw, _binomial_block, _binomial_tail_setup, _btrs_propose, _btrs_finish, ids)
    return out.reshape(shape)


def _as_elements(x):
    if x.ndim == 0:
        raise ValueError("parameters must have the trajectories on their last axis")
    return x.reshape(-1, x.shape[-1])
