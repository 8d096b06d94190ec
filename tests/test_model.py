"""The full model (MODEL.md §3-§5) against closed forms and exact alternative computations:
decaying rates, jumps, regimes, correlations, groups, catch-up, open release.

Goodness-of-fit tests reject at p < 1e-3 (false-alarm budget per test); moment checks
use k = 5 Monte Carlo standard errors estimated from the sample itself."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from scipy import optimize, stats

import mcengine
from mcengine import engine
from mcengine import model as model_mod

from .conftest import scenario_toml

ALPHA = 1e-3
K = 5.0
Z95 = 1.6448536269514722


def parse(**sections):
    extra = sections.pop("extra", "")
    return mcengine.parse_scenario(scenario_toml(**sections) + extra)


def spearman_se(rho: float, n: int) -> float:
    """Standard error of a sample rank correlation of n bivariate-normal pairs whose
    population rank correlation is rho (Fieller, Hartley & Pearson 1957: var(atanh r_s)
    ~ 1.06 / (n - 3), mapped back through the slope 1 - rho**2 of tanh)."""
    return math.sqrt(1.06 / (n - 3)) * (1 - rho**2)


def decayed(tau, r0, r_inf, T):
    """Integral of r(t) = r_inf + (r0 - r_inf) exp(-t/T) from 0 to tau."""
    return r_inf * tau + (r0 - r_inf) * T * (1 - math.exp(-tau / T))


# -- decaying rates ------------------------------------------------------------------------------


def test_deterministic_limit_with_decaying_rates():
    """Crossing time from the closed-form integral of r(tau), for the frontier and for an
    actor whose algorithm lag reads the decaying path (and, before the start, the trend)."""
    s = parse(
        hardware={"initial": 1e18, "rate": 0.15, "long_run_rate": 0.03, "decay_years": 8.0},
        algorithms={"initial": 1.0, "rate": 0.5, "long_run_rate": 0.1, "decay_years": 4.0},
        actors=[
            {"name": "frontier", "budget": 1e9, "growth": 0.4, "long_run_rate": 0.0, "decay_years": 6.0},
            {
                "name": "lagged",
                "budget": 1e9,
                "growth": 0.4,
                "long_run_rate": 0.0,
                "decay_years": 6.0,
                "algo_lag": 1.5,
                "hw_lag": 0.75,
            },
        ],
        thresholds=[{"name": f"1e{x}", "flop": 10.0**x, "kind": "effective"} for x in (28, 29, 30)],
    )
    out = mcengine.sample_trajectories(s, trajectories=2, seed=0)

    def level(tau, algo_lag=0.0, hw_lag=0.0):
        h_t, a_t = tau - hw_lag, tau - algo_lag
        h = 18 + (decayed(h_t, 0.15, 0.03, 8.0) if h_t >= 0 else 0.15 * h_t)
        a = 0 + (decayed(a_t, 0.5, 0.1, 4.0) if a_t >= 0 else 0.5 * a_t)
        return 9 + decayed(tau, 0.4, 0.0, 6.0) + h + a

    for row, lags in enumerate([(0.0, 0.0), (1.5, 0.75)]):
        for j, x in enumerate((28, 29, 30)):
            tau = optimize.brentq(lambda t: level(t, *lags) - x, 0.0, 20.0, xtol=1e-12)
            assert np.abs(out.t_first[:, row, j] - tau).max() < 1e-3, (row, x)


# -- volatility: first passage of Brownian motion with drift --------------------------------


def passage_times(spy: int, n: int = 4000):
    s = parse(
        scenario={"name": "bm", "start": 2025.0, "horizon": 2035.0, "steps_per_year": spy},
        hardware={"initial": 1e18, "rate": 0.5, "volatility": 0.3},
        algorithms={"initial": 1.0, "rate": 0.0},
        actors=[{"name": "frontier", "budget": 1e9, "growth": 0.0}],
        thresholds=[{"name": "1e28", "flop": 1e28, "kind": "effective"}],
    )
    return mcengine.sample_trajectories(s, trajectories=n, seed=17, chunk_size=n).t_first[:, 0, 0]


def test_volatility_first_passage_is_inverse_gaussian_and_bias_shrinks():
    """d = 1 OOM at drift 0.5 OOM/yr, sigma 0.3: passage time ~ IG(mean 2, shape d^2/sigma^2).
    Discrete monitoring misses crossings between steps (times come out late); the bias must
    shrink as steps get finer, and at daily steps the sample must pass a KS test."""
    d, mu, sigma = 1.0, 0.5, 0.3
    mean, shape = d / mu, d**2 / sigma**2
    ig = stats.invgauss(mean / shape, scale=shape)
    bias = {}
    for spy in (12, 52, 365):
        t = passage_times(spy)
        t = np.where(np.isnan(t), 1e9, t)
        bias[spy] = np.mean(np.minimum(t, 10.0)) - ig.expect(lambda x: np.minimum(x, 10.0))
    se = 2.0 * ig.std() / math.sqrt(4000)  # of a difference of two sample means, generously
    assert bias[12] > bias[52] > bias[365] - se
    assert bias[12] > 0 and abs(bias[365]) < bias[12] / 2
    t365 = passage_times(365)
    assert stats.kstest(np.where(np.isnan(t365), np.inf, t365), ig.cdf).pvalue > ALPHA


# -- jumps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,moments",
    [
        ({"normal": {"mean": 0.5, "sd": 0.2}}, (0.5, 0.5**2 + 0.2**2)),
        ({"fixed": -0.3}, (-0.3, 0.09)),
        ({"uniform": [0.0, 2.0]}, (1.0, 4.0 / 3.0)),
        ({"lognormal": [0.1, 1.0]}, None),
    ],
)
def test_compound_poisson_level_has_exact_mean_and_variance(size, moments):
    """No drift or noise: H(T) - H0 = sum of N ~ Poisson(lambda T) jumps. Mean lambda T E[S],
    variance lambda T E[S^2]."""
    lam, years = 0.8, 10.0
    s = parse(
        scenario={"name": "j", "start": 2025.0, "horizon": 2035.0, "steps_per_year": 12},
        hardware={"initial": 1e18, "rate": 0.0, "jumps": {"per_year": lam, "size": size}},
    )
    x = mcengine.sample_trajectories(s, trajectories=6000, seed=3).fan[:, -1, 0] - 18.0
    if moments is None:  # lognormal sizes: log10 S ~ N(m, sd)
        lo, hi = math.log10(0.1), math.log10(1.0)
        m, sd = (lo + hi) / 2, (hi - lo) / (2 * Z95)
        raw = lambda k: math.exp(k * m * math.log(10) + 0.5 * (k * sd * math.log(10)) ** 2)
        moments = (raw(1), raw(2))
    mean, var = lam * years * moments[0], lam * years * moments[1]
    n = x.size
    assert abs(x.mean() - mean) <= K * x.std() / math.sqrt(n) + 1e-6
    se_var = math.sqrt(max(np.mean((x - x.mean()) ** 4) - x.var() ** 2, 0.0) / n)
    assert abs(x.var() - var) <= K * se_var + 1e-6


# -- regimes -------------------------------------------------------------------------------------

REGIMES = """
[[regimes]]
name = "fast"
weight = 0.3
[regimes.set]
"hardware.doubling_years" = 1.5
"algorithms.volatility" = 0.3
"actors.frontier.budget" = { lognormal = [1e9, 2e9] }

