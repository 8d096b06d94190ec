"""The one place that derives random keys.

Keys come from content, never from layout: trajectory ``i`` uses
``fold_in(fold_in(seed_key, i >> 32), i & 0xffffffff)`` whatever chunk or device it runs
on, and each per-trajectory draw folds in a stable id of its dotted scenario path, so
adding an actor does not move the draws of the others. The generator is JAX's
counter-based threefry2x32 (``rbg`` is not split-invariant under ``vmap``).
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ArgumentError
from .kernels.normals import fold_in, hashed_fold_in, random_bits

PRNG_IMPL = "threefry2x32"
_SHOCKS = 0x73686F6B  # stream of per-step shocks
_DRAWS = 0x64726177  # stream of per-trajectory draws


def seed_key(seed: int) -> jax.Array:
    """Raw key data (uint32[2]) for a seed in [0, 2**64)."""
    if not 0 <= seed < 2**64:
        raise ArgumentError(f"seed must be in [0, 2**64), got {seed}")
    return jnp.asarray(np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32))


def trajectory_keys(seed_data: jax.Array, first_hi, first_lo, count: int) -> jax.Array:
    """Keys of trajectories ``first, first+1, ..., first+count-1`` (first = hi*2**32 + lo)."""
    base = jax.random.wrap_key_data(seed_data, impl=PRNG_IMPL)
    lo = jnp.asarray(first_lo, jnp.uint32) + jnp.arange(count, dtype=jnp.uint32)
    hi = jnp.asarray(first_hi, jnp.uint32) + (lo < jnp.asarray(first_lo, jnp.uint32)).astype(jnp.uint32)
    return fold_in(fold_in(jnp.broadcast_to(base, (count,)), hi), lo)


def shock_keys(keys):
    """Keys of the per-step shocks of the trajectories with ``keys``."""
    return fold_in(keys, _SHOCKS)


def draw_keys(key, paths) -> jax.Array:
    """The keys [len(paths)] of one trajectory's draws for the scenario numbers at ``paths``:
    ``fold_in(fold_in(key, draws), draw_id(path))``."""
    ids = jnp.asarray(np.array([draw_id(p) for p in paths], np.uint32).reshape(len(paths)))
    return hashed_fold_in(hashed_fold_in(key, _DRAWS), ids)


# The draws below are JAX's (jax.random.uniform, normal and exponential of a threefry2x32
# key), bit for bit, with the hash written out (see kernels.normals.hashed_fold_in).
_NORMAL_LO = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)


def _unit(bits, lo: float = 0.0):
    """jax.random.uniform's map from 32 random bits to a float32 in [lo, 1)."""
    floats = jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | np.uint32(0x3F800000), jnp.float32) - 1.0
    low = np.float32(lo)
    return jax.lax.max(low, floats * (np.float32(1.0) - low) + low)


def uniforms(keys, size: int) -> jax.Array:
    """``jax.random.uniform(key, (size,))`` per key, float32 ``keys.shape + (size,)``. The
    bits are partitionable (element i depends on i alone), so the first m of them are the
    draw of size m."""
    return _unit(random_bits(keys, size))


def normals(keys) -> jax.Array:
    """``jax.random.normal(key, ())`` per key, float32 ``keys.shape``."""

    def one(key):
        u = _unit(random_bits(key, 1)[..., 0], _NORMAL_LO)
        return np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)

    # Drawn in a loop over the keys, so that the draws are materialised: fused into their
    # readers (one per scenario number), XLA would copy the hash and the inverse error
    # function into each and compile every copy (diffusion-channels compiled in 30.9 s, now
    # 26.7 s), and a draw could round differently depending on its reader.
    if keys.ndim == 1 and keys.shape[0] > 1:
        return jax.lax.map(one, keys)
    return jax.lax.optimization_barrier(one(keys))


def exponentials(key, size: int) -> jax.Array:
    """``jax.random.exponential(key, (size,))``, float32 [size]."""
    return -jnp.log1p(-uniforms(key, size))


def draw_id(path: str) -> int:
    """A stable 32-bit id for a dotted scenario path."""
    return zlib.crc32(path.encode("utf-8"))


def split_index(i: int) -> tuple[np.uint32, np.uint32]:
    """A trajectory index as (high, low) 32-bit words."""
    return np.uint32(i >> 32), np.uint32(i & 0xFFFFFFFF)
