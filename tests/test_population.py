"""Groups as populations (MODEL.md §4 "Populations that grow", §7): counts of members and
rank-k dates, with and without entrants, against a brute-force simulation of explicit
members on the very same shared paths, against the closed form of E[N_X(t)] in the
deterministic limit, and for coherence (rank k by year y exactly when at least k members
by year y).

False-alarm budget of this module: the brute-force comparison runs 24 two-sample KS tests
(8 rank dates, 16 counts) at alpha = 2e-5 each and 8 mean checks at 5 standard errors
(each ~6e-7 under normality), so a correct engine fails this file with probability
below 5e-4 (Bonferroni)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mcengine
from mcengine import engine, random
from mcengine import model as model_mod
from mcengine.kernels import population, trajectory

from .conftest import scenario_toml

pytestmark = pytest.mark.slow  # long statistical or multi-process checks: `pytest -m "not slow"` skips them

N_BRUTE = 3000
ALPHA = 2e-5


def _group_scenario(entry=True, volatility=0.15, delay=False, count=20, ranks=(1, 3, 10, 25)):
    group = {
        "name": "orgs",
        "count": count,
        "ranks": list(ranks),
        "budget": {"lognormal": [1e5, 3e7]},
        "growth": 0.3,
        "volatility": volatility,
    }
    if entry:
        group["entry"] = {
            "per_year": 3.0,
            "per_year_growth": 0.05,
            "budget": {"lognormal": [3e4, 1e7]},
            "relative_growth": 0.04,
        }
    if delay:
        group["publication_delay"] = {"lognormal": [0.2, 0.8]}
    return scenario_toml(
        scenario={"name": "pop", "start": 2025.0, "horizon": 2037.0, "steps_per_year": 12},
        hardware={"initial": 1e18, "rate": {"normal": [0.08, 0.16]}, "volatility": volatility / 3},
        algorithms={"initial": 1.0, "rate": 0.3, "volatility": volatility / 3},
        actors=[{"name": "frontier", "budget": 1e9, "growth": 0.3}],
        groups=[group],
        thresholds=[
            {"name": "e27", "flop": 1e27, "kind": "effective"},
            {"name": "p26", "flop": 1e26, "kind": "physical"},
        ],
    )


def _internals(s, n, seed):
    """The kernel's outputs and, per trajectory, what a brute force needs: the group's
    need series [steps + 1, T, N] for its initial members and its entrants, its numbers."""
    model, spec = engine.build_for(s)
    keys = random.trajectory_keys(random.seed_key(seed), 0, 0, n)
    params, *_ = jax.vmap(lambda k: model_mod._params(k, spec, model), out_axes=-1)(keys)
    shock_keys = random.shock_keys(keys)
    pl = trajectory.plan(model.config, params)
    lanes = trajectory._lane_keys(pl, shock_keys)
    state, start = trajectory.init(pl, params, lanes)
    state, records = trajectory.blocks(pl, params, lanes, state)
    out = trajectory.finalize(pl, params, shock_keys, state, start, records)
    fams = trajectory._families(pl, params)
    paths = jax.tree.map(lambda first, ys: jnp.concatenate([first, ys.reshape(-1, n)]), start.series, records.series)
    steps = model.config.n_steps
    need = trajectory._need(
        pl, params, fams[0], jax.tree.map(lambda x: x[: steps + 1], paths[0]), state.t_first[pl.frontier]
    )
    m = params.members[0]
    tau = np.arange(steps + 1)[:, None, None] / s.steps_per_year
    return model, out, np.asarray(need, np.float64), np.asarray(need, np.float64) - np.asarray(m.entry_shift) * tau, m


def _brute_force(s, need0, need_e, m, rng):
    """Explicit members on the same paths: dates [members, T, N] (years; inf: never)."""
    group = next(a for a in s.actors if a.is_group)
    steps, T, n = need0.shape
    dt = 1.0 / s.steps_per_year
    mu0, sd0 = group.budget.a, group.budget.b
    dates = []
    run_min = np.minimum.accumulate(need0, axis=0)
    for _ in range(group.count):
        u = rng.normal(mu0, sd0, n)
        reached = run_min <= u  # [steps, T, N]
        k = np.argmax(reached, axis=0)
        hit = reached.any(axis=0)
        prev = np.take_along_axis(need0, np.maximum(k - 1, 0)[None], 0)[0]
        at = np.take_along_axis(need0, k[None], 0)[0]
        frac = np.clip((prev - u) / np.where(prev > at, prev - at, 1.0), 0.0, 1.0)
        d = np.where(k == 0, 0.0, (k - 1 + frac) * dt)
        dates.append(np.where(hit, d, np.inf))
    if group.entry is not None:
        mu, sd = group.entry.budget.a, group.entry.budget.b
        rate, growth = np.asarray(m.entry_rate, np.float64), np.asarray(m.entry_growth, np.float64)
        for j in range(1, steps):
            lam = rate * (10 ** (growth * j * dt) - 10 ** (growth * (j - 1) * dt)) / (growth * math.log(10))
            arrivals = rng.poisson(lam)
            for a in range(int(arrivals.max()) if arrivals.size else 0):
                present = arrivals > a
                u = rng.normal(mu, sd, n)
                when = (j - 1 + rng.uniform(size=n)) * dt  # arrival time within step j
                later = need_e[j:]
                run = np.minimum.accumulate(later, axis=0)
                reached = run <= u
                k = np.argmax(reached, axis=0)
                hit = reached.any(axis=0) & present
                prev = np.take_along_axis(later, np.maximum(k - 1, 0)[None], 0)[0]
                at = np.take_along_axis(later, k[None], 0)[0]
                frac = np.clip((prev - u) / np.where(prev > at, prev - at, 1.0), 0.0, 1.0)
                d = np.where(k == 0, when, (j + k - 1 + frac) * dt)
                dates.append(np.where(hit, d, np.inf))
    return np.stack(dates)


@pytest.fixture(scope="module")
def brute():
    s = mcengine.parse_scenario(_group_scenario())
    model, out, need0, need_e, m = _internals(s, N_BRUTE, seed=11)
    dates = _brute_force(s, need0, need_e, m, np.random.default_rng(5))
    return s, model, out, dates


@pytest.mark.parametrize("rank_index", range(4))
def test_rank_dates_match_explicit_members(brute, rank_index):
    s, model, out, dates = brute
    group = next(a for a in s.actors if a.is_group)
    row = model.rows.index(mcengine.layout.Row("orgs", group.ranks[rank_index], "group"))
    ordered = np.sort(dates, axis=0)
    for t in range(len(s.thresholds)):
        engine_dates = np.nan_to_num(np.asarray(out.t_first[row, t]), nan=99.0)
        brute_dates = np.minimum(ordered[group.ranks[rank_index] - 1, t], 99.0)
        p = stats.ks_2samp(engine_dates, brute_dates).pvalue
        assert p > ALPHA, (group.ranks[rank_index], s.thresholds[t].name, p)


@pytest.mark.parametrize("year", [2, 5, 8, 12])
def test_counts_match_explicit_members(brute, year):
    s, model, out, dates = brute
    frontier = model.rows.index(mcengine.layout.Row("frontier", 1, "actor"))
    for t in range(len(s.thresholds)):
        actor = (np.asarray(out.t_first[frontier, t]) <= year).astype(float)
        engine_counts = np.asarray(out.counts[year, t]) - actor
        brute_counts = (dates[:, t] <= year).sum(axis=0)
        assert stats.ks_2samp(engine_counts, brute_counts).pvalue > ALPHA
        se = math.sqrt(engine_counts.var() / N_BRUTE + brute_counts.var() / N_BRUTE)
        assert abs(engine_counts.mean() - brute_counts.mean()) <= 5 * se + 1e-9


def test_rank_dates_and_counts_agree_in_every_trajectory(brute):
    """At least k members by year y exactly when rank k's date is at most y."""
    s, model, out, _ = brute
    group = next(a for a in s.actors if a.is_group)
    frontier = model.rows.index(mcengine.layout.Row("frontier", 1, "actor"))
    for t in range(len(s.thresholds)):
        for year in range(out.counts.shape[0]):
            members = np.asarray(out.counts[year, t]) - (np.asarray(out.t_first[frontier, t]) <= year)
            for k in group.ranks:
                row = model.rows.index(mcengine.layout.Row("orgs", k, "group"))
                by_date = np.asarray(out.t_first[row, t]) <= year
                assert np.array_equal(members >= k, by_date), (k, year, t)
    assert np.all(np.diff(np.asarray(out.counts), axis=0) >= 0)  # counts never fall