[[regimes]]
name = "slow"
weight = 0.7
set = { "algorithms.long_run_rate" = 0.05, "algorithms.decay_years" = 3.0 }
"""
BASE = dict(
    hardware={"initial": 1e18, "rate": {"normal": [0.08, 0.16]}, "volatility": 0.05},
    algorithms={"initial": 1.0, "rate": {"normal": [0.3, 0.6]}, "volatility": 0.1},
    actors=[
        {"name": "frontier", "budget": {"lognormal": [1e8, 1e9]}, "growth": 0.3, "volatility": 0.1},
        {"name": "follower", "budget": 1e8, "growth": 0.3, "algo_lag": 0.5},
    ],
    thresholds=[
        {"name": "1e28", "flop": 1e28, "kind": "effective"},
        {"name": "1e30", "flop": 1e30, "kind": "effective"},
    ],
)


def test_regime_shares_match_weights():
    s = parse(**BASE, extra=REGIMES)
    n = 5000
    regime = mcengine.sample_trajectories(s, trajectories=n, seed=8).regime
    share = np.mean(regime == 0)
    assert abs(share - 0.3) <= K * math.sqrt(0.3 * 0.7 / n)
    res = mcengine.run(s, trajectories=n, seed=8)
    rows = res.events.to_pylist()
    assert {r["regime"] for r in rows} == {None, "fast", "slow"}
    n_by = {r["regime"]: r["n"] for r in rows}
    assert n_by == {None: n, "fast": int(np.sum(regime == 0)), "slow": int(np.sum(regime == 1))}
    assert {r["regime"] for r in res.paths.to_pylist()} == {None, "fast", "slow"}


@pytest.mark.parametrize(
    "regime,alone",
    [
        (
            0,
            dict(
                hardware={"initial": 1e18, "doubling_years": 1.5, "volatility": 0.05},
                algorithms={"initial": 1.0, "rate": {"normal": [0.3, 0.6]}, "volatility": 0.3},
                frontier_budget={"lognormal": [1e9, 2e9]},
            ),
        ),
        (
            1,
            dict(
                algorithms={
                    "initial": 1.0,
                    "rate": {"normal": [0.3, 0.6]},
                    "volatility": 0.1,
                    "long_run_rate": 0.05,
                    "decay_years": 3.0,
                }
            ),
        ),
    ],
)
def test_per_regime_results_equal_the_regime_run_alone(regime, alone):
    """Trajectories that drew a regime are exactly the trajectories of the scenario with that
    regime's settings and no regimes, with the same keys."""
    mixture = parse(**BASE, extra=REGIMES)
    parts = {**BASE, **{k: v for k, v in alone.items() if k != "frontier_budget"}}
    if "frontier_budget" in alone:
        parts["actors"] = [dict(BASE["actors"][0], budget=alone["frontier_budget"]), BASE["actors"][1]]
    single = parse(**parts)
    n = 400
    mix = mcengine.sample_trajectories(mixture, trajectories=n, seed=5)
    one = mcengine.sample_trajectories(single, trajectories=n, seed=5)
    pick = mix.regime == regime
    assert pick.sum() > 50
    for name in ("t_first", "diffusion", "fan"):
        np.testing.assert_allclose(
            getattr(mix, name)[pick], getattr(one, name)[pick], rtol=0, atol=2e-5, equal_nan=True, err_msg=name
        )


