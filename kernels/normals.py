"""Standard normal shocks from a counter-based generator, written out for speed.

The hash is Threefry-2x32 with 20 rounds (Salmon et al. 2011, "Parallel random numbers:
as easy as 1, 2, 3"), the same function as JAX's ``threefry2x32`` PRNG: tests check it
word for word against JAX's implementation and the Random123 known-answer vectors. It is
written out here because JAX lowers its own threefry to a rolled loop on CPU and keeps one
of the two output words per hash; this version is unrolled (one fused kernel) and uses both
words, so a normal costs half a hash plus one inverse error function.

Generators (a run option, recorded in every output):

* ``threefry2x32`` (default): block ``b`` of a trajectory with key (k0, k1) hashes the
  counters (b, 0), (b, 1), ...; the first output words give the first half of the block's
  normals, the second words the second half. A word's top 23 bits m give a uniform
  u = (m + 0.5) / 2**23 in (0, 1), and the normal is sqrt(2) erfinv(2u - 1) (|z| < 5.3), with
  Giles' single-precision erfinv written out (relative error < 1e-6; XLA's own is slower
  on CPU and less accurate near +-1).
* ``jax``: ``jax.random.normal(fold_in(key, b), shape)``, JAX's own sampler; slower on
  CPU, kept as an independent check of the default.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

GENERATORS = ("threefry2x32", "jax")
DEFAULT_GENERATOR = "threefry2x32"

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32-20 of the counters (x0, x1) under the key (k0, k1), all uint32
    (broadcast together); returns the two output words."""
    ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(_PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = (x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r))
            x1 = x1 ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x0, x1


def fold_in(keys, data):
    """``jax.random.fold_in`` of each of ``keys`` (typed threefry2x32 keys) with each of
    ``data`` (uint32), broadcast together, in one call: JAX lowers its hash to a loop on
    CPU, and each call site costs about 0.3 s of compiling."""
    data = jnp.asarray(data, jnp.uint32)
    shape = jnp.broadcast_shapes(keys.shape, data.shape)
    flat = lambda x: jnp.broadcast_to(x, shape).reshape(-1)
    return jax.vmap(jax.random.fold_in)(flat(keys), flat(data)).reshape(shape)


def hashed_fold_in(keys, data):
    """:func:`fold_in` bit for bit (the hash of the counters (0, data) under the key), with
    the hash written out, for the per-trajectory draws: compiles faster than JAX's loop.
    The keys are materialised: XLA would otherwise copy the hash into every fusion that
    reads a key (peer's program, with the lanes' keys folded so, compiled for 12 s, not 3)."""
    k = jax.random.key_data(keys)
    a, b = threefry2x32(k[..., 0], k[..., 1], jnp.uint32(0), jnp.asarray(data, jnp.uint32))
    out = jax.lax.optimization_barrier(jnp.stack([a, b], axis=-1))
    return jax.random.wrap_key_data(out, impl="threefry2x32")


def random_bits(keys, size: int):
    """``jax.random.bits(key, (size,))`` per key (JAX's partitionable threefry: word i is
    the XOR of the hash of the counters (0, i)), uint32 ``keys.shape + (size,)``."""
    k = jax.random.key_data(keys)[..., None, :]
    a, b = threefry2x32(k[..., 0], k[..., 1], jnp.uint32(0), jnp.arange(size, dtype=jnp.uint32))
    return a ^ b


# Giles (2010), "Approximating the erfinv function", single precision: coefficients of the
# central (w < 5) and tail polynomials, highest power first.
_ERFINV_CENTRAL = (
    2.81022636e-08,
    3.43273939e-07,
    -3.5233877e-06,
    -4.39150654e-06,
    0.00021858087,
    -0.00125372503,
    -0.00417768164,
    0.246640727,
    1.50140941,
)
_ERFINV_TAIL = (
    -0.000200214257,
    0.000100950558,
    0.00134934322,
    -0.00367342844,
    0.00573950773,
    -0.0076224613,
    0.00943887047,
    1.00167406,
    2.83297682,
)


def _erfinv(x):
    """erfinv(x) for |x| < 1 by Giles' single-precision approximation (the one XLA uses),
    with w = -log((1 - x)(1 + x)): both factors are exact in float32, so it is as accurate
    as log1p(-x*x) near +-1 and costs a log instead of a log1p."""
    w = -jnp.log((1.0 - x) * (1.0 + x))

    def poly(coefficients, t):
        p = jnp.float32(coefficients[0])
        for c in coefficients[1:]:
            p = c + p * t
        return p

    return jnp.where(w < 5.0, poly(_ERFINV_CENTRAL, w - 2.5), poly(_ERFINV_TAIL, jnp.sqrt(w) - 3.0)) * x


def to_normal(bits):
    """Standard normals from uint32 words (their top 23 bits, so that every step below is
    exact in float32), by the inverse CDF."""
    m = (bits >> jnp.uint32(9)).astype(jnp.float32)
    return jnp.float32(math.sqrt(2.0)) * _erfinv((2.0 * m + 1.0) * jnp.float32(2.0**-23) - 1.0)


def block_draws(keys, block, size: int, generator: str = DEFAULT_GENERATOR):
    """The draws of block ``block`` (int) of the trajectories whose keys are ``keys`` ([N]
    JAX threefry keys), ``size`` normals each, trajectories on the last axis: pass them to
    :func:`block_normals`. The kernel draws a block ahead and keeps the draws in its loop
    state, so that the hash is not fused into the arithmetic that consumes the normals.
    The two normals of one hash are returned as one complex64 number (real: first word,
    imaginary: second), so that the compiler computes each hash once."""
    if generator == "jax":
        draw = lambda key: jax.random.normal(jax.random.fold_in(key, block), (size,), jnp.float32)
        return jax.vmap(draw, out_axes=1)(keys)
    if generator != "threefry2x32":
        raise ValueError(f"unknown generator {generator!r}; choose one of {', '.join(GENERATORS)}")
    k = jax.random.key_data(keys)
    counters = jnp.arange((size + 1) // 2, dtype=jnp.uint32)[:, None]
    a, b = threefry2x32(k[:, 0], k[:, 1], jnp.asarray(block, jnp.uint32), counters)
    return jax.lax.complex(to_normal(a), to_normal(b))


def block_normals(draws, shape: tuple[int, ...]):
    """Standard normals (float32, ``shape + (N,)``) from a block's draws."""
    if jnp.iscomplexobj(draws):
        draws = jnp.concatenate([jnp.real(draws), jnp.imag(draws)])[: math.prod(shape)]
    return draws.reshape(shape + (draws.shape[-1],))
