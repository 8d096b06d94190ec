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
        {
            "name": "follower",
            "budget": {"lognormal": [1e7, 1e8]},
            "growth": 0.3,
            "algo_lag": 0.5,
            "releases_weights": True,
            "release_lag": 0.3,
        },
    ],
    groups=[
        {
            "name": "labs",
            "count": 10,
            "ranks": [1, 3],
            "budget": {"lognormal": [1e6, 1e8]},
            "growth": 0.3,
            "access_via": ["follower"],
        }
    ],
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


ALL = ("fan", "cdf", "lead", "access", "counts", "regimes", "channels")


def bare_of(results, counts=True, regimes=True, channels=True):
    """``results`` without its counts, regime rows or channel rows."""
    keep = lambda t: t if regimes else t.filter(pc.is_null(pc.field("regime")))  # noqa: E731
    ev = keep(results.events)
    ev = ev if channels else ev.filter(pc.is_null(pc.field("channel")))
    return mcengine.Results(
        ev, keep(results.access), keep(results.paths), results.metadata, counts=results.counts if counts else None
    )


@pytest.mark.parametrize("ext", [".svg", ".pdf"])
def test_save_all_writes_every_figure(run, tmp_path, ext):
    results, _ = run
    paths = plot.save_all(bare_of(results, False, False, False), tmp_path / f"fig{ext}", threshold="1e28")
    assert [p.name for p in paths] == [f"fig-{n}{ext}" for n in plot.FIGURES]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_optional_figures_exactly_when_their_data_exist_and_never_stale(run, tmp_path):
    results, _ = run
    out = tmp_path / "fig.png"
    written = plot.save_all(results, out)
    assert [p.name for p in written] == [f"fig-{n}.png" for n in ALL]
    assert all(p.stat().st_size > 1000 for p in written)
    for flag in ("counts", "regimes", "channels"):
        assert plot.drawn_figures(bare_of(results, **{flag: False})) == [n for n in ALL if n != flag]
    bare = bare_of(results, False, False, False)
    written = plot.save_all(bare, out)
    assert [p.name for p in written] == [f"fig-{n}.png" for n in plot.FIGURES]
    assert sorted(tmp_path.iterdir()) == sorted(written)  # the earlier optional figures are gone
    assert plot.figure_paths(out) == [tmp_path / f"fig-{n}.png" for n in ALL]  # what check_figures checks
    for f, what in [
        (plot.counts_fan, "no counts"),
        (plot.regime_comparison, "no regimes"),
        (plot.channel_dates, "no channels"),
    ]:
        with pytest.raises(ValueError, match=what):
            f(bare)


def test_plot_command_defaults_and_errors(run, tmp_path):
    _, folder = run
    paths = plot.plot_command(folder)
    assert [p.name for p in paths] == [f"plots-{n}.png" for n in ALL]
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
    written = plot.save_all(bare, tmp_path / "bare.svg")  # no counts in these results
    assert len(written) == len(ALL) - 1 and all(p.stat().st_size > 0 for p in written)


