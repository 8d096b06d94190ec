"""The distribution families as people elicit them (triangular, PERT, beta, truncation,
mixtures, the "a to b" shorthand), checked against scipy.stats.

The samplers are checked on a grid of standard-normal draws z: each value x(z) must have
the reference CDF at u = Phi(z) (through the upper tail 1 - u for z >= 0), within what
float32 allows: ``K`` float32 epsilons of the tail probability itself, of the value's
rounding (pdf(x) * eps * (|x| + scale)) and of the cut-off mass of a truncation (the
kept CDF range starts there, so u is only resolved to eps * cut). One end-to-end KS test
per family runs the engine itself, at a false-alarm budget of 1e-3 per test (the draws
are seeded, so a pass is reproducible)."""

from __future__ import annotations

import copy
import math

import jax
import numpy as np
import pytest
import scipy.stats as st

import mcengine
from mcengine.cli import main
from mcengine.distributions import Dist
from mcengine.model import betaincinv, build, sample
from mcengine.scenario import ScenarioError

from .conftest import scenario_toml

EPS32 = float(np.finfo(np.float32).eps)
K = 64  # float32 epsilons allowed per source of error
Z = np.linspace(-5.5, 5.5, 881).astype(np.float32)
_sample = jax.jit(sample)


def _scipy_truncated(ref, lower, upper):
    """scipy has no generic truncation: a CDF-range-restricted wrapper with cdf/sf/pdf."""
    lo, hi = ref.cdf(lower), ref.sf(upper)
    keep = 1 - lo - hi

    class T:
        def cdf(self, x):
            return np.clip((ref.cdf(x) - lo) / keep, 0, 1)

        def sf(self, x):
            return np.clip((ref.sf(x) - hi) / keep, 0, 1)

        def pdf(self, x):
            return np.where((x >= lower) & (x <= upper), ref.pdf(x) / keep, 0.0)

        def std(self):
            return ref.std()

    return T()


class Mix:
    """A scipy-backed mixture reference."""

    def __init__(self, weights, parts):
        self.w, self.parts = np.asarray(weights) / np.sum(weights), parts

    def cdf(self, x):
        return sum(w * p.cdf(x) for w, p in zip(self.w, self.parts))

    def sf(self, x):
        return sum(w * p.sf(x) for w, p in zip(self.w, self.parts))

    def pdf(self, x):
        return sum(w * p.pdf(x) for w, p in zip(self.w, self.parts))

    def std(self):
        return max(p.std() for p in self.parts)