# -- correlations --------------------------------------------------------------------------------


def test_sampled_rank_correlations_match_the_requested_ones():
    s = parse(
        hardware={"initial": {"lognormal": [1e17, 1e19]}, "rate": {"normal": [0.1, 0.2]}},
        algorithms={"initial": 1.0, "rate": {"uniform": [0.2, 0.8]}},
        actors=[{"name": "frontier", "budget": {"lognormal": [1e8, 1e9]}, "growth": 0.3}],
        extra='[correlations]\npairs = [["hardware.initial", "actors.frontier.budget", 0.7], '
        '["algorithms.rate", "hardware.rate", -0.4]]\n',
    )
    n = 4000
    fan = mcengine.sample_trajectories(s, trajectories=n, seed=12).fan
    h0, b0 = fan[:, 0, 0], fan[:, 0, 2]
    h_rate, a_rate = fan[:, 1, 0] - fan[:, 0, 0], fan[:, 1, 1] - fan[:, 0, 1]
    for x, y, rho in ((h0, b0, 0.7), (a_rate, h_rate, -0.4), (h0, a_rate, 0.0)):
        got = stats.spearmanr(x, y).statistic
        assert abs(got - rho) <= K * spearman_se(rho, n), (rho, got)


def test_impossible_correlations_are_refused_naming_the_pairs():
    with pytest.raises(mcengine.ScenarioError, match="not positive definite.*hardware.rate ~ algorithms.rate"):
        parse(
            hardware={"initial": 1e18, "rate": {"normal": [0.1, 0.2]}},
            algorithms={"initial": 1.0, "rate": {"normal": [0.3, 0.6]}},
            actors=[{"name": "frontier", "budget": {"lognormal": [1e8, 1e9]}, "growth": {"normal": [0.2, 0.4]}}],
            extra='[correlations]\npairs = [["hardware.rate", "algorithms.rate", 0.9], '
            '["algorithms.rate", "actors.frontier.growth", 0.9], ["hardware.rate", "actors.frontier.growth", -0.9]]\n',
        )


