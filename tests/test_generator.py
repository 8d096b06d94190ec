"""The generator of the per-step shocks: the hash is Threefry-2x32-20 word for word, its
normals are standard normal and independent, and the engine's results do not depend on
which generator drew them beyond Monte Carlo error."""

from __future__ import annotations

import math

import jax
import jax.extend.random as jex_random
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mcengine
from mcengine import random
from mcengine.kernels.normals import block_draws, block_normals, fold_in, hashed_fold_in, threefry2x32, to_normal

from .conftest import PEER, exit_code

ALPHA = 1e-3  # significance of every statistical test here (fixed seeds: deterministic)
K = 5.0  # Monte Carlo standard errors allowed for a mean


def test_hash_matches_random123_known_answers():
    """Known-answer vectors of Threefry-2x32-20 from the Random123 distribution."""
    cases = [
        ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    for key, counter, expected in cases:
        out = threefry2x32(*(jnp.uint32(x) for x in key + counter))
        assert [int(w) for w in out] == list(expected)


def test_hash_matches_jax_threefry():
    rng = np.random.default_rng(0)
    key = rng.integers(0, 2**32, 2, dtype=np.uint32)
    x = rng.integers(0, 2**32, (2, 1000), dtype=np.uint32)
    ours = threefry2x32(jnp.uint32(key[0]), jnp.uint32(key[1]), jnp.asarray(x[0]), jnp.asarray(x[1]))
    theirs = jex_random.threefry_2x32(jnp.asarray(key), jnp.asarray(x.reshape(-1))).reshape(2, -1)
    np.testing.assert_array_equal(np.stack([np.asarray(w) for w in ours]), np.asarray(theirs))


def test_key_derivation_and_draws_are_jax_s_bit_for_bit():
    """The one-call and the written-out fold_in, and the written-out uniform, normal and
    exponential draws, are JAX's own, every bit, jitted and not (so the keys and the
    per-trajectory numbers are what jax.random defines)."""
    keys = jax.random.split(jax.random.key(5), 3000)
    data = np.uint32([0, 1, 0x73686F6B, 2**32 - 1])[:, None]

    def both(keys):
        ours = (
            jax.random.key_data(fold_in(keys, data)),
            jax.random.key_data(hashed_fold_in(keys, data)),
            random.uniforms(keys, 5),
            random.normals(keys),
            jax.vmap(lambda k: random.exponentials(k, 3))(keys),
        )
        folded = jax.vmap(lambda d: jax.vmap(jax.random.fold_in, (0, None))(keys, d))(data[:, 0])
        theirs = (
            jax.random.key_data(folded),
            jax.random.key_data(folded),
            jax.vmap(lambda k: jax.random.uniform(k, (5,)))(keys),
            jax.vmap(lambda k: jax.random.normal(k, ()))(keys),
            jax.vmap(lambda k: jax.random.exponential(k, (3,)))(keys),
        )
        return ours, theirs

    for ours, theirs in (both(keys), jax.jit(both)(keys)):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    seed = jax.random.key_data(random.seed_key(9))
    fold = lambda i: jax.random.fold_in(jax.random.fold_in(jax.random.wrap_key_data(seed), i >> 32), i & 0xFFFFFFFF)
    expected = [jax.random.key_data(fold(i)) for i in range(2**32 - 2, 2**32 + 2)]  # into the high word
    got = random.trajectory_keys(seed, 0, 2**32 - 2, 4)
    np.testing.assert_array_equal(jax.random.key_data(got), np.stack(expected))


def test_uniform_grid_is_exact_and_symmetric():
    """Every 23-bit word maps to a finite normal; the extremes are +-the same value."""
    words = jnp.asarray(np.array([0, 511, 2**32 - 1, 2**31, 2**31 - 1], dtype=np.uint32))
    z = np.asarray(to_normal(words))
    assert np.all(np.isfinite(z))
    assert z[0] == -z[2] and 5.0 < z[2] < 5.5
    assert z[3] == -z[4] and abs(z[3]) < 1e-6


@pytest.fixture(scope="module")
def shocks():
    """Two years of 7 draws per step for 20,000 trajectories: [trajectories, 2, 12, 7]."""
    keys = jax.random.split(jax.random.key(11), 20_000)
    years = [block_normals(block_draws(keys, y, 12 * 7), (12, 7)) for y in range(2)]
    return np.moveaxis(np.stack([np.asarray(z) for z in years]), -1, 0)


def test_normals_are_standard_normal(shocks):
    z = shocks.reshape(-1)
    n = z.size
    assert abs(z.mean()) <= K / math.sqrt(n)
    assert abs(z.var() - 1.0) <= K * math.sqrt(2.0 / n)
    assert stats.kstest(z[:200_000], "norm").pvalue > ALPHA
    # tails: P(|Z| > 3) = 0.0027
    p3 = np.mean(np.abs(z) > 3.0)
    assert abs(p3 - 2 * stats.norm.sf(3.0)) <= K * math.sqrt(p3 * (1 - p3) / n)


def test_normals_are_uncorrelated(shocks):
    """Across streams, steps, years (different counters), the two words of one hash, and
    neighbouring trajectories (different keys): every correlation within K/sqrt(n) of 0."""
    n = shocks.shape[0]
    pairs = {
        "streams": (shocks[:, 0, :, 0], shocks[:, 0, :, 1]),
        "steps": (shocks[:, 0, 0, :], shocks[:, 0, 1, :]),
        "years": (shocks[:, 0], shocks[:, 1]),
        "words of one hash": (shocks[:, 0, :6, :], shocks[:, 0, 6:, :]),
        "trajectories": (shocks[:-1, 0], shocks[1:, 0]),
    }
    for name, (a, b) in pairs.items():
        for i in range(min(a[0].size, 8)):  # a few coordinates of each pair
            x, y = a.reshape(a.shape[0], -1)[:, i], b.reshape(b.shape[0], -1)[:, i]
            r = np.corrcoef(x, y)[0, 1]
            assert abs(r) <= K / math.sqrt(n), (name, i, r)


def test_generators_agree_within_monte_carlo_error():
    """The peer scenario's first-crossing dates from the default generator and from
    jax.random.normal have the same distribution (two-sample KS per actor, threshold
    1e28), and the two runs are different samples."""
    s = mcengine.load_scenario(PEER)
    runs = {g: mcengine.sample_trajectories(s, 4000, seed=5, generator=g).t_first for g in ("threefry2x32", "jax")}
    a, b = runs["threefry2x32"], runs["jax"]
    assert not np.array_equal(a, b, equal_nan=True)
    for row in range(a.shape[1]):
        x, y = (np.where(np.isnan(t[:, row, 1]), 99.0, t[:, row, 1]) for t in (a, b))
        assert stats.ks_2samp(x, y).pvalue > ALPHA, row


def test_generator_is_recorded_and_chosen_on_the_command_line(tmp_path, capsys):
    assert exit_code(["run", str(PEER), "-n", "300", "--generator", "jax", "-q", "--out", str(tmp_path / "r")]) == 0
    assert mcengine.read_results(tmp_path / "r").metadata["generator"] == "jax"
    capsys.readouterr()
    assert exit_code(["run", str(PEER), "-n", "300", "--generator", "philox", "-q", "--out", str(tmp_path / "s")]) == 2
    assert "philox" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_inverse_error_function_is_accurate():
    """Giles' approximation with w = -log((1 - x)(1 + x)): relative error below 1e-6 over
    the whole open interval, including the 23-bit grid's extremes."""
    from scipy.special import erfinv

    from mcengine.kernels.normals import _erfinv

    x = np.concatenate(
        [np.linspace(-0.999, 0.999, 200_001), 1 - 2.0 ** -np.arange(10, 24), -(1 - 2.0 ** -np.arange(10, 24))]
    )
    x = x.astype(np.float32)
    got = np.asarray(_erfinv(jnp.asarray(x)), np.float64)
    exact = erfinv(x.astype(np.float64))
    nonzero = exact != 0
    assert np.max(np.abs(got[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])) < 1e-6