# name: (spec, scipy reference in engine units, cut-off mass / kept mass)
CASES = {
    "triangular": (Dist("triangular", 1.0, 10.0, c=3.0), st.triang(2 / 9, 1, 9), 0.0),
    "triangular at min": (Dist("triangular", 0.0, 1.0, c=0.0), st.triang(0.0, 0, 1), 0.0),
    "pert": (Dist("beta", 2.0, 12.0, c=1 + 4 * 0.2, d=1 + 4 * 0.8), st.beta(1.8, 4.2, 2, 10), 0.0),
    "beta 2 5": (Dist("beta", 0.0, 1.0, c=2.0, d=5.0), st.beta(2, 5), 0.0),
    "beta 0.5 0.5 scaled": (Dist("beta", -1.0, 3.0, c=0.5, d=0.5), st.beta(0.5, 0.5, -1, 4), 0.0),
    "beta 40 3": (Dist("beta", 0.0, 1.0, c=40.0, d=3.0), st.beta(40, 3), 0.0),
    "normal min 0": (
        Dist("normal", 1.0, 2.0).truncate(0.0, math.inf),
        _scipy_truncated(st.norm(1, 2), 0, np.inf),
        st.norm.cdf(-0.5) / st.norm.sf(-0.5),
    ),
    "normal both": (
        Dist("normal", 0.0, 1.0).truncate(-1.0, 2.0),
        _scipy_truncated(st.norm(0, 1), -1, 2),
        st.norm.cdf(-1) / (st.norm.cdf(2) - st.norm.cdf(-1)),
    ),
    "lognormal max": (
        Dist("lognormal", 0.0, 0.5).truncate(0.0, 10.0),
        _scipy_truncated(st.lognorm(0.5 * math.log(10)), 0, 10),
        st.norm.sf(2.0) / st.norm.cdf(2.0),
    ),
    "triangular max": (
        Dist("triangular", 0.0, 4.0, c=1.0).truncate(-math.inf, 3.0),
        _scipy_truncated(st.triang(0.25, 0, 4), -np.inf, 3),
        (1 / 12) / (11 / 12),
    ),
    "beta min": (
        Dist("beta", 0.0, 1.0, c=2.0, d=2.0).truncate(0.25, math.inf),
        _scipy_truncated(st.beta(2, 2), 0.25, np.inf),
        st.beta(2, 2).cdf(0.25) / st.beta(2, 2).sf(0.25),
    ),
    "mixture of two normals": (
        Dist("mixture", 0.0, weights=(0.3, 0.7), parts=(Dist("normal", 0.0, 1.0), Dist("normal", 6.0, 0.5))),
        Mix([0.3, 0.7], [st.norm(0, 1), st.norm(6, 0.5)]),
        0.0,
    ),
    "mixture of three families": (
        Dist(
            "mixture",
            0.0,
            weights=(0.2, 0.5, 0.3),
            parts=(
                Dist("triangular", 0.0, 2.0, c=0.5),
                Dist("beta", 1.0, 3.0, c=2.0, d=3.0),
                Dist("normal", 2.0, 0.3).truncate(1.5, math.inf),
            ),
        ),
        Mix(
            [0.2, 0.5, 0.3],
            [st.triang(0.25, 0, 2), st.beta(2, 3, 1, 2), _scipy_truncated(st.norm(2, 0.3), 1.5, np.inf)],
        ),
        0.0,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sampler_matches_scipy_on_a_z_grid_and_increases(name):
    dist, ref, cut = CASES[name]
    x = np.asarray(_sample(dist, Z), np.float64)
    assert np.all(np.isfinite(x))
    # compiled float32 ndtri (truncated normals and lognormals) can step back by an ulp or
    # two; everything else (closed forms, bisection over floats) is exactly non-decreasing
    slack = 4 * np.spacing(np.abs(x[1:]).astype(np.float32)) if dist.family in ("normal", "lognormal") else 0
    assert np.all(np.diff(x) >= -slack), "not monotone in z"
    z = Z.astype(np.float64)
    lower = z < 0
    tail = np.where(lower, st.norm.cdf(z), st.norm.sf(z))
    got = np.where(lower, ref.cdf(x), ref.sf(x))
    tol = K * EPS32 * (tail + ref.pdf(x) * (np.abs(x) + ref.std()) + cut)
    bad = np.abs(got - tail) > tol
    assert not bad.any(), f"z = {z[bad][:3]}: x = {x[bad][:3]}, tail {tail[bad][:3]} vs {got[bad][:3]}"
    if dist.truncated:
        assert dist.lower <= x.min() and x.max() <= dist.upper
        ends = np.asarray(_sample(dist, np.array([-9.0, 9.0], np.float32)))
        assert dist.lower <= ends[0] <= ends[1] <= dist.upper


@pytest.mark.parametrize("name", list(CASES))
def test_python_quantile_matches_scipy(name):
    """Dist.quantile (pure Python, for validation and bounds) against the reference."""
    dist, ref, _ = CASES[name]
    for p in (1e-6, 0.01, 0.3, 0.5, 0.9, 1 - 1e-6):
        q = dist.quantile(p)
        rounding = 4 * ref.pdf(q) * np.spacing(abs(q) + ref.std())  # q is a double
        assert ref.cdf(q) == pytest.approx(p, rel=1e-7, abs=rounding + 1e-15)
        assert dist.cdf(q) == pytest.approx(p, rel=1e-9, abs=rounding + 1e-15)


def test_inverse_incomplete_beta_in_float32():
    """The smallest float32 x with I_x(a, b) >= u; where that x is below the smallest
    normal float32 (tiny alpha, tiny u) the answer can only be resolved to that float."""
    u = np.array([1e-30, 1e-12, 1e-6, 0.01, 0.5, 0.99, 1 - 2**-20], np.float32)
    tiny = float(np.finfo(np.float32).tiny)
    for a, b in ((2.0, 5.0), (0.5, 0.5), (1.0, 1.0), (40.0, 3.0), (0.05, 8.0)):
        x = np.asarray(jax.jit(betaincinv)(a, b, u), np.float64)
        assert np.all(np.diff(x) >= 0)
        ref = st.beta(a, b)
        tol = K * EPS32 * (u + ref.pdf(x) * x) + ref.cdf(2 * tiny)
        assert np.all(np.abs(ref.cdf(x) - u) <= tol), (a, b, x)


def test_mixture_weights_are_the_parts_shares():
    """Well-separated parts: the share of draws from each is its weight (5 binomial sds)."""
    dist = Dist(
        "mixture",
        0.0,
        weights=(0.2, 0.5, 0.3),
        parts=(Dist("normal", 0, 1), Dist("fixed", 50.0), Dist("normal", 100, 1)),
    )
    n = 20_000
    x = np.asarray(_sample(dist, np.random.default_rng(1).standard_normal(n).astype(np.float32)))
    shares = [np.mean(x < 25), np.mean(x == 50.0), np.mean(x > 75)]
    for share, w in zip(shares, dist.weights):
        assert abs(share - w) < 5 * math.sqrt(w * (1 - w) / n)


# -- scenario files -----------------------------------------------------------------------

BASE = dict(
    scenario={"name": "d", "start": 2025.0, "horizon": 2027.0, "steps_per_year": 1},
    hardware={"initial": 1e18, "rate": 0.12, "volatility": 0.05},
    algorithms={"initial": 1.0, "rate": 0.4},
    actors=[{"name": "frontier", "budget": 1e9, "growth": 0.3}],
    thresholds=[{"name": "x", "flop": 1e28, "kind": "effective"}],
)


def parse(section="hardware", **change):
    parts = copy.deepcopy(BASE)
    target = parts[section][0] if isinstance(parts[section], list) else parts[section]
    target.update(change)
    return mcengine.parse_scenario(scenario_toml(**parts), source="f.toml")


def test_to_shorthand_is_a_90_percent_interval():
    d = parse(volatility="0.02 to 0.2").hardware.process.volatility
    assert d.family == "lognormal"
    assert (d.quantile(0.05), d.quantile(0.95)) == (pytest.approx(0.02), pytest.approx(0.2))
    d = parse(rate="-0.1 to 0.3").hardware.process.rate
    assert d.family == "normal" and (d.quantile(0.05), d.quantile(0.95)) == (pytest.approx(-0.1), pytest.approx(0.3))
    d = parse(rate="0 to 0.3").hardware.process.rate
    assert d.family == "normal" and d.quantile(0.05) == pytest.approx(0.0, abs=1e-12)
    text = scenario_toml(**BASE)
    set_rate = mcengine.parse_scenario(text, overrides=["hardware.rate=0.1 to 0.2"]).hardware.process.rate
    assert set_rate == parse(rate="0.1 to 0.2").hardware.process.rate  # --set takes the bare shorthand
    b = parse("actors", budget=" 1e8 to 1.5e9 ").actors[0].budget  # a level: log10 of the lognormal
    assert (b.quantile(0.05), b.quantile(0.95)) == (pytest.approx(8.0), pytest.approx(math.log10(1.5e9)))


def test_scenario_forms_parse_to_their_specs():
    h = parse(volatility={"triangular": [0.0, 0.05, 0.2]}).hardware.process.volatility
    assert h == Dist("triangular", 0.0, 0.2, c=0.05)
    p = parse(volatility={"pert": [0.0, 0.05, 0.2]}).hardware.process.volatility
    assert (p.family, p.c, p.d) == ("beta", pytest.approx(2.0), pytest.approx(4.0))
    b = parse(volatility={"beta": [2, 8], "range": [0, 0.5]}).hardware.process.volatility
    assert (b.a, b.b, b.c, b.d) == (0.0, 0.5, 2.0, 8.0)
    t = parse(rate={"normal": [-0.1, 0.3], "min": 0, "max": 1}).hardware.process.rate
    assert t.truncated and (t.lower, t.upper) == (0.0, 1.0) and t.quantile(1e-9) >= 0
    u = parse(rate={"uniform": [-1, 1], "min": 0}).hardware.process.rate
    assert u == Dist("uniform", 0.0, 1.0)  # truncating a uniform narrows it
    m = parse(rate={"mixture": [0.1, "0.2 to 0.4", {"normal": {"mean": 0.5, "sd": 0.1}}], "weights": [1, 2, 1]})
    d = m.hardware.process.rate
    assert d.weights == (0.25, 0.5, 0.25) and [p.family for p in d.parts] == ["fixed", "lognormal", "normal"]
    assert parse(rate={"mixture": [0.1, 0.2]}).hardware.process.rate.weights == (0.5, 0.5)


def test_conversions_keep_draws_increasing():
    """A doubling time (log2_over, decreasing) and a level (log10) in the new families:
    numbers still increase with z, and match the Python quantile."""
    parts = copy.deepcopy(BASE)
    del parts["hardware"]["rate"]
    parts["hardware"].update(
        doubling_years={"mixture": [{"pert": [1.5, 2.5, 4.0]}, {"beta": [2, 2], "range": [3, 5], "max": 4.5}]},
        initial={"triangular": [1e17, 1e18, 1e19], "min": 2e17},
    )
    s = mcengine.parse_scenario(scenario_toml(**parts))
    for d in (s.hardware.process.rate, s.hardware.initial):
        x = np.asarray(_sample(d, Z[::8]), np.float64)
        assert np.all(np.diff(x) >= 0)
        q = [d.quantile(p) for p in st.norm.cdf(Z[::8].astype(np.float64))]
        np.testing.assert_allclose(x, q, rtol=1e-4)
    assert s.hardware.process.rate.quantile(0.01) > math.log10(2) / 5  # at most 5 years to double


def test_engine_draws_each_family_as_scipy_does():
    """End to end: the engine's recorded per-trajectory inputs, KS-tested against scipy
    (false-alarm budget 1e-3 per family)."""
    parts = copy.deepcopy(BASE)
    parts["hardware"].update(volatility={"triangular": [0.0, 0.05, 0.2]}, rate={"normal": [-0.1, 0.3], "min": 0})
    parts["algorithms"].update(volatility={"pert": [0.0, 0.1, 0.4]}, rate={"beta": [2, 5], "range": [0.2, 0.8]})
    parts["actors"][0].update(growth={"mixture": ["0.1 to 0.3", {"uniform": [0.5, 0.6]}], "weights": [3, 1]})
    parts["actors"].append({"name": "b", "budget": 1e8, "growth": 0.3, "hw_penalty": "-0.5 to 0.5"})
    s = mcengine.parse_scenario(scenario_toml(**parts))
    model, _ = build(s)
    x = mcengine.sample_trajectories(s, 4000, seed=3).inputs
    col = lambda path: np.asarray(x[:, model.inputs.index(path)], np.float64)
    g = st.norm((-0.1 + 0.3) / 2, 0.4 / (2 * 1.6448536269514722))
    refs = {
        "hardware.volatility": st.triang(0.25, 0, 0.2).cdf,
        "hardware.rate": _scipy_truncated(g, 0, np.inf).cdf,
        "algorithms.volatility": st.beta(2, 4, 0, 0.4).cdf,
        "algorithms.rate": st.beta(2, 5, 0.2, 0.6).cdf,
        "actors.frontier.growth": Mix(
            [3, 1], [st.lognorm(0.5 * math.log(3) / 1.6448536269514722, scale=math.sqrt(0.03)), st.uniform(0.5, 0.1)]
        ).cdf,
        "actors.b.hw_penalty": st.norm(0, 0.5 / 1.6448536269514722).cdf,
    }
    for path, cdf in refs.items():
        assert st.kstest(col(path), cdf).pvalue > 1e-3, path
    assert col("hardware.rate").min() >= 0


# -- refusals ------------------------------------------------------------------------------

BAD = [  # (section, change, field in the message, a word of the fix)
    ("hardware", {"volatility": {"triangular": [0.2, 0.05, 0.0]}}, "hardware.volatility.triangular", "below max"),
    ("hardware", {"volatility": {"triangular": [0.0, 0.3, 0.2]}}, "hardware.volatility.triangular", "between"),
    ("hardware", {"volatility": {"triangular": [0.0, 0.3]}}, "hardware.volatility.triangular", "[min, mode, max]"),
    ("hardware", {"volatility": {"pert": [0.1, 0.1, 0.1]}}, "hardware.volatility.pert", "below max"),
    ("hardware", {"rate": {"pert": [-1e308, 0, 1e308]}}, "hardware.rate.pert", "narrower"),
    ("hardware", {"volatility": {"beta": [0, 2]}}, "hardware.volatility.beta[0]", "[0.01, 10000]"),
    ("hardware", {"volatility": {"beta": [2, 2], "range": [1, 0]}}, "hardware.volatility.range", "below high"),
    ("hardware", {"volatility": {"beta": [2, 2], "range": [-1, 1]}}, "hardware.volatility.range", "low >= 0"),
    ("actors", {"budget": {"beta": [2, 2]}}, "actors.frontier.budget.beta", "range = [low, high]"),
    ("hardware", {"rate": {"normal": [0, 1], "min": 2, "max": 1}}, "hardware.rate.max", "above min"),
    ("hardware", {"rate": {"normal": [0, 1], "min": 30}}, "hardware.rate", "inside the distribution"),
    ("hardware", {"rate": {"uniform": [0, 1], "min": 3}}, "hardware.rate", "leave nothing"),
    ("hardware", {"volatility": {"normal": [-0.1, 0.1], "max": 1}}, "hardware.volatility.min", "give min"),
    ("actors", {"budget": {"normal": [1e8, 1e9], "min": 0}}, "actors.frontier.budget.min", "> 0"),
    ("hardware", {"rate": {"normal": [0, 1], "mim": 0}}, "hardware.rate.mim", "did you mean 'min'"),
    ("hardware", {"rate": {"fixed": 1, "min": 0}}, "hardware.rate.min", "fixed takes none"),
    ("hardware", {"rate": {"normal": [0, 1], "triangular": [0, 1, 2]}}, "hardware.rate", "exactly one"),
    ("hardware", {"rate": {"mixture": [0.1]}}, "hardware.rate.mixture", "two or more"),
    ("hardware", {"rate": {"mixture": [0.1, 0.2], "weights": [1, 0]}}, "hardware.rate.weights[1]", "> 0"),
    ("hardware", {"rate": {"mixture": [0.1, 0.2], "weights": [1]}}, "hardware.rate.weights", "one per part"),
    ("hardware", {"rate": {"mixture": [0.1, {"mixture": [1, 2]}]}}, "hardware.rate.mixture[1].mixture", "outer"),
    ("hardware", {"rate": {"mixture": [0.1, {"normal": [2, 1]}]}}, "hardware.rate.mixture[1].normal", "swap"),
    ("hardware", {"rate": "0.3 to 0.1"}, "hardware.rate", "below the second"),
    ("hardware", {"rate": "fast"}, "hardware.rate", '"a to b"'),
    ("hardware", {"rate": "1 to inf"}, "hardware.rate", '"a to b"'),
    ("hardware", {"volatility": "-0.1 to 0.1"}, "hardware.volatility", "truncate it with min"),
]


@pytest.mark.parametrize("section,change,field,fix", BAD, ids=[f"{b[2]}:{b[3]}" for b in BAD])
def test_bad_distribution_is_one_line_naming_file_field_and_fix(section, change, field, fix):
    with pytest.raises(ScenarioError) as e:
        parse(section, **change)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"f.toml: {field}: "), msg
    assert fix in msg, msg


@pytest.mark.parametrize(
    "where,value",
    [
        ("budget", {"triangular": [1e8, 2e8, 1e9]}),
        ("budget", {"normal": [1e8, 1e9], "min": 1e7}),
        ("budget", {"mixture": [1e8, 1e9]}),
        ("entry", {"pert": [1e6, 1e7, 1e8]}),
        ("jumps", {"beta": [2, 2], "range": [-1, 1]}),
    ],
)
def test_closed_form_places_refuse_the_new_families(where, value):
    """Group and entrant budgets and jump sizes have their upper tails in closed form."""
    parts = copy.deepcopy(BASE)
    group = {"name": "labs", "budget": 1e8, "growth": 0.3, "count": 10, "ranks": [1, 5]}
    if where == "budget":
        group["budget"] = value
    elif where == "entry":
        group["entry"] = {"per_year": 1.0, "budget": value}
    else:
        parts["hardware"]["jumps"] = {"per_year": 0.5, "size": value}
    parts["groups"] = [group]
    with pytest.raises(ScenarioError, match="not supported here.*fixed, normal, lognormal or uniform") as e:
        mcengine.parse_scenario(scenario_toml(**parts))
    assert "\n" not in str(e.value)


def test_regime_fixing_a_correlated_number_warns(tmp_path, capsys):
    parts = copy.deepcopy(BASE)
    parts["hardware"]["rate"] = "0.1 to 0.2"
    parts["algorithms"]["rate"] = {"pert": [0.2, 0.4, 0.8]}
    parts["regimes"] = [
        {"name": "calm", "weight": 0.5, "set": {"hardware.rate": 0.15}},
        {"name": "wild", "weight": 0.5},
    ]
    parts["correlations"] = {"pairs": [["hardware.rate", "algorithms.rate", 0.5]]}
    path = tmp_path / "w.toml"
    path.write_text(scenario_toml(**parts))
    s = mcengine.load_scenario(path)
    assert len(s.warnings) == 1 and "correlations.pairs[1]: 'hardware.rate'" in s.warnings[0]
    assert "'calm'" in s.warnings[0]
    with pytest.raises(SystemExit) as e:
        main(["validate", str(path)])
    assert e.value.code == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {path}: correlations.pairs[1]")
    parts["regimes"][0]["set"] = {"hardware.rate": "0.1 to 0.15"}
    path.write_text(scenario_toml(**parts))
    assert mcengine.load_scenario(path).warnings == ()
