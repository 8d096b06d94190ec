"""The kernel against closed forms (MODEL.md §7): the deterministic limit, lags with the
pre-start rule, penalties, physical thresholds, access dates, and the soft cap; a group's
ranks from one shared series against the same ranks computed one by one."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mcengine
from mcengine import model as model_mod
from mcengine import random
from mcengine.kernels import inverse_soft_cap, soft_cap

from .conftest import scenario_toml

H0, RH = 18.0, 0.12  # log10 FLOP/$, OOM/yr
A0, RA = 0.0, 0.40  # log10 multiplier, OOM/yr
ACTORS = [  # name, log10 budget, growth OOM/yr, algo_lag yr, hw_lag yr, penalty OOM
    ("frontier", 9.0, 0.30, 0.0, 0.0, 0.0),
    ("follower", 8.5, 0.30, 0.5, 0.0, 0.0),
    ("restricted", 8.7, 0.25, 1.0, 2.0, 0.3),
    ("odd_lags", 8.0, 0.35, 0.37, 1.29, 0.1),  # lags that are not whole steps
]
THRESHOLDS = [
    ("1e27", 27.0, "effective"),
    ("1e28", 28.0, "effective"),
    ("1e30", 30.0, "effective"),
    ("phys_1e27", 27.0, "physical"),
    ("below_start", 20.0, "effective"),
    ("never", 60.0, "effective"),
]
ACCESS = [1e6, 1e8]


def deterministic_scenario(steps_per_year: int = 12):
    text = scenario_toml(
        scenario={"name": "deterministic", "start": 2025.0, "horizon": 2045.0, "steps_per_year": steps_per_year},
        hardware={"initial": 10**H0, "rate": RH, "volatility": 0.0},
        algorithms={"initial": 10**A0, "rate": RA, "volatility": 0.0},
        actors=[
            {"name": n, "budget": 10**b, "growth": g, "algo_lag": al, "hw_lag": hl, "hw_penalty": pen}
            for n, b, g, al, hl, pen in ACTORS
        ],
        thresholds=[{"name": n, "flop": 10**x, "kind": k} for n, x, k in THRESHOLDS],
        access={"budgets": ACCESS},
    )
    return mcengine.parse_scenario(text)


def closed_form_t_first(b, g, al, hl, pen, x, kind, span=20.0):
    """Years from start: the lagged lines E(tau) = E0 + R*tau, extended backwards."""
    level0 = b + H0 - RH * hl - pen + (0.0 if kind == "physical" else A0 - RA * al)
    rate = g + RH + (0.0 if kind == "physical" else RA)
    t = max(0.0, (x - level0) / rate)
    return t if t <= span else math.nan


@pytest.mark.parametrize("steps_per_year", [12, 52, 365])  # 52 and 365: blocks shorter than a year
def test_deterministic_limit_per_trajectory(steps_per_year):
    s = deterministic_scenario(steps_per_year)
    out = mcengine.sample_trajectories(s, trajectories=3, seed=0)
    years = np.arange(21.0)
    fan = out.fan[0]  # hardware, algorithms, budget per actor, effective per actor, H + A
    np.testing.assert_allclose(fan[:, 0], H0 + RH * years, atol=1e-4)
    np.testing.assert_allclose(fan[:, 1], A0 + RA * years, atol=1e-4)
    np.testing.assert_allclose(fan[:, -1], H0 + A0 + (RH + RA) * years, atol=1e-4)
    for i, (_, b, g, al, hl, pen) in enumerate(ACTORS):
        np.testing.assert_allclose(fan[:, 2 + i], b + g * years, atol=1e-4)
        effective = b + g * years + H0 + RH * (years - hl) - pen + A0 + RA * (years - al)
        np.testing.assert_allclose(fan[:, 2 + len(ACTORS) + i], effective, atol=1e-4)
    for i, (_, b, g, al, hl, pen) in enumerate(ACTORS):
        for j, (_, x, kind) in enumerate(THRESHOLDS):
            expected = closed_form_t_first(b, g, al, hl, pen, x, kind)
            got = out.t_first[:, i, j]
            if math.isnan(expected):
                assert np.isnan(got).all()
            else:
                np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)
                assert np.abs(got - expected).max() < 1e-4  # float32 rounding only
    for k, c in enumerate(ACCESS):
        for j, (_, x, kind) in enumerate(THRESHOLDS):
            expected = closed_form_t_first(math.log10(c), 0.0, 0.0, 0.0, 0.0, x, kind)
            got = out.diffusion[:, k, j]
            if math.isnan(expected):
                assert np.isnan(got).all()
            else:
                np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_deterministic_limit_in_outputs():
    """Every quantile of every t_first and lead_time row equals the closed form to 1e-3 years."""
    s = deterministic_scenario()
    rows = mcengine.run(s, trajectories=50, seed=3).events.to_pylist()
    names = [a[0] for a in ACTORS]
    thr = {n: (x, k) for n, x, k in THRESHOLDS}
    for r in rows:
        a = ACTORS[names.index(r["actor"])]
        x, kind = thr[r["threshold"]]
        t = closed_form_t_first(*a[1:], x, kind)
        if r["metric"] == "lead_time":
            t -= closed_form_t_first(*ACTORS[0][1:], x, kind)
        else:
            t += s.start
        if math.isnan(t):
            assert r["p_reached"] == 0 and r["p50"] is None and r["mean"] is None
            continue
        assert r["p_reached"] == 1.0
        for q in ("mean", "p1", "p5", "p50", "p95", "p99"):
            assert abs(r[q] - t) < 1e-3, (r["actor"], r["threshold"], r["metric"], q, r[q], t)


def test_lead_time_is_budget_gap_over_total_rate():
    """Pilz et al.: with equal growth, the lead in years is the OOM gap over the total rate."""
    s = deterministic_scenario()
    out = mcengine.sample_trajectories(s, trajectories=1, seed=0)
    gap = ACTORS[0][1] - ACTORS[1][1] + RA * ACTORS[1][3]  # budget gap + algorithm lag in OOM
    lead = out.t_first[0, 1, 2] - out.t_first[0, 0, 2]
    assert abs(lead - gap / (ACTORS[0][2] + RH + RA)) < 1e-4


def test_soft_cap_bends_budget_below_cap():
    u = jnp.array([5.0, 10.0, 11.0, 12.0, 13.0, 40.0, -1e4])
    capped = np.asarray(soft_cap(u, jnp.float32(12.0)))
    expected = 12.0 - np.logaddexp(0, (12.0 - np.asarray(u, np.float64)) * np.log(10)) / np.log(10)
    np.testing.assert_allclose(capped[:-1], expected[:-1], atol=1e-5)
    assert np.all(np.isfinite(capped)) and np.all(capped < 12.0 + 1e-6)
    assert capped[-1] == pytest.approx(-1e4)
    assert np.asarray(soft_cap(u, jnp.float32(np.inf))).tolist() == np.asarray(u).tolist()  # no cap


def test_cap_limits_budget_in_fan_chart():
    text = scenario_toml(
        actors=[{"name": "frontier", "budget": 1e9, "growth": 0.5, "cap": 1e11}],
        scenario={"name": "cap", "start": 2025.0, "horizon": 2035.0, "steps_per_year": 4},
    )
    out = mcengine.sample_trajectories(mcengine.parse_scenario(text), trajectories=1, seed=0)
    budget = out.fan[0, :, 2]  # hardware, algorithms, budget:frontier, effective:frontier
    uncapped = 9.0 + 0.5 * np.arange(11)
    np.testing.assert_allclose(budget, 11.0 - np.log10(1 + 10.0 ** (11.0 - uncapped)), atol=1e-4)


def test_inverse_soft_cap_undoes_the_soft_cap():
    cap = 12.0
    u = np.array([-30.0, 5.0, 10.0, 11.0, 11.9, 12.5, 13.0], np.float32)
    back = np.asarray(inverse_soft_cap(soft_cap(jnp.asarray(u), jnp.float32(cap)), jnp.float32(cap)), np.float64)
    # a capped budget is known to float32 rounding (a few ulp of the cap); through the
    # inverse that error grows by d(uncapped)/d(capped) = 1 + 10**(uncapped - cap)
    tolerance = 4 * np.spacing(np.float32(cap)) * (1 + 10.0 ** (u.astype(np.float64) - cap))
    assert np.all(np.abs(back - u) <= tolerance), (back - u, tolerance)
    at_or_above = np.asarray(inverse_soft_cap(jnp.array([12.0, 12.5, 40.0]), jnp.float32(cap)))
    assert np.all(np.isposinf(at_or_above))  # a capped budget never reaches the cap: out of reach
    y = jnp.array([-5.0, 3.0, 30.0])
    assert np.asarray(inverse_soft_cap(y, jnp.float32(np.inf))).tolist() == np.asarray(y).tolist()  # no cap


@pytest.mark.parametrize("capped", [False, True])
def test_group_ranks_from_a_shared_series_match_ranks_computed_one_by_one(capped):
    """The kernel computes a group's ranks from one shared series (a compare per rank,
    threshold and step); computed one by one (a path each, as an actor's) the dates are the
    same but for float32 rounding of compute near 30 OOM, which can move a crossing that
    only touches the threshold: at most 1 in 1000 dates differ by more than 1e-3 years
    (a few ulp of compute over one step's growth is ~1e-5 years). With noise, jumps-free
    random rates, lags, a penalty, catch-up, physical and effective thresholds, and more
    ranks than thresholds (so a capped group is shared too)."""
    group = {
        "name": "labs",
        "count": 200,
        "ranks": [1, 2, 3, 5, 10, 20, 50],
        "budget": {"lognormal": [1e6, 1e9]},
        "growth": {"normal": [0.0, 0.3]},
        "volatility": 0.15,
        "hw_lag": 0.75,
        "algo_lag": 0.4,
        "hw_penalty": 0.2,
    }
    if capped:
        group["cap"] = {"lognormal": [3e8, 3e10]}
    text = scenario_toml(
        hardware={"initial": 1e18, "rate": {"normal": [0.08, 0.16]}, "volatility": 0.05},
        algorithms={"initial": 1.0, "rate": {"normal": [0.2, 0.6]}, "volatility": 0.1, "catch_up_rate": 0.1},
        actors=[
            {"name": "frontier", "budget": {"lognormal": [3e8, 3e9]}, "growth": 0.3, "volatility": 0.1, "cap": 1e11}
        ],
        thresholds=[
            {"name": "a", "flop": 1e27, "kind": "effective"},
            {"name": "b", "flop": 1e31, "kind": "effective"},
            {"name": "p", "flop": 1e27, "kind": "physical"},
            {"name": "c", "flop": 1e39, "kind": "effective"},
        ],
        groups=[group],
    )
    model, spec = model_mod.build(mcengine.parse_scenario(text))
    assert model.config.groups == ((1, 7),) and len(model.config.physical) < 7
    one_by_one = dataclasses.replace(model, config=model.config._replace(groups=()))
    keys = random.trajectory_keys(jax.random.key_data(random.seed_key(3)), 0, 0, 2000)
    shared, single = (
        np.asarray(jax.jit(lambda k, m=m: model_mod.trajectories(k, spec, m).t_first)(keys))
        for m in (model, one_by_one)
    )
    ranks = shared[1:]  # [ranks, thresholds, N]
    assert (ranks > 0).mean() > 0.5 and (ranks == 0).mean() > 0.05  # crossed during the run, or at the start
    assert 0.05 < np.isnan(ranks[:, 3]).mean() < 0.95  # "c" is often censored
    np.testing.assert_array_equal(shared[0], single[0])  # the frontier is computed alike
    apart = ~np.isclose(shared, single, rtol=0.0, atol=1e-3, equal_nan=True)
    assert apart.mean() <= 1e-3, apart.mean()
