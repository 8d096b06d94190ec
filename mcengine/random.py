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
    fold = jax.vmap(jax.random.fold_in)
    return fold(fold(jnp.broadcast_to(base, (count,)), hi), lo)


def shock_key(key):
    """Key of the per-step shocks of one trajectory."""
    return jax.random.fold_in(key, _SHOCKS)


def draw_key(key, path: str):
    """The key of one trajectory's draw for the scenario number at ``path``."""
    return jax.random.fold_in(jax.random.fold_in(key, _DRAWS), draw_id(path))


def draw_normal(key, path: str):
    """The standard-normal draw of one trajectory for the scenario number at ``path``."""
    return jax.random.normal(draw_key(key, path), (), jnp.float32)


def draw_id(path: str) -> int:
    """A stable 32-bit id for a dotted scenario path."""
    return zlib.crc32(path.encode("utf-8"))


def split_index(i: int) -> tuple[np.uint32, np.uint32]:
    """A trajectory index as (high, low) 32-bit words."""
    return np.uint32(i >> 32), np.uint32(i & 0xFFFFFFFF)
