"""Results folders: files, schemas, provenance, readers, and safe writing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

import mcengine
from mcengine import io

from .conftest import PEER, exit_code, scenario_toml

SMALL = scenario_toml(
    actors=[
        {"name": "frontier", "budget": {"lognormal": [1e8, 1e9]}, "growth": 0.3, "volatility": 0.1},
        {"name": "follower", "budget": 1e8, "growth": 0.3, "algo_lag": 0.5},
    ],
    thresholds=[
        {"name": "1e28", "flop": 1e28, "kind": "effective"},
        {"name": "1e26_physical", "flop": 1e26, "kind": "physical"},
    ],
    access={"budgets": [1e6, 1e8]},
)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "small"
    results = mcengine.run(mcengine.parse_scenario(SMALL, "small.toml"), trajectories=500, seed=7)
    results.write(folder)
    return folder, results


def test_folder_has_three_files_with_schemas(small_run):
    folder, _ = small_run
    assert sorted(p.name for p in folder.iterdir()) == [
        ".mcengine",
        "access.parquet",
        "counts.parquet",
        "events.parquet",
        "paths.parquet",
    ]
    for name in io.FILES:
        t = pq.read_table(folder / f"{name}.parquet")
        assert t.schema.remove_metadata() == io.SCHEMAS[name], name
    events = pq.read_table(folder / "events.parquet").to_pylist()
    keys = {(r["actor"], r["threshold"], r["metric"]) for r in events}
    assert keys == {
        (a, t, m)
        for a in ("frontier", "follower")
        for t in ("1e28", "1e26_physical")
        for m in ("t_first", "lead_time")
        if not (a == "frontier" and m == "lead_time")
    }
    assert all(r["rank"] == 1 and r["regime"] is None and r["channel"] is None and r["n"] == 500 for r in events)
    access = pq.read_table(folder / "access.parquet").to_pylist()
    assert {(r["budget_usd"], r["threshold"]) for r in access} == {
        (b, t) for b in (1e6, 1e8) for t in ("1e28", "1e26_physical")
    }
    paths = pq.read_table(folder / "paths.parquet").to_pylist()
    assert {r["series"] for r in paths} == {
        "hardware",
        "algorithms",
        "budget:frontier",
        "budget:follower",
        "effective:frontier",
        "effective:follower",
        "capability_at_budget:1e6",
        "capability_at_budget:1e8",
        "cost_to_reach:1e28",
        "cost_to_reach:1e26_physical",
    }
    assert sorted({r["year"] for r in paths}) == [2025.0 + m for m in range(21)]


def test_censored_quantiles_are_null_not_sentinels():
    """A quantile that falls among trajectories that never reach the threshold is null, and
    exactly those are: quantile q of n trajectories is read at rank q*(n-1), so it exists
    iff that rank (rounded up) is below the number that reached."""
    text = scenario_toml(
        hardware={"initial": 1e18, "rate": {"normal": [0.02, 0.22]}, "volatility": 0.0},
        access={"budgets": [1.0, 1e2, 1e4]},
    )
    n = 400
    access = mcengine.run(mcengine.parse_scenario(text, "censored.toml"), trajectories=n, seed=3).tables()["access"]
    nulls = 0
    for r in access.to_pylist():
        reached = round(r["p_reached"] * n)
        for q in (1, 5, 10, 25, 50, 75, 90, 95, 99):
            assert (r[f"p{q}"] is None) == (math.ceil(q / 100 * (n - 1)) >= reached), (r, q)
            assert r[f"p{q}"] is None or 2025.0 <= r[f"p{q}"] <= 2045.0
            nulls += r[f"p{q}"] is None
    partly = [r["p_reached"] for r in access.to_pylist() if 0.05 < r["p_reached"] < 0.95]
    assert partly and 0 < nulls < 9 * access.num_rows, (partly, nulls)


def test_count_quantiles_match_numpy_on_the_same_trajectories():
    """counts.parquet against numpy's ``inverted_cdf`` quantiles of the very same
    trajectories' counts: exact below aggregate.COUNT_EXACT, within half a COUNT_RATIO step
    above, for counts that spread from tens to millions of organisations between
    trajectories (a pilot-sized linear bin once put the p5 and the median at 0)."""
    from mcengine import aggregate

    group = {
        "name": "orgs",
        "count": 50,
        "ranks": [1],
        "budget": {"lognormal": [1e5, 3e7]},
        "growth": 0.3,
        "entry": {"per_year": {"lognormal": [3.0, 3e3]}, "per_year_growth": {"uniform": [0.0, 0.35]}, "budget": 1e6},
    }
    s = mcengine.parse_scenario(
        scenario_toml(
            scenario={"name": "spread", "start": 2025.0, "horizon": 2037.0, "steps_per_year": 4},
            groups=[group],
            thresholds=[{"name": "p20", "flop": 1e20, "kind": "physical"}],
        )
    )
    n, seed = 3000, 4
    rows = mcengine.run(s, trajectories=n, seed=seed).tables()["counts"].to_pylist()
    counts = mcengine.sample_trajectories(s, n, seed).counts[:, :, 0].astype(np.float64)  # [N, years]
    exact = above = 0
    largest = 0.0
    for r in (r for r in rows if r["regime"] is None and r["basis"] == "reached"):
        x = counts[:, round(r["year"] - s.start)]
        for q in (5, 25, 50, 75, 95):
            want = np.quantile(x, q / 100, method="inverted_cdf")
            if want < aggregate.COUNT_EXACT:
                assert r[f"p{q}"] == want, (r["year"], q)
                exact += 1
            else:
                assert r[f"p{q}"] == pytest.approx(want, rel=(aggregate.COUNT_RATIO - 1) / 2 + 1e-3), (r["year"], q)
                above += 1
                largest = max(largest, want)
        assert r["mean"] == pytest.approx(x.mean(), rel=(aggregate.COUNT_RATIO - 1) / 2 + 1e-3)
    assert exact > 10 and above > 10 and largest > 100 * aggregate.COUNT_EXACT, (exact, above, largest)


def test_every_file_records_provenance(small_run):
    folder, results = small_run
    for name in io.FILES:
        meta = json.loads(pq.read_schema(folder / f"{name}.parquet").metadata[b"mcengine"])
        assert meta["scenario"] == "test" and meta["scenario_toml"] == SMALL
        assert meta["seed"] == 7 and meta["trajectories"] == 500 and meta["chunk_size"] >= 1
        assert set(meta["versions"]) >= {"mcengine", "jax", "jaxlib"} and meta["prng"] == "threefry2x32"
        assert meta["platform"] and meta["device_kind"] and meta["started"] and meta["finished"]
    assert mcengine.read_results(folder).metadata == results.metadata


def test_readable_without_mcengine_by_pandas_and_duckdb(small_run):
    folder, _ = small_run
    code = f"""
