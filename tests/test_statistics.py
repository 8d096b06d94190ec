"""Samplers and aggregation against closed forms and exact computations (MODEL.md §7).

Goodness-of-fit tests use fixed seeds and a false-alarm budget of 1e-3 per test
(reject only if p < 1e-3); moment checks use k = 5 Monte Carlo standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import mcengine
from mcengine import aggregate, engine

from .conftest import PEER, scenario_toml

pytestmark = pytest.mark.slow  # long statistical or multi-process checks: `pytest -m "not slow"` skips them

ALPHA = 1e-3


def test_random_rates_no_noise_match_closed_form_cdf():
    """Normal rates, no volatility: P(t_first <= t) = P(R >= d / t), R ~ N(mu, s^2)."""
    text = scenario_toml(
        hardware={"initial": 1e18, "rate": {"normal": [0.05, 0.20]}},
        algorithms={"initial": 1.0, "rate": {"normal": {"mean": 0.45, "sd": 0.1}}},
        actors=[{"name": "frontier", "budget": 1e9, "growth": {"normal": [0.2, 0.5]}}],
        thresholds=[{"name": "1e30", "flop": 1e30, "kind": "effective"}],
    )
    s = mcengine.parse_scenario(text)
    out = mcengine.sample_trajectories(s, trajectories=4000, seed=11, chunk_size=1000)
    t = out.t_first[:, 0, 0]
    sd_of = lambda p5, p95: (p95 - p5) / (2 * 1.6448536269514722)
    mu = 0.125 + 0.45 + 0.35
    sd = math.sqrt(sd_of(0.05, 0.20) ** 2 + 0.1**2 + sd_of(0.2, 0.5) ** 2)
    d = 30.0 - (9.0 + 18.0 + 0.0)
    cdf = lambda x: np.where(x > 0, stats.norm.sf((d / np.maximum(x, 1e-12) - mu) / sd), 0.0)
    t = np.where(np.isnan(t), np.inf, t)  # censored: beyond every finite time
    assert stats.kstest(t, cdf).pvalue > ALPHA


def test_lognormal_and_uniform_budgets_have_their_percentiles():
    """Initial budgets as drawn (read from the fan chart at the start) match the spec."""
    text = scenario_toml(
        actors=[
            {"name": "frontier", "budget": {"lognormal": [2e8, 1.5e9]}, "growth": 0.3},
            {"name": "uni", "budget": {"uniform": [1e6, 3e6]}, "growth": 0.3},
        ]
    )
    out = mcengine.sample_trajectories(mcengine.parse_scenario(text), trajectories=4000, seed=5)
    b = out.fan[:, 0, 2:4]  # budget:frontier, budget:uni at the start (log10 $)
    lo, hi = math.log10(2e8), math.log10(1.5e9)
    norm = stats.norm((lo + hi) / 2, (hi - lo) / (2 * 1.6448536269514722))
    assert stats.kstest(b[:, 0], norm.cdf).pvalue > ALPHA
    assert stats.kstest(10.0 ** b[:, 1], stats.uniform(1e6, 2e6).cdf).pvalue > ALPHA


def test_doubling_years_and_factor_per_year_convert_to_rates():
    text = scenario_toml(
        hardware={"initial": 1e18, "doubling_years": 2.0},
        algorithms={"initial": 1.0, "factor_per_year": 3.0},
        actors=[{"name": "frontier", "budget": 1e9, "doubling_years": 0.5}],
    )
    s = mcengine.parse_scenario(text)
    assert s.hardware.process.rate.a == pytest.approx(math.log10(2) / 2)
    assert s.algorithms.process.rate.a == pytest.approx(math.log10(3))
    assert s.actors[0].process.rate.a == pytest.approx(math.log10(2) / 0.5)
    out = mcengine.sample_trajectories(s, trajectories=1, seed=0)
    years = np.arange(out.fan.shape[1])
    np.testing.assert_allclose(out.fan[0, :, 0], 18 + years * math.log10(2) / 2, atol=1e-4)


def test_volatility_gives_brownian_increments():
    """With zero drift, the hardware level at the horizon is N(H0, sigma^2 * T)."""
    text = scenario_toml(hardware={"initial": 1e18, "rate": 0.0, "volatility": 0.2})
    out = mcengine.sample_trajectories(mcengine.parse_scenario(text), trajectories=4000, seed=9)
    h_end = out.fan[:, -1, 0]
    assert stats.kstest(h_end, stats.norm(18.0, 0.2 * math.sqrt(20.0)).cdf).pvalue > ALPHA


def test_streaming_quantiles_match_numpy_on_the_same_samples():
    """The histogram quantiles are within one bin of numpy's linear quantiles of exactly the
    trajectories that were aggregated; censored count as later than every reached value."""
    s = mcengine.load_scenario(PEER)
    n, seed = 3000, 2
    res = mcengine.run(s, trajectories=n, seed=seed, chunk_size=1024)
    out = mcengine.sample_trajectories(s, trajectories=n, seed=seed, chunk_size=1024)
    width = res.metadata["resolution_years"]
    names = [a.name for a in s.actors]
    for r in res.events.to_pylist():
        i, j = names.index(r["actor"]), [t.name for t in s.thresholds].index(r["threshold"])
        x = out.t_first[:, i, j].astype(np.float64) + s.start
        if r["metric"] == "lead_time":
            x = out.t_first[:, i, j].astype(np.float64) - out.t_first[:, 0, j]
            w = 2 * width
        else:
            w = width
        assert r["p_reached"] == pytest.approx(np.mean(~np.isnan(x)), abs=1e-12)
        xs = np.where(np.isnan(x), np.inf, x)
        for q in aggregate.QUANTILES:
            with np.errstate(invalid="ignore"):
                expected = np.quantile(xs, q)
            got = r[f"p{round(q * 100)}"]
            if not np.isfinite(expected):
                assert got is None
            else:
                assert got is not None and abs(got - expected) <= w * 1.0001 + 1e-5, (r["actor"], r["metric"], q)
        reached = x[~np.isnan(x)]
        if reached.size:
            assert abs(r["mean"] - reached.mean()) <= w / 2 + 1e-5


def test_fan_quantiles_match_numpy():
    s = mcengine.load_scenario(PEER)
    n = 2000
    res = mcengine.run(s, trajectories=n, seed=4)
    out = mcengine.sample_trajectories(s, trajectories=n, seed=4)
    rows = res.paths.to_pylist()
    series = (
        ["hardware", "algorithms"] + [f"budget:{a.name}" for a in s.actors] + [f"effective:{a.name}" for a in s.actors]
    )
    levels = {f"cost_to_reach:{t.name}": t.level for t in s.thresholds}
    assert {r["series"] for r in rows} == set(series) | set(levels)
    for r in rows:
        m = int(round(r["year"] - s.start))
        if r["series"] in levels:  # threshold level minus H + A
            x = levels[r["series"]] - out.fan[:, m, -1]
        else:
            x = out.fan[:, m, series.index(r["series"])]
        width = (x.max() - x.min() + 2 * (0.5 * (x.max() - x.min()) + 1e-3)) / 2048  # pilot = all n
        for q in (5, 25, 50, 75, 95):
            assert abs(r[f"p{q}"] - np.quantile(x, q / 100)) <= width * 1.001 + 1e-5
        assert abs(r["mean"] - x.mean()) <= width / 2 + 1e-5


def test_summarise_censoring_rules():
    """Quantiles beyond the reached share are null; an empty variable has null mean."""
    bins = aggregate.Bins(np.zeros(2), np.ones(2), 10)
    counts = np.zeros((2, 10), np.int64)
    counts[0, 3] = 60  # 60 of 100 reached, all in [3, 4)
    out = aggregate.summarise(counts, 100, bins)
    assert out["p_reached"].tolist() == [0.6, 0.0]
    assert 3 <= out["p50"][0] <= 4 and math.isnan(out["p75"][0])
    assert math.isnan(out["mean"][1]) and math.isnan(out["p1"][1])


def test_fill_counts_valid_values_once_with_or_without_hot_bins():
    """The device fill equals a numpy histogram of the unmasked, uncensored values per
    block; a variable's hot bin (its only value in the pilot, counted by a sum) changes no
    count, also where some values fall outside it; masked and NaN values add nothing."""
    import jax.numpy as jnp

    rng = np.random.default_rng(3)
    n, nbins = 300, 16
    values = np.stack([rng.normal(size=n), np.full(n, 0.25), np.where(rng.random(n) < 0.1, 2.0, 0.25)]).astype(
        np.float32
    )
    values[0, :20] = np.nan
    values[2, :50] = 0.25
    mask = np.arange(n) < 280
    regime = rng.integers(0, 2, n).astype(np.int32)
    bins = aggregate.Bins(np.full(3, -3.0), np.full(3, 6.0 / nbins), nbins).with_hot(values[:, :50].T)
    assert bins.hot.tolist() == [nbins, 8, 8]  # the normal series has spread; the others not in the pilot
    expected = np.zeros((9, nbins), np.int64)
    for v in range(3):
        ok = mask & ~np.isnan(values[v])
        b = np.clip(np.floor((values[v][ok] - np.float32(-3.0)) / np.float32(6.0 / nbins)), 0, nbins - 1).astype(int)
        for block, rows in ((0, np.ones(ok.sum(), bool)), (1, regime[ok] == 0), (2, regime[ok] == 1)):
            np.add.at(expected[block * 3 + v], b[rows], 1)
    for hot in (True, False):
        counts = jnp.zeros((9, nbins), jnp.int32)
        for block in (np.zeros(n, np.int32), 1 + regime):
            counts = aggregate.fill(counts, values, mask, jnp.asarray(block), *bins.on_device(hot))
        np.testing.assert_array_equal(np.asarray(counts), expected)


def test_hot_bins_leave_every_table_bit_identical(monkeypatch):
    """The engine's fill with hot bins (as on a GPU) gives the same tables as without."""
    s = mcengine.load_scenario(PEER)
    tables = []
    for hot in (False, True):
        monkeypatch.setattr(engine, "HOT_BINS", hot)
        r = mcengine.run(s, trajectories=700, seed=5, chunk_size=256)
        tables.append([getattr(r, name) for name in ("events", "access", "paths", "counts")])
    assert all(a.equals(b) for a, b in zip(*tables))


@pytest.mark.parametrize("chunk", [7, 333])
def test_chunk_layout_does_not_change_results(chunk):
    """Same seed, different chunk sizes: bit-identical tables (timing metadata aside)."""
    s = mcengine.load_scenario(PEER)
    ref = mcengine.run(s, trajectories=1000, seed=21, chunk_size=1000)
    other = mcengine.run(s, trajectories=1000, seed=21, chunk_size=chunk)
    for name in ("events", "access", "paths"):
        a, b = getattr(ref, name), getattr(other, name)
        assert a.equals(b), name
    traj_a = engine.sample_trajectories(s, 50, seed=21, chunk_size=50)
    traj_b = engine.sample_trajectories(s, 50, seed=21, chunk_size=chunk)
    for x, y in zip(traj_a, traj_b):
        np.testing.assert_array_equal(x, y)
