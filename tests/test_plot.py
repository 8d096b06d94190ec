"""Figures (mcengine.plot): each function on a small real run, file output, missing data."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

pytest.importorskip("matplotlib")

import mcengine  # noqa: E402
from mcengine import plot  # noqa: E402

from .conftest import PEER, scenario_toml  # noqa: E402

SMALL = scenario_toml(
    actors=[
        {"name": "frontier", "budget": {"lognormal": [1e8, 1e9]}, "growth": {"normal": [0.2, 0.4]}, "volatility": 0.1},
        {"name": "follower", "budget": {"lognormal": [1e7, 1e8]}, "growth": 0.3, "algo_lag": 0.5},
    ],
    groups=[{"name": "labs", "count": 10, "ranks": [1, 3], "budget": {"lognormal": [1e6, 1e8]}, "growth": 0.3}],
    thresholds=[
        {"name": "1e28", "flop": 1e28, "kind": "effective"},
        {"name": "reporting", "flop": 1e26, "kind": "physical"},
        {"name": "1e40", "flop": 1e40, "kind": "effective"},
    ],  # mostly censored: null quantiles
    access={"budgets": [1e6, 1e8]},
    regimes=[
        {"name": "fast", "weight": 0.5, "set": {"hardware.rate": 0.2}},
        {"name": "slow", "weight": 0.5, "set": {"hardware.rate": 0.05}},
    ],
)
ROWS = ["frontier", "follower", "labs #1", "labs #3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    results = mcengine.run(mcengine.parse_scenario(SMALL, "small.toml"), trajectories=500, seed=3)
    folder = tmp_path_factory.mktemp("plot") / "small"
    results.write(folder)
    return results, folder


def medians(fig):
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == "median"]


def texts(fig):
    """Every piece of text in the figure."""
    from matplotlib.text import Text

    return " ".join(" ".join(t.get_text().split()) for t in fig.findobj(Text))


def test_fan_chart_one_median_per_actor_and_rank(run):
    results, _ = run
    fig = plot.fan_chart(results)
    assert sorted(line.get_label() for line in medians(fig)) == sorted(["frontier", "follower", "#1", "#3"])
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title(loc="left") for ax in shown] == ["frontier", "follower", "labs (group)"]
    assert all("FLOP" in ax.get_ylabel() for ax in shown if ax.get_ylabel())
    fig.canvas.draw()
    assert "10^{" in " ".join(t.get_text() for t in shown[0].get_yticklabels())
    assert shown[0].get_xlim() == (2025.0, 2045.0)
    t = texts(fig)
    assert "500 trajectories" in t and "test: effective training compute" in t
    assert "1e28" in t and "reporting" not in t  # only effective thresholds
    regime = plot.fan_chart(results, regime="fast")
    assert len(medians(regime)) == len(ROWS) and "regime fast" in texts(regime)
    with pytest.raises(ValueError, match="unknown regime 'typo'; valid regimes: fast, slow"):
        plot.fan_chart(results, regime="typo")


def test_threshold_cdf_ends_at_share_reached(run):
    results, folder = run
    fig = plot.threshold_cdf(folder, "1e40")  # a folder path works too
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if line.get_gid() == "cdf"]
    assert [line.get_label().split(" \u2014 ")[0] for line in curves] == ROWS
    assert all("not by 2045: " in line.get_label() for line in curves)
    ev = [
        r
        for r in results.events.to_pylist()
        if r["metric"] == "t_first" and r["threshold"] == "1e40" and r["regime"] is None and r["actor"] == "frontier"
    ]
    reached = ev[0]["p_reached"]
    dots = [line for line in ax.get_lines() if list(line.get_xdata()) == [2045.0] and line.get_marker() == "o"]
    assert any(abs(line.get_ydata()[0] - reached) < 1e-12 for line in dots)
    assert ax.get_ylabel().startswith("Cumulative share") and ax.get_xlabel() == "Year"
    assert "linear interpolation" in texts(fig)
    with pytest.raises(ValueError, match=r"unknown threshold 'nope'; valid thresholds: 1e28, reporting, 1e40"):
        plot.threshold_cdf(results, "nope")


def test_lead_times_panels_and_rows(run):
    results, _ = run
    fig = plot.lead_times(results)
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title(loc="left") for ax in shown] == ["1e28", "reporting (physical, 1e26)", "1e40"]
    assert [t.get_text() for t in shown[0].get_yticklabels()] == ROWS[1:]
    assert "years" in shown[-1].get_xlabel()
    assert 0 < len(medians(fig)) <= 3 * 3
    assert "reached" in texts(fig)
    one = plot.lead_times(results, "1e28")
    assert len([ax for ax in one.axes if ax.axison]) == 1 and len(medians(one)) == 3


def test_access_and_performance(run):
    results, _ = run
    fig = plot.access_and_performance(results)
    left, right = fig.axes
    assert len(medians_of(left)) == 3 and "US$" in left.get_ylabel()
    assert len(medians_of(right)) == 2 and "FLOP" in right.get_ylabel()
    fig.canvas.draw()
    assert any(t.get_text().startswith(r"\$$10^") for t in left.get_yticklabels())


def medians_of(ax):
    return [line for line in ax.get_lines() if line.get_gid() == "median"]


@pytest.mark.parametrize("ext", [".png", ".svg", ".pdf"])
def test_save_all_writes_four_files(run, tmp_path, ext):
    results, _ = run
    paths = plot.save_all(results, tmp_path / f"fig{ext}", threshold="1e28")
    assert [p.name for p in paths] == [f"fig-{n}{ext}" for n in ("fan", "cdf", "lead", "access")]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_plot_command_defaults_and_errors(run, tmp_path):
    _, folder = run
    paths = plot.plot_command(folder)
    assert [p.name for p in paths] == [f"plots-{n}.png" for n in ("fan", "cdf", "lead", "access")]
    assert all(p.parent == folder and p.stat().st_size > 0 for p in paths)
    with pytest.raises(ValueError, match=r"unknown threshold 'x'; valid thresholds: 1e28, reporting, 1e40$"):
        plot.plot_command(folder, tmp_path / "a.png", threshold="x")
    with pytest.raises(ValueError, match=r"unsupported plot file type '\.jpg'; use \.png, \.svg, \.pdf$"):
        plot.plot_command(folder, tmp_path / "a.jpg")
    assert not list(tmp_path.iterdir())


def test_missing_data_is_said_not_fatal(run, tmp_path):
    """No access budgets, no lead rows, no capability series, every quantile null."""
    results, _ = run
    ev = results.events.filter(pc.field("metric") != "lead_time")
    nulls = {c: pa.nulls(len(ev), pa.float64()) for c in ("p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99")}
    for c, col in nulls.items():
        ev = ev.set_column(ev.schema.get_field_index(c), c, col)
    paths = results.paths.filter(~pc.starts_with(pc.field("series"), "capability_at_budget:"))
    bare = mcengine.Results(ev, results.access.slice(0, 0), paths, results.metadata)
    assert "no access budgets" in texts(plot.access_and_performance(bare))
    assert "no lead-time rows" in texts(plot.lead_times(bare))
    cdf = plot.threshold_cdf(bare, "1e28")
    assert len([line for line in cdf.axes[0].get_lines() if line.get_gid() == "cdf"]) == len(ROWS)
    written = plot.save_all(bare, tmp_path / "bare.svg")
    assert len(written) == 4 and all(p.stat().st_size > 0 for p in written)


def test_tornado_from_a_sensitivity_table(tmp_path):
    from mcengine import plot, sensitivity

    s = mcengine.load_scenario(PEER, ["scenario.horizon=2033.0"])
    table = sensitivity.sensitivity(s, trajectories=500, seed=0)
    fig = plot.tornado(table, threshold="1e28", top=5)
    ax = fig.axes[0]
    assert len(ax.patches) == 5 and "variance share" in ax.get_xlabel()
    fig.savefig(tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="valid thresholds"):
        plot.tornado(table, threshold="nope")
