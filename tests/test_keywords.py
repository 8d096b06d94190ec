"""Every scenario keyword changes the results: none is silently ignored.

One rich scenario; each case changes one keyword and the per-trajectory outputs (same
seed) must differ. Numeric changes reuse the compiled kernel (the numbers are traced
arguments), so this stays fast."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import mcengine

from .conftest import scenario_toml

BASE = dict(
    scenario={"name": "kw", "start": 2025.0, "horizon": 2035.0, "steps_per_year": 4},
    hardware={"initial": 1e18, "rate": {"normal": [0.08, 0.16]}, "volatility": 0.05,
              "long_run_rate": 0.05, "decay_years": 10.0, "jumps": {"per_year": 0.3, "size": {"normal": [0.1, 0.5]}}},
    algorithms={"initial": 1.0, "rate": {"normal": [0.3, 0.6]}, "volatility": 0.1, "catch_up_rate": 0.2},
    actors=[{"name": "frontier", "budget": {"lognormal": [1e8, 1e9]}, "growth": {"normal": [0.2, 0.5]},
             "volatility": 0.1, "cap": 1e11},
            {"name": "ow", "budget": 3e7, "growth": 0.3, "algo_lag": 0.5, "releases_weights": True,
             "release_lag": 0.25},
            {"name": "follower", "budget": 1e8, "growth": 0.3, "algo_lag": 0.5, "hw_lag": 1.0, "hw_penalty": 0.2,
             "cap": 1e10, "access_via": ["ow"]}],
    groups=[{"name": "orgs", "count": 100, "ranks": [1, 10], "budget": {"lognormal": [1e5, 1e8]}, "growth": 0.3,
             "volatility": 0.1, "cap": 1e10, "algo_lag": 0.25, "hw_lag": 0.5, "hw_penalty": 0.1,
             "access_via": ["ow"]}],
    thresholds=[{"name": "e28", "flop": 1e28, "kind": "effective"}, {"name": "e29", "flop": 1e29, "kind": "effective"},
                {"name": "p26", "flop": 1e26, "kind": "physical"}],
    access={"budgets": [1e6, 1e8]},
    regimes=[{"name": "a", "weight": 0.4, "set": {"algorithms.rate": 0.8}},
             {"name": "b", "weight": 0.6, "set": {"hardware.jumps.per_year": 1.0}}],
    correlations={"pairs": [["algorithms.rate", "actors.frontier.growth", 0.5]]},
)


def set_path(parts, path, value):
    section, *rest = path.split(".")
    target = parts[section]
    while rest:
        key = rest.pop(0)
        if isinstance(target, list):
            target = next(t for t in target if t.get("name") == key)
            continue
        if not rest:
            target[key] = value
            return
        target = target[key]


def drop_path(parts, path):
    section, name, key = path.split(".")
    del next(t for t in parts[section] if t["name"] == name)[key]


CASES = [
    ("scenario.steps_per_year", 12),
    ("hardware.initial", 2e18), ("hardware.rate", {"normal": [0.1, 0.2]}), ("hardware.volatility", 0.2),
    ("hardware.long_run_rate", 0.0), ("hardware.decay_years", 3.0), ("hardware.jumps.per_year", 1.0),
    ("hardware.jumps.size", {"normal": [-0.5, 0.5]}),
    ("algorithms.initial", 3.0), ("algorithms.rate", {"normal": [0.2, 0.5]}), ("algorithms.volatility", 0.3),
    ("algorithms.catch_up_rate", 0.8),
    ("actors.frontier.budget", {"lognormal": [2e8, 2e9]}), ("actors.frontier.growth", {"normal": [0.4, 0.7]}),
    ("actors.frontier.volatility", 0.3), ("actors.frontier.cap", 1e10),
    ("actors.ow.release_lag", 1.0), ("actors.ow.algo_lag", 1.0),
    ("actors.follower.hw_lag", 2.0), ("actors.follower.hw_penalty", 0.6), ("actors.follower.cap", 1e9),
    ("groups.orgs.count", 1000), ("groups.orgs.ranks", [1, 5]), ("groups.orgs.budget", {"lognormal": [1e6, 1e8]}),
    ("groups.orgs.growth", 0.1), ("groups.orgs.volatility", 0.3), ("groups.orgs.cap", 1e8),
    ("groups.orgs.algo_lag", 1.0), ("groups.orgs.hw_lag", 1.5), ("groups.orgs.hw_penalty", 0.5),
    ("thresholds.e29.flop", 3e29), ("thresholds.e28.kind", "physical"), ("access.budgets", [1e6, 1e9]),
]


def outputs(parts, n=200):
    return mcengine.sample_trajectories(mcengine.parse_scenario(scenario_toml(**parts)), trajectories=n, seed=1)


@pytest.fixture(scope="module")
def base():
    return outputs(BASE)


def differs(a, b) -> bool:
    for x, y in zip(a, b):
        if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
            return True
    return False


@pytest.mark.parametrize("path,value", CASES, ids=[c[0] for c in CASES])
def test_changing_a_keyword_changes_the_outputs(path, value, base):
    parts = copy.deepcopy(BASE)
    set_path(parts, path, value)
    assert differs(base, outputs(parts))


def test_an_earlier_horizon_censors_what_comes_after_it_and_keeps_the_rest(base):
    """Dates (years since the start) up to the new horizon are the same numbers; later
    ones become censored (NaN), not clipped."""
    parts = copy.deepcopy(BASE)
    parts["scenario"]["horizon"] = 2028.0
    short = outputs(parts)
    for name in ("t_first", "diffusion"):
        a, b = getattr(base, name), getattr(short, name)
        kept = a <= 3.0
        assert kept.any() and (~kept & ~np.isnan(a)).any(), name  # both sides of the new horizon occur
        assert np.array_equal(np.where(kept, a, np.nan), b, equal_nan=True), name


@pytest.mark.parametrize("change", [
    "doubling_years", "halving_years", "factor_per_year", "growth_factor", "no_release", "no_access_via",
    "regime_weight", "regime_set", "correlation", "start"])
def test_alternative_and_structural_keywords_change_the_outputs(change, base):
    parts = copy.deepcopy(BASE)
    if change == "doubling_years":
        del parts["hardware"]["rate"]
        parts["hardware"]["doubling_years"] = 2.0
    elif change == "halving_years":
        del parts["algorithms"]["rate"]
        parts["algorithms"]["halving_years"] = {"lognormal": [0.5, 1.0]}
    elif change == "factor_per_year":
        del parts["algorithms"]["rate"]
        parts["algorithms"]["factor_per_year"] = {"uniform": [2.0, 4.0]}
    elif change == "growth_factor":
        del parts["actors"][1]["growth"]
        parts["actors"][1]["factor_per_year"] = 3.0
    elif change == "no_release":
        parts["actors"][1]["releases_weights"] = False
        del parts["actors"][1]["release_lag"]
        drop_path(parts, "actors.follower.access_via")
        drop_path(parts, "groups.orgs.access_via")
    elif change == "no_access_via":
        drop_path(parts, "actors.follower.access_via")
    elif change == "regime_weight":
        parts["regimes"][0]["weight"], parts["regimes"][1]["weight"] = 0.6, 0.4
    elif change == "regime_set":
        parts["regimes"][0]["set"] = {"algorithms.rate": 0.2}
    elif change == "correlation":
        parts["correlations"]["pairs"][0][2] = -0.5
    elif change == "start":  # per-trajectory years since start are unchanged: calendar dates move by 1
        parts["scenario"].update(start=2026.0, horizon=2036.0)
        a = mcengine.run(mcengine.parse_scenario(scenario_toml(**BASE)), trajectories=50, seed=1).events
        b = mcengine.run(mcengine.parse_scenario(scenario_toml(**parts)), trajectories=50, seed=1).events
        for metric in ("t_first", "lead_time"):
            rows = [i for i, m in enumerate(a.column("metric").to_pylist()) if m == metric]
            qa = np.array([a.column("p50")[i].as_py() for i in rows], float)
            qb = np.array([b.column("p50")[i].as_py() for i in rows], float)
            assert np.array_equal(np.isnan(qa), np.isnan(qb)) and (~np.isnan(qa)).any()
            shift = 1.0 if metric == "t_first" else 0.0
            assert np.allclose(qb[~np.isnan(qb)], qa[~np.isnan(qa)] + shift, rtol=0, atol=1e-9), metric
        return
    assert differs(base, outputs(parts))