def test_tornado_for_a_chosen_output_without_inputs_of_no_effect(tmp_path):
    from mcengine import sensitivity

    s = mcengine.load_scenario(PEER, ["scenario.horizon=2033.0"])
    table = sensitivity.sensitivity(s, trajectories=500, seed=0)
    fig = plot.tornado(table, threshold="1e28", top=2)
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and "variance share" in ax.get_xlabel()
    fig.savefig(tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000
    # every input left out has an effect within noise of none: here the other actors' own
    # numbers, which cannot move the frontier's date
    fig = plot.tornado(table, "t_first", "frontier", "1e28")
    shown = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    rows = [r for r in table.to_pylist() if r["output"] == "t_first" and r["threshold"] == "1e28"]
    dropped = [r for r in rows if r["input"] not in shown]
    assert "actors.frontier.budget" in shown and dropped
    assert all(sensitivity.no_effect(r["variance_share"], r["spearman"], 500, 20) for r in dropped)
    assert {r["input"] for r in rows if r["input"].startswith("actors.") and ".frontier." not in r["input"]} <= {
        r["input"] for r in dropped
    }
    assert f"{len(dropped)} of {len(rows)} inputs left out" in texts(fig)
    lead = plot.tornado(table, "lead_time", "academic", "1e29")
    assert "lead_time of academic at 1e29" in texts(lead)
    for args, message in [
        (("lead_times",), r"^unknown output 'lead_times'; valid outputs: t_first, lead_time$"),
        (("lead_time", "nobody"), r"^unknown actor 'nobody' for lead_time; valid actors: follower, "),
        (("t_first", None, "nope"), r"^unknown threshold 'nope'; valid thresholds: 1e27, "),
    ]:
        with pytest.raises(ValueError, match=message):
            plot.tornado(table, *args)
    keys = sensitivity.output_keys(s)
    assert sorted(keys) == sorted({(r["output"], r["actor"], r["rank"], r["threshold"]) for r in table.to_pylist()})


def pooled(results, metric, threshold):
    return [
        r
        for r in results.events.to_pylist()
        if r["metric"] == metric and r["threshold"] == threshold and r["regime"] is None and r["channel"] is None
    ]


def test_time_axes_frame_the_dates_not_the_horizon(run):
    results, _ = run
    p95 = [r["p95"] for r in pooled(results, "t_first", "reporting")]
    assert all(x is not None for x in p95)
    ax = plot.threshold_cdf(results, "reporting").axes[0]
    lo, hi = ax.get_xlim()
    assert lo <= 2025.0 and max(p95) <= hi <= 2045.0 - 5  # every p95 shown, well inside the horizon
    assert "Time axis ends at" in texts(ax.figure)
    ax = plot.threshold_cdf(results, "1e40").axes[0]  # mostly censored: to the horizon, with the bars
    assert ax.get_xlim()[1] >= 2045.0 and "Bar above a dot" in texts(ax.figure)


def test_fan_y_range_frames_the_thresholds(run):
    results, _ = run
    fig = plot.fan_chart(results)
    ax = [a for a in fig.axes if a.axison][0]
    lo, hi = ax.get_ylim()
    drawn = {round(line.get_ydata()[0], 6) for line in ax.get_lines() if list(line.get_xdata()) == [0, 1]}
    assert drawn == {28.0, 40.0} and lo < 28.0 and hi > 40.0  # every effective threshold in view
    end = ax.get_xlim()[1]
    series = [r for r in results.paths.to_pylist() if r["regime"] is None and r["series"].startswith("effective:")]
    assert lo <= min(r["p50"] for r in series if r["year"] <= end)  # medians above the bottom
    assert hi - lo < max(r["p95"] for r in series) - min(r["p5"] for r in series)  # not the whole band


def test_access_dollar_axis_frames_the_budgets(run):
    results, _ = run
    left, _ = plot.access_and_performance(results).axes
    lo, hi = left.get_ylim()
    assert lo <= 6.0 and hi >= 8.0 and lo >= 6.0 - 3  # $1M and $100M, not $1e-10


def test_overlapping_lines_stay_visible(run):
    results, _ = run
    ev = results.events.to_pylist()
    rank1 = {
        (r["regime"], r["threshold"], r["metric"], r["channel"]): r
        for r in ev
        if r["actor"] == "labs" and r["rank"] == 1
    }
    copy = [
        dict(rank1[(r["regime"], r["threshold"], r["metric"], r["channel"])], rank=3)
        if r["actor"] == "labs" and r["rank"] == 3
        else r
        for r in ev
    ]
    same = mcengine.Results(
        pa.Table.from_pylist(copy, results.events.schema), results.access, results.paths, results.metadata
    )
    curves = {
        line.get_label(): line
        for line in plot.threshold_cdf(same, "1e28").axes[0].get_lines()
        if line.get_gid() == "cdf"
    }
    over = [k for k in curves if "(overlaps labs #1)" in k]
    assert len(over) == 1 and over[0].startswith("labs #3")
    assert curves[over[0]].get_linestyle() != "-" and curves[over[0]].get_marker() != "o"
    assert all("overlaps" not in k for k in curves if not k.startswith("labs #3"))


def test_regime_channel_and_count_figures(run):
    results, _ = run
    fig = plot.regime_comparison(results, "1e28")
    left, right = fig.axes[:2]
    assert [line.get_label().split(" \u2014 ")[0] for line in left.get_lines() if line.get_gid() == "cdf"] == [
        "pooled",
        "fast",
        "slow",
    ]
    assert [line.get_label() for line in medians_of(right)] == ["fast", "slow"]
    fig = plot.channel_dates(results, "1e28")
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title(loc="left") for ax in panels] == ["labs #1", "labs #3"]  # the rows with channels
    for ax in panels:
        labels = [line.get_label() for line in ax.get_lines() if line.get_gid() == "cdf"]
        assert labels[0].startswith("either channel") and sorted(labels[1:]) == ["released", "trained"]
    fig = plot.counts_fan(results)
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title(loc="left") for ax in panels] == ["1e28", "reporting (physical, 1e26)", "1e40"]
    assert all(len(medians_of(ax)) >= 1 for ax in panels)