def _normal_tail(mu, sd, x):
    return stats.norm.sf(x, mu, sd)


@pytest.mark.parametrize("entry", [True, False])
def test_expected_count_matches_the_closed_form_in_the_deterministic_limit(entry):
    """No noise, fixed rates: need falls linearly, every member sees the current need, and
    E[N(t)] = count * P(u >= need0(t)) + arrivals(0, t] * P(v >= need_e(t))."""
    text = scenario_toml(
        scenario={"name": "det", "start": 2025.0, "horizon": 2035.0, "steps_per_year": 4},
        hardware={"initial": 1e18, "rate": 0.12, "volatility": 0.0},
        algorithms={"initial": 1.0, "rate": 0.3, "volatility": 0.0},
        actors=[{"name": "frontier", "budget": 1e9, "growth": 0.2}],
        groups=[
            {
                "name": "orgs",
                "count": 500,
                "ranks": [1, 50],
                "budget": {"lognormal": [1e5, 3e7]},
                "growth": 0.25,
                **(
                    {
                        "entry": {
                            "per_year": 40.0,
                            "per_year_growth": 0.1,
                            "budget": {"lognormal": [1e4, 1e7]},
                            "relative_growth": -0.05,
                        }
                    }
                    if entry
                    else {}
                ),
            }
        ],
        thresholds=[
            {"name": "e27", "flop": 1e27, "kind": "effective"},
            {"name": "p26", "flop": 1e26, "kind": "physical"},
        ],
    )
    s = mcengine.parse_scenario(text)
    n = 4000
    out = engine.sample_trajectories(s, n, seed=3)
    group = next(a for a in s.actors if a.is_group)
    for t, thr in enumerate(s.thresholds):
        rate = 0.12 + 0.25 + (0.3 if thr.kind == "effective" else 0.0)
        level0 = 18.0 + (0.0 if thr.kind == "physical" else 0.0)
        for year in (1, 4, 7, 10):
            need0 = thr.level - level0 - rate * year
            expected = group.count * _normal_tail(group.budget.a, group.budget.b, need0)
            if entry:
                g = 0.1 * math.log(10)
                arrivals = 40.0 * math.expm1(g * year) / g
                expected += arrivals * _normal_tail(group.entry.budget.a, group.entry.budget.b, need0 + 0.05 * year)
            frontier = (out.t_first[:, 0, t] <= year).astype(float)
            sampled = out.counts[:, year, t] - frontier
            se = sampled.std() / math.sqrt(n)
            assert abs(sampled.mean() - expected) <= 5 * se + 1e-3 * max(1.0, expected), (thr.name, year, expected)


