"""Poisson and binomial counts for the population kernel (interim version on JAX's own
samplers; per trajectory, results depend only on its key, the stream and its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _keys(key_data, stream):
    keys = jax.random.wrap_key_data(key_data.T)
    return jax.vmap(lambda k: jax.random.fold_in(k, stream))(keys)


def poisson(key_data, stream, lam):
    """Poisson(lam) counts as float32, lam float32 [..., N] (>= 0)."""
    lam = jnp.asarray(lam, jnp.float32)
    draw = lambda k, x: jax.random.poisson(k, x, x.shape).astype(jnp.float32)
    return jax.vmap(draw, in_axes=(0, -1), out_axes=-1)(_keys(key_data, stream), lam)


def binomial(key_data, stream, n, p):
    """Binomial(n, p) counts as float32, n float32 whole numbers [..., N], p in [0, 1]."""
    n, p = jnp.broadcast_arrays(jnp.asarray(n, jnp.float32), jnp.asarray(p, jnp.float32))
    draw = lambda k, a, b: jax.random.binomial(k, a, b, a.shape).astype(jnp.float32)
    return jax.vmap(draw, in_axes=(0, -1, -1), out_axes=-1)(_keys(key_data, stream), n, p)
