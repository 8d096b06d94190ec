"""Scenario files: what is accepted, what is refused, and how the refusal reads."""

from __future__ import annotations

import math

import pytest

import mcengine
from mcengine.cli import main
from mcengine.scenario import ScenarioError

from .conftest import PEER, scenario_toml

GOOD = dict(
    scenario={"name": "t", "start": 2025.0, "horizon": 2045.0, "steps_per_year": 12},
    hardware={"initial": 1e18, "rate": 0.12, "volatility": 0.05},
    algorithms={"initial": 1.0, "rate": 0.4},
    actors=[
        {"name": "frontier", "budget": {"lognormal": [2e8, 1.5e9]}, "growth": 0.3, "cap": 1e12},
        {"name": "follower", "budget": 1e8, "growth": 0.3, "algo_lag": 0.5},
    ],
    thresholds=[{"name": "1e28", "flop": 1e28, "kind": "effective"}],
)


def variant(section, change):
    """GOOD with one section changed by ``change(copy_of_section)``."""
    import copy

    parts = copy.deepcopy(GOOD)
    change(parts[section])
    return scenario_toml(**parts)


# (label, TOML text, expected dotted field in the message, a word of the fix)
MALFORMED = [
    (
        "typo'd key",
        variant("hardware", lambda h: h.update(volatilty=h.pop("volatility"))),
        "hardware.volatilty",
        "did you mean 'volatility'",
    ),
    ("missing required key", variant("hardware", lambda h: h.pop("initial")), "hardware.initial", "required"),
    (
        "p5 above p95",
        variant("actors", lambda a: a[0].update(budget={"lognormal": [2e9, 1e8]})),
        "actors.frontier.budget.lognormal",
        "swap",
    ),
    (
        "non-positive lognormal bound",
        variant("actors", lambda a: a[0].update(budget={"lognormal": [0.0, 1e8]})),
        "actors.frontier.budget.lognormal",
        "> 0",
    ),
    (
        "horizon before start",
        variant("scenario", lambda s: s.update(horizon=2020.0)),
        "scenario.horizon",
        "after scenario.start",
    ),
    ("non-finite number", variant("hardware", lambda h: h.update(rate=math.inf)), "hardware.rate", "finite"),
    ("no frontier", variant("actors", lambda a: a[0].update(name="leader")), "actors", "frontier"),
    ("two frontiers", variant("actors", lambda a: a[1].update(name="frontier")), "actors[2].name", "unique"),
    ("duplicate threshold", variant("thresholds", lambda t: t.append(dict(t[0]))), "thresholds[2].name", "unique"),
    (
        "string for a number",
        variant("actors", lambda a: a[1].update(growth="fast")),
        "actors.follower.growth",
        "must be a number",
    ),
    (
        "unknown threshold kind",
        variant("thresholds", lambda t: t[0].update(kind="effectve")),
        "thresholds.1e28.kind",
        "effective, physical",
    ),
    (
        "normal for a positive level",
        variant("actors", lambda a: a[1].update(budget={"normal": [1e6, 3e8]})),
        "actors.follower.budget.normal",
        "lognormal",
    ),
    (
        "negative volatility",
        variant("algorithms", lambda a: a.update(volatility=-0.1)),
        "algorithms.volatility",
        ">= 0",
    ),
    ("two rates", variant("hardware", lambda h: h.update(doubling_years=2.5)), "hardware.rate", "exactly one"),
    ("lagged frontier", variant("actors", lambda a: a[0].update(algo_lag=0.5)), "actors.frontier", "no lags"),
    ("not TOML", "[scenario\nname = 1\n", "", "not valid TOML"),
    (  # float32 holds 3.4e38 but resolves a monthly step only far below: refuse, never NaN bins
        "rate beyond float32",
        variant("hardware", lambda h: h.update(rate=1.7e38)),
        "hardware.rate",
        "give a smaller value",
    ),
    (
        "doubling time near zero",
        variant("hardware", lambda h: h.update(doubling_years=1e-40) or h.pop("rate")),
        "hardware.rate",
        "float32",
    ),
    (
        "volatility beyond float32",
        variant("actors", lambda a: a[1].update(volatility={"lognormal": [1.0, 1e6]})),
        "actors.follower.volatility",
        "float32",
    ),
    (
        "jump size beyond float32",
        variant("algorithms", lambda a: a.update(jumps={"per_year": 0.5, "size": {"normal": [1.0, 1e5]}})),
        "algorithms.jumps.size",
        "float32",
    ),
    (
        "regime rate beyond float32",
        scenario_toml(**GOOD, regimes=[{"name": "fast", "weight": 1.0, "set": {"algorithms.rate": 1e5}}]),
        'regimes.fast.set."algorithms.rate"',
        "float32",
    ),
    (
        "fractional steps",
        variant("scenario", lambda s: s.update(horizon=2045.05)),
        "scenario.horizon",
        "whole number of steps",
    ),
]