def test_groups_without_entrants_keep_their_rank_dates():
    """Counting members does not change a group's rank dates: a group reports the same
    dates whatever its count_at_least and whether or not a delay is reported."""
    a = mcengine.parse_scenario(_group_scenario(entry=False, ranks=(1, 3, 10, 20)))
    b = mcengine.parse_scenario(_group_scenario(entry=False, delay=True, ranks=(1, 3, 10, 20)))
    x = engine.sample_trajectories(a, 300, seed=2)
    y = engine.sample_trajectories(b, 300, seed=2)
    np.testing.assert_array_equal(x.t_first, y.t_first)


def test_previous_at_or_below_matches_a_direct_search():
    rng = np.random.default_rng(0)
    for n in (1, 2, 17, 40, 100):
        x = np.round(rng.normal(size=(n, 3, 5)).cumsum(axis=0), 1).astype(np.float32)
        got = np.asarray(population.previous_at_or_below(jnp.asarray(x)))
        want = np.zeros_like(got)
        for k in range(1, n):
            for j in range(k - 1, 0, -1):
                ok = (x[j] <= x[k]) & (want[k] == 0)
                want[k] = np.where(ok, j, want[k])
        np.testing.assert_array_equal(got, want)


def test_publication_delay_shifts_dates_and_public_counts():
    s = mcengine.parse_scenario(_group_scenario(entry=True, delay=True))
    model, _ = model_mod.build(s)
    out = engine.sample_trajectories(s, 400, seed=4)
    rows = [i for i, r in enumerate(model.rows) if r.is_group]
    delay = out.inputs[:, list(model.inputs).index("groups.orgs.publication_delay")]
    shifted = out.t_first[:, rows] + delay[:, None, None]
    expected = np.where(shifted <= s.horizon - s.start, shifted, np.nan)
    np.testing.assert_allclose(out.t_public[:, rows], expected, rtol=0, atol=1e-5)
    assert np.all(out.public_counts <= out.counts)
    assert np.all(np.diff(out.public_counts, axis=1) >= 0)
