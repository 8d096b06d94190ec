"""``mcengine compare``: differences checked against each run's own summary, rows that only
some runs have, censored and at-start medians, sweeps, JSON and the refusals.

Four runs of small scenarios, made once for the module: ``a`` (two thresholds, one reached
at the start, two actors, two budgets), ``b`` (``a`` with a faster hardware trend, named
the same), ``c`` (``a`` plus a threshold that most trajectories do not reach, an actor and
a budget) and a sweep of ``a`` over the hardware trend.
"""

from __future__ import annotations

import json

import pytest

import mcengine
from mcengine.compare import compare_runs
from mcengine.report import summary_data

from .conftest import scenario_toml
from .test_commands import cli, ok

N = "3000"
ACTORS = [
    {"name": "frontier", "budget": {"lognormal": [1e8, 1e10]}, "growth": 0.3},
    {"name": "follower", "budget": 1e8, "growth": 0.3},
]
THRESHOLDS = [
    {"name": "1e26", "flop": 1e26, "kind": "effective"},
    {"name": "1e30", "flop": 1e30, "kind": "effective"},
]
BASE = scenario_toml(actors=ACTORS, thresholds=THRESHOLDS, access={"budgets": [1e6, 1e8]})
WIDE = scenario_toml(
    actors=[*ACTORS, {"name": "extra", "budget": 1e7, "growth": 0.2}],
    thresholds=[*THRESHOLDS, {"name": "far", "flop": 1e45, "kind": "effective"}],
    access={"budgets": [1e6, 1e8, 1e10]},
    algorithms={"initial": 1.0, "rate": 0.4, "volatility": 0.3},
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The folders: a, b, c (results) and sweep."""
    root = tmp_path_factory.mktemp("compare")
    (root / "base.toml").write_text(BASE)
    (root / "wide.toml").write_text(WIDE)
    ok(cli("run", root / "base.toml", "-n", N, "-q", "--out", root / "a"))
    ok(cli("run", root / "base.toml", "-n", N, "-q", "--set", "hardware.rate=0.15", "--out", root / "b"))
    ok(cli("run", root / "wide.toml", "-n", N, "-q", "--out", root / "c"))
    ok(cli("sweep", root / "base.toml", "--set", "hardware.rate=0.12,0.15", "-n", N, "-q", "--out", root / "sweep"))
    return {name: root / name for name in ("a", "b", "c", "sweep")}


def strict_json(text: str):
    """JSON that must not hold NaN or infinities."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))


@pytest.fixture(scope="module")
def abc(runs):
    return strict_json(ok(cli("compare", runs["a"], runs["b"], runs["c"], "--json")))


def test_differences_are_those_of_the_runs_summaries(runs, abc):
    """Every difference is the run's median minus the reference's, as summary_data has them."""
    ref = summary_data(mcengine.read_results(runs["a"]))
    other = summary_data(mcengine.read_results(runs["b"]))
    assert abc["reference"] == "a" and [r["label"] for r in abc["runs"]] == ["a", "b", "c"]
    checked = 0
    for t_ref, t in zip(ref["thresholds"], other["thresholds"]):
        row = next(r for r in abc["frontier_date"] if r["threshold"] == t["threshold"])
        assert row["runs"]["b"] == t["frontier_date"]
        for actor, x in t["lead_time"].items():
            lead = next(r for r in abc["lead_time"] if (r["actor"], r["threshold"]) == (actor, t["threshold"]))
            y = t_ref["lead_time"][actor]
            if not (x["reached_at_start"] or y["reached_at_start"] or x["p50"] is None or y["p50"] is None):
                assert lead["diff_p50"]["b"] == pytest.approx(x["p50"] - y["p50"], abs=1e-6)
                checked += 1
        if not t["frontier_date"]["reached_at_start"]:
            assert row["diff_p50"]["b"] == pytest.approx(t["frontier_date"]["p50"] - t_ref["frontier_date"]["p50"])
            assert row["diff_p50"]["b"] < 0  # faster hardware: the frontier is earlier
            checked += 1
    for d_ref, d in zip(ref["diffusion"], other["diffusion"]):
        for name, x in d["dates"].items():
            row = next(r for r in abc["diffusion"] if (r["budget_usd"], r["threshold"]) == (d["budget_usd"], name))
            if not (x["reached_at_start"] or d_ref["dates"][name]["reached_at_start"]):
                assert row["diff_p50"]["b"] == pytest.approx(x["p50"] - d_ref["dates"][name]["p50"], abs=1e-6)
                checked += 1
    for c_ref, c in zip(ref["counts"], other["counts"]):
        for year, x in c["by_year"].items():
            row = next(r for r in abc["counts"] if (r["threshold"], r["year"]) == (c["threshold"], float(year)))
            assert row["diff_p50"]["b"] == x["p50"] - c_ref["by_year"][year]["p50"]
            checked += 1
    assert checked > 10


def test_rows_only_some_runs_have_are_blank_with_a_note(runs, abc):
    far = next(r for r in abc["frontier_date"] if r["threshold"] == "far")
    assert far["runs"]["a"] is None and far["runs"]["b"] is None and far["runs"]["c"] is not None
    assert far["diff_p50"] == {"b": None, "c": None}
    extra = [r for r in abc["lead_time"] if r["actor"] == "extra"]
    assert extra and all(r["runs"]["a"] is None and r["diff_p50"]["c"] is None for r in extra)
    notes = {(n["table"], n.get("threshold") or n.get("actor") or n.get("budget_usd")): n for n in abc["notes"]}
    assert notes["frontier_date", "far"]["absent_from"] == ["a", "b"]
    assert notes["lead_time", "extra"]["absent_from"] == ["a", "b"]
    assert notes["diffusion", 1e10]["absent_from"] == ["a", "b"]
    assert len(abc["notes"]) == 3
    text = ok(cli("compare", runs["a"], runs["b"], runs["c"]))
    assert "frontier date: threshold far not in a, b" in text
    assert "lead time: actor extra not in a, b" in text
    assert "diffusion: budget $10,000,000,000 not in a, b" in text
    row = next(line for line in text.splitlines() if line.split()[:2] == ["far", "a"])
    assert row.split() == ["far", "a"]  # blank cells, no dash and no error


def test_censored_and_at_start_medians_have_no_difference(runs, abc):
    far = next(r for r in abc["frontier_date"] if r["threshold"] == "far")["runs"]["c"]
    assert far["p50"] is None and 0 < far["p_reached"] < 0.5  # reached by a minority: censored median
    at_start = next(r for r in abc["frontier_date"] if r["threshold"] == "1e26")
    assert at_start["runs"]["a"]["reached_at_start"] and at_start["diff_p50"] == {"b": None, "c": None}
    twice = strict_json(ok(cli("compare", runs["c"], runs["c"], "--json")))
    label = twice["runs"][1]["label"]
    assert [r["label"] for r in twice["runs"]] == ["test", "test (2)"]
    row = next(r for r in twice["frontier_date"] if r["threshold"] == "far")
    assert row["runs"][label]["p50"] is None and row["diff_p50"] == {label: None}
    lines = ok(cli("compare", runs["c"], runs["c"])).splitlines()
    i = next(i for i, line in enumerate(lines) if line.split()[:1] == ["far"])
    assert lines[i + 1].split()[:2] == ["test", "(2)"]
    assert lines[i].split()[2] == "—" and lines[i + 1].split()[2] == "—"  # the medians
    assert lines[i + 1].split()[-1] == "—" and lines[i + 1].split()[-2].endswith("%")  # no difference
    i = next(i for i, line in enumerate(lines) if line.split()[:1] == ["1e26"])
    assert "reached at start" in lines[i] and lines[i + 1].split()[-1] == "—"
    assert "nan" not in "\n".join(lines).lower() and "None" not in "\n".join(lines)


def test_labels_and_provenance(runs, abc):
    """Two runs of one scenario are told apart by their folders; --set overrides are shown."""
    assert {r["scenario"] for r in abc["runs"]} == {"test"}
    assert [r["overrides"] for r in abc["runs"]] == [[], ["hardware.rate=0.15"], []]
    assert all(r["trajectories"] == int(N) and r["seed"] == 0 for r in abc["runs"])
    text = ok(cli("compare", runs["a"], runs["b"]))
    assert "test --set hardware.rate=0.15" in text
    assert max(len(line) for line in text.splitlines()) <= 110
    same = strict_json(ok(cli("compare", runs["a"], runs["a"], "--json")))
    assert len({r["label"] for r in same["runs"]}) == 2
    assert all(d in (None, 0) for r in same["frontier_date"] + same["lead_time"] for d in r["diff_p50"].values())


def test_a_sweep_compares_its_points(runs):
    manifest = json.loads((runs["sweep"] / "sweep.json").read_text())
    data = strict_json(ok(cli("compare", runs["sweep"], "--json")))
    assert [r["label"] for r in data["runs"]] == ["0.12", "0.15"]
    assert [r["values"] for r in data["runs"]] == [p["values"] for p in manifest["points"]]
    p0, p1 = (p["summary"]["thresholds"]["1e30"]["frontier_p50"] for p in manifest["points"])
    row = next(r for r in data["frontier_date"] if r["threshold"] == "1e30")
    assert row["diff_p50"]["0.15"] == pytest.approx(p1 - p0, abs=1e-6) and p1 < p0
    mixed = strict_json(ok(cli("compare", runs["a"], runs["sweep"], "--json")))
    assert [r["label"] for r in mixed["runs"]] == ["test", "0.12", "0.15"]
    assert "0.12" in ok(cli("compare", runs["sweep"]))


def test_the_api_takes_results(runs):
    a, b = mcengine.read_results(runs["a"]), mcengine.read_results(runs["b"])
    data = compare_runs([a, b], labels=["slow", "fast"])
    assert data["reference"] == "slow" and set(data["frontier_date"][1]["diff_p50"]) == {"fast"}
    with pytest.raises(mcengine.ArgumentError):
        compare_runs([a, b], labels=["x", "x"])
    with pytest.raises(mcengine.ArgumentError):
        compare_runs([a])


def test_refusals_are_one_line(runs, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("events", "access", "paths"):
        (broken / f"{name}.parquet").write_bytes(b"not parquet")
    bad_sweep = tmp_path / "bad-sweep"
    bad_sweep.mkdir()
    (bad_sweep / "sweep.json").write_text("{")
    cases = {
        (runs["a"],): "compare needs at least two runs",
        (runs["a"], tmp_path / "none"): "no such folder",
        (runs["a"], tmp_path): "not a results folder",
        (runs["a"], broken): "not a readable Parquet file",
        (runs["a"], bad_sweep): "not a sweep manifest",
    }
    for args, message in cases.items():
        code, out, err = cli("compare", *args)
        assert code == 2 and out == "" and err.startswith("error: ") and message in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