import sys
sys.modules["mcengine"] = None  # prove the readers do not need mcengine
import pandas as pd, duckdb
df = pd.read_parquet({str(folder)!r} + "/events.parquet")
assert len(df) == 6 and set(df.metric) == {{"t_first", "lead_time"}}
files = [f"{folder}/{{name}}.parquet" for name in ("events", "access", "paths")]
n = duckdb.sql(f"select count(*) from read_parquet({{files}}, union_by_name=true)").fetchall()[0][0]
assert n == 6 + 4 + 10 * 21, n
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_cli_run_default_folder_refuses_overwrite_then_force(tmp_path, write_scenario, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_scenario(SMALL)
    assert exit_code(["run", str(path), "-n", "200"]) == 0
    folder = tmp_path / "mcengine-results" / "test"
    assert (folder / "events.parquet").is_file()
    out = capsys.readouterr().out
    assert "Frontier date" in out and "Median lead time" in out
    assert exit_code(["run", str(path), "-n", "200"]) == 2 and "--force" in capsys.readouterr().err
    assert exit_code(["run", str(path), "-n", "300", "--force"]) == 0
    assert pq.read_table(folder / "events.parquet").column("n")[0].as_py() == 300
    assert sorted(p.name for p in (tmp_path / "mcengine-results").iterdir()) == ["test"]  # no leftovers
    assert exit_code(["summary", str(folder)]) == 0 and "300 trajectories" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["file", "under_a_file"])
def test_bad_output_path_is_refused_before_sampling(kind, tmp_path, write_scenario, capsys, monkeypatch):
    path = write_scenario(SMALL)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker if kind == "file" else blocker / "results"
    monkeypatch.setattr(mcengine.api, "run", lambda *a, **k: pytest.fail("sampled before checking --out"))
    code = exit_code(["run", str(path), "-n", "10", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(out) in err


def test_failed_write_leaves_nothing(tmp_path, small_run, monkeypatch):
    _, results = small_run
    calls = []

    def failing_write(table, where, **kw):
        calls.append(where)
        if len(calls) == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C while the second file is written
        with open(where, "wb") as f:
            f.write(b"partial")

    monkeypatch.setattr(io.pq, "write_table", failing_write)
    with pytest.raises(KeyboardInterrupt):
        results.write(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_forced_failed_write_keeps_the_old_folder(tmp_path, small_run, monkeypatch):
    _, results = small_run
    results.write(tmp_path / "out")
    before = sorted(os.listdir(tmp_path / "out"))
    monkeypatch.setattr(io.pq, "write_table", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(io.OutputError, match="out: cannot write it \\(disk full\\)"):
        results.write(tmp_path / "out", overwrite=True)
    assert sorted(os.listdir(tmp_path / "out")) == before and os.listdir(tmp_path) == ["out"]


def test_command_line_end_to_end_in_a_subprocess(tmp_path):
    """The installed console script as a user runs it (the persistent compile cache on, in
    a fresh cache folder): runs the peer scenario, prints the summary, exit 0, and leaves
    compiled programs in the cache for the next run."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = subprocess.run(
        ["mcengine", "run", str(PEER), "-n", "300", "--out", str(tmp_path / "peer")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "follower" in out.stdout and (tmp_path / "peer" / "paths.parquet").is_file()
    assert any((tmp_path / "cache" / "mcengine" / "jax").rglob("*")), "nothing was cached"
    bad = subprocess.run(["mcengine", "run", str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr
