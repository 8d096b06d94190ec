"""The analyst's tools: sweeps, sensitivity, per-trajectory output, JSON summary, progress."""

from __future__ import annotations

import json
import math
import os
import pty
import re
import subprocess
import sys

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

import mcengine
from mcengine import engine, report, sensitivity, sweep

from .conftest import PEER, exit_code, scenario_toml

SHORT = ["--set", "scenario.horizon=2033.0"]


def test_sweep_is_read_back_as_one_typed_table_by_duckdb_pandas_and_polars(tmp_path, capsys):
    out = tmp_path / "sw"
    assert (
        exit_code(
            [
                "sweep",
                str(PEER),
                "--fix",
                "scenario.horizon=2033.0",
                "--set",
                "hardware.rate=0.6,0.05,0.2",
                "--set",
                "actors.frontier.budget={ lognormal = [1e9, 1e10] },{ lognormal = [2e9, 2e10] }",
                "-n",
                "300",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "#5  hardware_rate=0.2, actors_frontier_budget=lognormal_2e9_2e10" in printed
    assert "1e34" in printed and "organisations able to reach it by 2033" in printed
    budgets = ["lognormal_1e9_1e10", "lognormal_2e9_2e10"]
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"""
        SELECT hardware_rate, actors_frontier_budget, count(*) AS n, avg(p50) AS p50
        FROM read_parquet('{out}/events/*.parquet')
        WHERE metric = 't_first' AND actor = 'frontier' GROUP BY ALL ORDER BY ALL""").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(x, b, 8) for x in (0.05, 0.2, 0.6) for b in budgets]
    assert rows[0][3] > rows[2][3]  # slower hardware: later frontier dates
    assert (
        duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/events/*.parquet') WHERE hardware_rate = 0.6").fetchall()[
            0
        ][0]
        > 0
    )
    import pandas as pd

    df = pd.read_parquet(out / "events")
    assert df.hardware_rate.dtype == "float64" and df.point.dtype == "int64"
    assert len(df[df.hardware_rate == 0.6]) == len(df) // 3
    assert sorted(df.hardware_rate.unique()) == [0.05, 0.2, 0.6]  # numeric order, not "0.05" < "0.2" < "0.6" by luck
    assert set(df.actors_frontier_budget) == set(budgets)
    assert {"hardware_rate", "actors_frontier_budget"} <= set(pd.read_parquet(out / "paths").columns)
    manifest = json.loads((out / "sweep.json").read_text())
    assert len(manifest["points"]) == 6 and manifest["points"][0]["values"]["hardware_rate"] == 0.6
    assert set(manifest["points"][0]["summary"]["thresholds"]["1e30"]) >= {"frontier_p50", "count_p50"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sw"]
    try:
        import polars as pl
    except ImportError:
        pytest.skip("polars is not installed (pip install polars); DuckDB and pandas were checked")
    frame = pl.read_parquet(out / "events" / "*.parquet")
    assert frame.schema["hardware_rate"] == pl.Float64 and frame.schema["point"] == pl.Int64
    assert frame.filter(pl.col("hardware_rate") == 0.6).height == frame.height // 3
    assert frame.sort("hardware_rate")["hardware_rate"].unique(maintain_order=True).to_list() == [0.05, 0.2, 0.6]


def test_sweep_values_are_typed_and_labelled():
    assert sweep.axis_values(["1", "2", "10"]) == (pa.int64(), [1, 2, 10])
    assert sweep.axis_values(["0.6", "1e11", "2"]) == (pa.float64(), [0.6, 1e11, 2.0])
    assert sweep.axis_values(["true", "false"]) == (pa.bool_(), [True, False])
    assert sweep.axis_values(["{ lognormal = [1e9, 1e10] }", "{ normal = [0.1, 0.25] }", "2.5"]) == (
        pa.string(),
        ["lognormal_1e9_1e10", "normal_0.1_0.25", "2.5"],
    )
    assert sweep.axis_values(["{ lognormal = [1.5e-3, 123456789.0] }"])[1] == ["lognormal_0.0015_123456789"]
    assert sweep.axis_values(['"a b"', '"a_b"'])[1] == ["a_b", "a_b_2"]  # distinct labels for distinct values


def test_sweep_points_are_the_same_as_single_runs(tmp_path):
    out = tmp_path / "sw"
    assert (
        exit_code(
            [
                "sweep",
                str(PEER),
                "--fix",
                "scenario.horizon=2033.0",
                "--set",
                "algorithms.volatility=0.05,0.2",
                "-n",
                "300",
                "--seed",
                "4",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    single = mcengine.run(
        mcengine.load_scenario(PEER, ["scenario.horizon=2033.0", "algorithms.volatility=0.2"]), trajectories=300, seed=4
    )
    swept = pq.read_table(out / "events" / "point-00001.parquet")
    assert set(swept.column("algorithms_volatility").to_pylist()) == {0.2}
    assert swept.select(single.events.column_names).equals(single.events)


def test_sweep_points_that_change_only_numbers_trace_the_kernel_once(tmp_path, monkeypatch):
    """Numbers are traced arguments, so the points of a numeric sweep reuse one compiled
    step: the kernel's Python body runs once (the max-traces pattern). A point that changes
    a shape (here the horizon, which sets the number of steps) traces anew."""
    traces = []
    real = engine._chunk_counts
    monkeypatch.setattr(engine, "_chunk_counts", lambda *a, **k: (traces.append(1), real(*a, **k))[1])
    monkeypatch.setattr(engine, "_COMPILED", {})
    sweep.sweep(
        PEER,
        ["hardware.rate=0.1,0.12,0.14", "algorithms.volatility=0.1,0.2"],
        trajectories=200,
        out=tmp_path / "numbers",
    )
    assert len(traces) == 1
    sweep.sweep(PEER, ["scenario.horizon=2040.0,2042.0"], trajectories=200, out=tmp_path / "shapes")
    assert len(traces) == 3  # the horizon sets the number of steps: one trace per shape


def test_analyses_reuse_the_run_s_program(tmp_path, monkeypatch, cold_compiles):
    """A run, the sensitivity analysis and ``sample_trajectories`` of one scenario and number
    of trajectories sample through one compiled program: after the run, XLA compiles
    nothing large (small host-side helpers only, well under the run's chunk step), and the
    trajectories the analyses see are the ones the run counted (the frontier's p_reached)."""
    monkeypatch.setattr(engine, "_COMPILED", {})
    s = mcengine.load_scenario(PEER)
    compiles: list[float] = []

    def listener(name, seconds, **_):
        if name.endswith("backend_compile_duration"):
            compiles.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        results = mcengine.run(s, trajectories=300, seed=5)
        run_compile = max(compiles)
        compiles.clear()
        sensitivity.sensitivity(s, trajectories=300, seed=5)
        out = mcengine.sample_trajectories(s, trajectories=300, seed=5)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(engine._COMPILED) == 1 and sum(compiles) < 0.2 * run_compile, (compiles, run_compile)
    events = results.events.to_pandas()
    frontier = events[(events.metric == "t_first") & (events.actor == "frontier")]
    assert np.array_equal(frontier.p_reached.to_numpy(), np.mean(~np.isnan(out.t_first[:, 0, :]), axis=0))


def test_sensitivity_recovers_the_only_driver():
    """The frontier's date is a decreasing function of its budget alone, and the follower's
    growth (also uncertain) cannot move it. So the budget's statistics are those of a
    monotone function (computed here by scipy and by direct binning from the same
    trajectories: float32 dates tie, so not exactly -1 and 1 - 1/B**2); the growth's are
    those of an input with no effect: rank correlation about N(0, 1/(n-1)), corrected share
    about 0 with sd sqrt(2(B-1))/(n-1)."""
    s = mcengine.parse_scenario(
        scenario_toml(
            actors=[
                {"name": "frontier", "budget": {"lognormal": [1e8, 1e10]}, "growth": 0.3},
                {"name": "b", "budget": 1e8, "growth": {"normal": [0.1, 0.5]}},
            ],
            thresholds=[
                {"name": "1e28", "flop": 1e28, "kind": "effective"},
                {"name": "1e50", "flop": 1e50, "kind": "effective"},
            ],
        )
    )
    n, bins, k = 4000, 20, 5.0
    table = sensitivity.sensitivity(s, trajectories=n, seed=0, bins=bins)
    rows = {(r["output"], r["threshold"], r["input"]): r for r in table.to_pylist()}
    out = mcengine.sample_trajectories(s, trajectories=n, seed=0)
    x, y = out.inputs[:, list(engine.build(s)[0].inputs).index("actors.frontier.budget")], out.t_first[:, 0, 0]
    order = np.argsort(x)
    assert np.all(np.diff(y[order]) <= 0)  # a function of the budget alone
    ry = stats.rankdata(y)
    between = sum(len(b) * (ry[b].mean() - ry.mean()) ** 2 for b in np.array_split(order, bins)) / n
    raw = between / ry.var()
    budget = rows[("t_first", "1e28", "actors.frontier.budget")]
    assert budget["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-9)
    assert budget["variance_share"] == pytest.approx(raw - (bins - 1) / (n - 1) * (1 - raw), abs=1e-9)
    growth = rows[("t_first", "1e28", "actors.b.growth")]
    assert abs(growth["spearman"]) < k / math.sqrt(n - 1)
    no_effect = k * math.sqrt(2 * (bins - 1)) / (n - 1)
    assert abs(growth["variance_share"]) < no_effect
    assert rows[("lead_time", "1e28", "actors.b.growth")]["variance_share"] > no_effect  # it drives b's own lead
    never = rows[("t_first", "1e50", "actors.frontier.budget")]  # all censored: explicit, not invented
    assert never["p_reached"] == 0 and never["spearman"] is None and never["variance_share"] is None


def test_keep_trajectories_streams_rows_equal_to_the_samples(tmp_path):
    s = mcengine.load_scenario(PEER, SHORT[1:])
    res = mcengine.run(s, trajectories=2500, seed=5, chunk_size=1000, keep_trajectories=tmp_path)
    folder = res.write(tmp_path / "out")
    f = pq.ParquetFile(folder / "trajectories.parquet")
    assert f.metadata.num_rows == 2500 and f.metadata.num_row_groups == 3  # one per chunk
    t = f.read()
    assert t.column("trajectory").to_pylist() == list(range(2500))
    samples = mcengine.sample_trajectories(s, 2500, seed=5)
    got = np.array(t.column("t_first:follower:1e30").to_pylist(), dtype=float)
    expected = samples.t_first[:, 1, 3].astype(np.float64) + s.start
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=0, atol=1e-9)
    assert "actors.frontier.budget" in t.column_names and "hardware.rate" in t.column_names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the scratch file was moved in


def test_summary_json(tmp_path, capsys):
    out = tmp_path / "r"
    assert exit_code(["run", str(PEER), *SHORT, "-n", "300", "-q", "--out", str(out)]) == 0
    capsys.readouterr()
    assert exit_code(["summary", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["scenario"] == "peer" and len(d["thresholds"]) == 8
    assert set(d["thresholds"][0]["lead_time"]) == {"follower", "open_weights", "restricted", "academic"}


def test_progress_bar_on_a_terminal_not_in_a_pipe(tmp_path):
    args = ["mcengine", "run", str(PEER), *SHORT, "-n", "20000", "--chunk-size", "2000"]
    env = {**os.environ, "MCENGINE_CACHE": "0", "COLUMNS": "120"}
    piped = subprocess.run(args + ["--out", str(tmp_path / "a")], capture_output=True, text=True, env=env)
    assert piped.returncode == 0 and "sampling" not in piped.stderr and "traj/s" not in piped.stderr
    master, slave = pty.openpty()  # stdout and stderr on a pseudo-terminal
    proc = subprocess.Popen(args + ["--out", str(tmp_path / "b")], stdout=slave, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the run ended
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=300) == 0
    os.close(master)
    text = seen.decode(errors="replace")
    assert "sampling" in text and "traj/s" in text and "left" in text
    # while the kernel compiles the bar says so, not "sampling 0/20,000"
    assert "compiling" in text and text.index("compiling") < text.index("sampling")
    assert not re.search(r"sampling[^\r\n]* 0/20000", text)


def test_backtest_command_on_the_historical_scenario_runs(capsys):
    data = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "epoch_models_to_2019.csv")
    if not os.path.exists(data) or "historical-2020" not in mcengine.builtin_names():
        pytest.skip("needs ../shared/data and the historical-2020 scenario")
    assert exit_code(["backtest", "historical-2020", "--observed", data, "--as-of", "2019-12-31", "-n", "500"]) == 0
    assert "nothing to score yet" in capsys.readouterr().out


REGIMES = scenario_toml(
    actors=[
        {"name": "frontier", "budget": {"lognormal": [1e8, 1e10]}, "growth": 0.3},
        {"name": "b", "budget": 1e8, "growth": 0.2},
    ],
    thresholds=[
        {"name": "e29", "flop": 1e29, "kind": "effective"},
        {"name": "e27", "flop": 1e27, "kind": "effective"},
        {"name": "e30", "flop": 1e30, "kind": "effective"},
        {"name": "e24", "flop": 1e24, "kind": "effective"},
    ],
    access={"budgets": [1e6, 1e8]},
    regimes=[
        {"name": "fast", "weight": 0.5, "set": {"algorithms.rate": 0.8}},
        {"name": "slow", "weight": 0.5, "set": {"algorithms.rate": 0.2}},
    ],
)


@pytest.fixture(scope="module")
def regime_results(tmp_path_factory):
    res = mcengine.run(mcengine.parse_scenario(REGIMES), trajectories=400, seed=3)
    return mcengine.read_results(res.write(tmp_path_factory.mktemp("r") / "out"))


def test_results_repr_is_short_and_html_is_a_table(regime_results):
    text = repr(regime_results)
    assert len(text) < 400 and "scenario='test'" in text and "trajectories=400" in text and "seed=3" in text
    assert "thresholds=[e29, e27, e30, e24]" in text and "regimes=[fast, slow]" in text and "events (" in text
    page = regime_results._repr_html_()
    assert (
        page.startswith("<table>") and page.endswith("</table>") and "e29, e27, e30, e24" in page and len(page) < 2000
    )


def test_tidy_tables_in_scenario_order_pooled_or_per_regime(regime_results):
    r = regime_results
    pd = pytest.importorskip("pandas")
    f = r.frontier_dates()
    assert list(f.threshold) == ["e29", "e27", "e30", "e24"] and f.threshold.cat.ordered
    assert list(f.columns) == ["threshold", "threshold_flop", "threshold_kind", "p5", "p50", "p95", "p_reached"]
    ev = r.events.to_pylist()
    pooled = {x["threshold"]: x for x in ev if (x["regime"], x["metric"], x["actor"]) == (None, "t_first", "frontier")}
    assert f.p50.tolist() == [pooled[t]["p50"] for t in ("e29", "e27", "e30", "e24")]
    fast, slow = r.frontier_dates(regime="fast"), r.frontier_dates(regime="slow")
    assert (fast.p50[:3] < slow.p50[:3]).all()  # faster algorithms: earlier dates (e24: at the start in both)
    assert sorted(f.sort_values("threshold").threshold) == sorted(f.threshold)  # sorts by the scenario's order
    leads = r.lead_times()
    assert list(leads.actor.unique()) == ["b"] and list(leads.threshold) == ["e29", "e27", "e30", "e24"]
    d = r.diffusion_dates(regime="slow")
    assert list(zip(d.budget_usd, d.threshold)) == [(b, t) for b in (1e6, 1e8) for t in ("e29", "e27", "e30", "e24")]
    c = r.counts_by_year()
    assert {"threshold", "year", "p50", "p_at_least_1"} <= set(c.columns) and c.threshold.cat.ordered
    assert isinstance(c, pd.DataFrame) and list(c.threshold.unique()) == ["e29", "e27", "e30", "e24"]
    with pytest.raises(ValueError, match="unknown regime 'x'.*fast, slow"):
        r.frontier_dates(regime="x")
    with pytest.raises(ValueError, match="no counts"):
        mcengine.Results(r.events, r.access, r.paths, r.metadata).counts_by_year()


def test_tidy_tables_without_pandas_say_what_to_install(regime_results, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"Results.lead_times\(\) returns a pandas DataFrame and needs pandas"):
        regime_results.lead_times()


def test_reading_results_needs_no_jax(regime_results):
    code = (
        "import sys, mcengine; r = mcengine.read_results(sys.argv[1]); repr(r); r._repr_html_(); "
        "r.frontier_dates(); r.counts_by_year(); print('jax' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(regime_results.folder)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_example_notebook_runs(tmp_path):
    """examples/analysis.ipynb runs from top to bottom in a fresh kernel (nbclient)."""
    nbformat = pytest.importorskip("nbformat", reason="needs the test extra: pip install -e '.[test]'")
    nbclient = pytest.importorskip("nbclient", reason="needs the test extra: pip install -e '.[test]'")
    pytest.importorskip("ipykernel", reason="needs the test extra: pip install -e '.[test]'")
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "analysis.ipynb")
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = "\n".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "Results(scenario='baseline', trajectories=2,000" in shown and "p_reached" in shown


def test_percentages_never_round_to_certainty():
    assert [report.pct(x) for x in (1.0, 0.99995, 0.9991, 0.999, 0.5, 0.0004, 0.0, None)] == [
        "100%",
        ">99.9%",
        ">99.9%",
        "99.9%",
        "50.0%",
        "<0.1%",
        "0%",
        "—",
    ]


def test_summary_has_diffusion_regimes_and_thresholds_reached_at_start(regime_results):
    d = report.summary_data(regime_results)
    text = report.summary_text(regime_results, width=160)
    e24 = next(t for t in d["thresholds"] if t["threshold"] == "e24")
    assert e24["frontier_date"]["reached_at_start"] and "reached at start" in text
    assert not any(t["frontier_date"]["reached_at_start"] for t in d["thresholds"] if t["threshold"] != "e24")
    assert e24["lead_time"]["b"]["reached_at_start"]  # b's budget reaches 1e24 at the start too
    assert "Median diffusion date" in text and "$1,000,000" in text and "$100,000,000" in text
    assert [a["budget_usd"] for a in d["diffusion"]] == [1e6, 1e8]
    assert list(d["diffusion"][0]["dates"]) == ["e29", "e27", "e30", "e24"]
    assert [g["regime"] for g in d["regimes"]] == ["fast", "slow"] and "per regime" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    for g in d["regimes"]:  # the text shows what the JSON says
        x = g["frontier_date"]["e29"]
        assert f"{x['p50']:.2f}" in lines[g["regime"]]
        assert "at start" in lines[g["regime"]]  # e24
    for a in d["diffusion"]:
        x = a["dates"]["e29"]
        assert (f"{x['p50']:.2f}" if x["p50"] is not None else "—") in lines[f"${a['budget_usd']:,.0f}"]
    frontier = text.split("Median lead time")[0].splitlines()
    assert "reached at start" in next(line for line in frontier if line.strip().startswith("e24"))
    assert "100.0%" not in text