# -- groups: order statistics -------------------------------------------------------------------


def group_scenario(count, ranks, budget=None):
    budget = budget or {"lognormal": [1e6, 1e9]}
    extra = (
        f'[[groups]]\nname = "orgs"\ncount = {count}\nranks = {list(ranks)}\n'
        f"budget = {{ lognormal = {budget['lognormal']} }}\ngrowth = 0.3\n"
    )
    return parse(extra=extra)


@pytest.mark.parametrize("count,ranks", [(10, (1, 3, 10)), (1000, (1, 10, 100)), (50, (2, 25))])
def test_beta_order_statistics_match_sorting_explicit_draws(count, ranks):
    n = 3000
    out = mcengine.sample_trajectories(group_scenario(count, ranks), trajectories=n, seed=21)
    rng = np.random.default_rng(0)
    lo, hi = 6.0, 9.0
    draws = rng.normal((lo + hi) / 2, (hi - lo) / (2 * Z95), size=(n, count))
    explicit = -np.sort(-draws, axis=1)
    for i, k in enumerate(ranks):
        sampled = out.fan[:, 0, 3 + i]  # hardware, algorithms, budget:frontier, budget:orgs#k...
        assert stats.ks_2samp(sampled, explicit[:, k - 1]).pvalue > ALPHA, (count, k)
    budgets = out.fan[:, 0, 3 : 3 + len(ranks)]
    assert np.all(np.diff(budgets, axis=1) <= 0)  # the k-th best never outranks a better one


def test_order_statistic_shares_are_exact_beta_for_a_large_group():
    """The k-th best of a million members has upper-tail share Beta(k, count - k + 1):
    consecutive ranks and a gap of 10 (products of uniforms drawn together), a gap of 17
    (a product of its own), a gap above MAX_PRODUCT_GAP (JAX's sampler), read back from the
    sampled budgets through the normal tail."""
    count, ranks, lo, hi = 1_000_000, (1, 2, 3, 20, 30, 2000), 6.0, 9.0
    gaps = np.diff(ranks)
    assert gaps[3] <= model_mod.BATCHED_GAP < gaps[2] <= model_mod.MAX_PRODUCT_GAP < gaps[4]
    out = mcengine.sample_trajectories(
        group_scenario(count, ranks, {"lognormal": [10**lo, 10**hi]}), trajectories=3000, seed=5
    )
    budgets = out.fan[:, 0, 3 : 3 + len(ranks)].astype(np.float64)
    shares = stats.norm.sf((budgets - (lo + hi) / 2) / ((hi - lo) / (2 * Z95)))
    for i, k in enumerate(ranks):
        assert stats.kstest(shares[:, i], stats.beta(k, count - k + 1).cdf).pvalue > ALPHA, k


def test_group_count_does_not_change_the_cost():
    """A million members cost what ten do: the same program, only a constant differs."""
    texts = []
    for count in (10, 1_000_000):
        model, spec = engine.build(group_scenario(count, (1, 10)))
        texts.append(
            jax.jit(engine._sample, static_argnames=("count", "model"))
            .lower(engine.random.seed_key(0), np.uint32(0), np.uint32(0), spec, count=64, model=model)
            .as_text()
        )
    assert abs(len(texts[0]) - len(texts[1])) < 64
    assert texts[0].count("\n") == texts[1].count("\n")


# -- catch-up and open release ------------------------------------------------------------------


def test_catch_up_shortens_the_lead_as_in_closed_form():
    """Straight lines: follower level L0 + R tau; after the frontier's date tau_f the
    requirement falls at c, so the follower crosses at (X - L0 + c tau_f) / (R + c).
    Physical thresholds and access budgets (MODEL.md §5: budget + H + A) are unaffected."""
    R, c = 0.3 + 0.12 + 0.4, 0.5
    for rate in (0.0, c):
        s = parse(
            algorithms={"initial": 1.0, "rate": 0.4, "catch_up_rate": rate},
            actors=[
                {"name": "frontier", "budget": 1e9, "growth": 0.3},
                {"name": "follower", "budget": 1e8, "growth": 0.3},
            ],
            thresholds=[
                {"name": "1e29", "flop": 1e29, "kind": "effective"},
                {"name": "p1e28", "flop": 1e28, "kind": "physical"},
            ],
            access={"budgets": [1e6]},
        )
        out = mcengine.sample_trajectories(s, trajectories=1, seed=0)
        tau_f = (29 - 27) / R
        expected = (29 - 26 + rate * tau_f) / (R + rate)
        assert abs(out.t_first[0, 0, 0] - tau_f) < 1e-4  # the frontier is unaffected
        assert abs(out.t_first[0, 1, 0] - expected) < 1e-3, rate
        assert abs(out.t_first[0, 1, 1] - (28 - 26) / 0.42) < 1e-3  # physical: no catch-up
        assert abs(out.diffusion[0, 0, 0] - (29 - 24) / 0.52) < 1e-3  # $1e6 buyer: no catch-up


def test_open_release_gives_the_earlier_channel():
    """A releaser crosses at tau_r; with release_lag l, an actor with access_via it gets the
    capability at min(own crossing, tau_r + l); rows by channel carry the shares."""
    s = parse(
        actors=[
            {"name": "frontier", "budget": 1e9, "growth": 0.3},
            {"name": "ow", "budget": 5e8, "growth": 0.3, "releases_weights": True, "release_lag": 0.5},
            {"name": "small", "budget": 1e7, "growth": 0.3, "access_via": ["ow"]},
            {"name": "rich", "budget": 8e8, "growth": 0.3, "access_via": ["ow"]},
        ],
        thresholds=[{"name": "1e28", "flop": 1e28, "kind": "effective"}],
    )
    R = 0.3 + 0.12 + 0.4
    tau = lambda b: (28 - (b + 18)) / R
    out = mcengine.sample_trajectories(s, trajectories=1, seed=0)
    assert abs(out.t_first[0, 2, 0] - (tau(math.log10(5e8)) + 0.5)) < 1e-3  # released first
    assert abs(out.trained[0, 2, 0] - tau(7.0)) < 1e-3
    assert abs(out.t_first[0, 3, 0] - tau(math.log10(8e8))) < 1e-3  # trained first
    rows = mcengine.run(s, trajectories=20, seed=0).events.to_pylist()
    share = {(r["actor"], r["channel"]): r["p_reached"] for r in rows if r["metric"] == "t_first"}
    assert share[("small", "released")] == 1.0 and share[("small", "trained")] == 0.0
    assert share[("rich", "trained")] == 1.0 and share[("rich", "released")] == 0.0
    assert ("ow", "trained") not in share and share[("ow", None)] == 1.0


def test_release_after_the_horizon_does_not_count():
    s = parse(
        scenario={"name": "h", "start": 2025.0, "horizon": 2030.0, "steps_per_year": 12},
        actors=[
            {"name": "frontier", "budget": 1e9, "growth": 0.3},
            {"name": "ow", "budget": 5e8, "growth": 0.3, "releases_weights": True, "release_lag": 5.0},
            {"name": "small", "budget": 1e3, "growth": 0.0, "access_via": ["ow"]},
        ],
    )
    out = mcengine.sample_trajectories(s, trajectories=1, seed=0)
    assert np.isnan(out.t_first[0, 2, 0]) and np.isnan(out.released[0, 2, 0])