def test_good_scenario_parses():
    s = mcengine.parse_scenario(scenario_toml(**GOOD))
    assert [a.name for a in s.actors] == ["frontier", "follower"]
    assert s.n_steps == 240 and s.thresholds[0].level == pytest.approx(28.0)


@pytest.mark.parametrize("label,text,field,fix", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_scenario_is_one_line_exit_2_and_writes_nothing(label, text, field, fix, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "-n", "10", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {path}: {field}"), err
    assert fix in err, err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]
    with pytest.raises(ScenarioError):
        mcengine.load_scenario(path)


def test_validate_command_reports_each_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(MALFORMED[0][1])
    with pytest.raises(SystemExit) as e:
        main(["validate", str(PEER), str(bad)])
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert "ok: " in captured.out and "hardware.volatilty" in captured.err
    with pytest.raises(SystemExit) as e:
        main(["validate", str(PEER), "baseline"])
    assert e.value.code == 0  # validate always exits with its verdict


def test_every_builtin_scenario_validates():
    assert "baseline" in mcengine.builtin_names()
    for name in mcengine.builtin_names():
        s = mcengine.load_scenario(name)
        assert s.source == f"built-in:{name}" and s.text


def test_unknown_scenario_name_lists_builtins():
    with pytest.raises(ScenarioError, match="built-ins: .*baseline"):
        mcengine.load_scenario("no-such-scenario")


def test_peer_file_encodes_bench_md():
    """benchmarks/peer.toml holds exactly the BENCH.md numbers."""
    s = mcengine.load_scenario(PEER)
    z = 2 * 1.6448536269514722
    assert (s.start, s.horizon, s.steps_per_year, s.n_steps) == (2025.0, 2045.0, 12, 240)
    assert s.hardware.initial.a == 18.0 and s.hardware.process.volatility.a == 0.05
    assert s.hardware.process.rate.a == pytest.approx(0.12) and s.hardware.process.rate.b == pytest.approx(0.06 / z)
    assert s.algorithms.initial.a == 0.0 and s.algorithms.process.volatility.a == 0.10
    assert s.algorithms.process.rate.a == pytest.approx(0.49) and s.algorithms.process.rate.b == pytest.approx(0.46 / z)
    table = {  # budget p5, p95, growth p5, p95, algo_lag, hw_lag, hw_penalty
        "frontier": (2e8, 1.5e9, 0.25, 0.50, 0.0, 0.0, 0.0),
        "follower": (5e7, 5e8, 0.25, 0.50, 0.5, 0.0, 0.0),
        "open_weights": (2e7, 2e8, 0.20, 0.45, 1.0, 0.0, 0.0),
        "restricted": (5e7, 5e8, 0.20, 0.50, 1.0, 2.0, 0.3),
        "academic": (1e5, 1e6, 0.00, 0.20, 0.5, 0.0, 0.0),
    }
    assert [a.name for a in s.actors] == list(table)
    for a in s.actors:
        b5, b95, g5, g95, al, hl, pen = table[a.name]
        assert a.budget.quantile(0.05) == pytest.approx(math.log10(b5))
        assert a.budget.quantile(0.95) == pytest.approx(math.log10(b95))
        assert a.process.rate.quantile(0.05) == pytest.approx(g5) and a.process.rate.quantile(0.95) == pytest.approx(
            g95
        )
        assert (a.algo_lag, a.hw_lag, a.hw_penalty.a) == (al, hl, pen)
        assert a.process.volatility.a == 0.10 and a.cap.a == 12.0
    assert [(t.level, t.kind) for t in s.thresholds] == [(float(x), "effective") for x in range(27, 35)]
    assert s.access_budgets == ()