def test_groups_warning_window_physical_thresholds_and_series():
    """Deterministic group: warning_window rows equal lead_time rows; physical thresholds
    ignore algorithms; capability_at_budget and cost_to_reach follow the closed forms."""
    extra = '[[groups]]\nname = "orgs"\ncount = 5\nranks = [1, 5]\nbudget = 1e8\ngrowth = 0.3\nhw_lag = 1.0\n'
    s = parse(
        thresholds=[
            {"name": "1e28", "flop": 1e28, "kind": "effective"},
            {"name": "p1e27", "flop": 1e27, "kind": "physical"},
        ],
        access={"budgets": [1e6]},
        extra=extra,
    )
    out = mcengine.sample_trajectories(s, trajectories=1, seed=0)
    # orgs: budget 8 + 0.3 tau, hardware 18 + 0.12 (tau - 1)
    assert abs(out.t_first[0, 1, 1] - (27 - 8 - 18 + 0.12) / (0.3 + 0.12)) < 1e-3
    assert abs(out.t_first[0, 1, 0] - (28 - 8 - 18 + 0.12) / (0.3 + 0.12 + 0.4)) < 1e-3
    years = np.arange(21)
    np.testing.assert_allclose(out.fan[0, :, -1], 18 + 0.52 * years, atol=1e-4)  # H + A: effective FLOP per $
    paths = {(r["series"], r["year"]): r for r in mcengine.run(s, trajectories=10, seed=0).paths.to_pylist()}
    for year in years:
        for name, expected in (
            ("capability_at_budget:1e6", 6 + 18 + 0.52 * year),
            ("cost_to_reach:1e28", 28 - 18 - 0.52 * year),
            ("cost_to_reach:p1e27", 27 - 18 - 0.12 * year),
        ):  # physical: no A
            for q in ("mean", "p5", "p50", "p95"):
                assert abs(paths[name, 2025.0 + year][q] - expected) < 2e-3, (name, year, q)
    rows = mcengine.run(s, trajectories=10, seed=0).events.to_pylist()
    lead = {(r["rank"], r["threshold"]): r["p50"] for r in rows if r["actor"] == "orgs" and r["metric"] == "lead_time"}
    warn = {(r["rank"], r["threshold"]): r["p50"] for r in rows if r["metric"] == "warning_window"}
    assert lead == warn and len(warn) == 4


def test_correlation_keeps_its_sign_through_a_decreasing_conversion():
    """halving_years -> rate is decreasing; a positive correlation on algorithms.rate must
    still give a positive rank correlation of the rate itself, whatever the family."""
    for halving in ({"uniform": [0.5, 1.2]}, {"normal": [0.6, 1.0]}, {"lognormal": [0.5, 1.2]}):
        s = parse(
            algorithms={"initial": 1.0, "halving_years": halving},
            actors=[{"name": "frontier", "budget": 1e9, "growth": {"normal": [0.2, 0.5]}}],
            correlations={"pairs": [["algorithms.rate", "actors.frontier.growth", 0.6]]},
        )
        fan = mcengine.sample_trajectories(s, trajectories=2000, seed=2).fan
        a_rate, b_rate = fan[:, 1, 1] - fan[:, 0, 1], fan[:, 1, 2] - fan[:, 0, 2]
        assert abs(stats.spearmanr(a_rate, b_rate).statistic - 0.6) <= K * spearman_se(0.6, 2000), halving


def test_a_regime_can_cap_an_uncapped_actor_and_refuses_release_lag_without_release():
    s = parse(
        actors=[{"name": "frontier", "budget": 1e9, "growth": 0.5}],
        regimes=[
            {"name": "capped", "weight": 0.5, "set": {"actors.frontier.cap": 1e10}},
            {"name": "free", "weight": 0.5},
        ],
    )
    out = mcengine.sample_trajectories(s, trajectories=200, seed=1)
    budget_end = out.fan[:, -1, 2]
    assert np.all(budget_end[out.regime == 0] <= 10.0) and np.allclose(budget_end[out.regime == 1], 19.0, atol=1e-3)
    with pytest.raises(mcengine.ScenarioError, match="does not release weights"):
        parse(
            actors=[{"name": "frontier", "budget": 1e9, "growth": 0.5}],
            regimes=[{"name": "r", "weight": 1.0, "set": {"actors.frontier.release_lag": 1.0}}],
        )
