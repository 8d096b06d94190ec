"""Backtesting (mcengine.backtest): observed k-th-organisation dates from a models file,
PIT and interval flags against a closed-form predictive CDF, the censored (threshold-
weighted) CRPS against a direct integration over the samples, the "nothing to score"
answer, and clear errors for malformed files.

Statistical checks use k = 5 Monte Carlo standard errors of the sampled CDF; the exact
checks compare with numbers computed here from the very same samples."""

from __future__ import annotations

import datetime
import math
from statistics import NormalDist

import numpy as np
import pyarrow.parquet as pq
import pytest

import mcengine
from mcengine import backtest as bt
from mcengine import engine, io

from .conftest import ROOT, scenario_toml

K = 5.0
N = 2000
SEED = 3
START = 2020.0
HORIZON = 2030.0
RATE_MEAN, RATE_SD = 0.2, 0.05  # hardware OOM/yr: the only uncertain number
GROWTH = 0.3  # budget OOM/yr, fixed
H0 = 18.0  # log10 FLOP/$ at the start
HEADER = "model,organization,publication_date,training_compute_flop,open_weights,base_model"

# Physical thresholds: P = budget + hardware. Frontier budget 1e9, every group member 1e8
# (a fixed budget: all ranks alike), so d = X - B0 - H0 OOM are crossed at
# tau = d / (GROWTH + r), r ~ N(RATE_MEAN, RATE_SD): P(T <= start + tau) = P(r >= d / tau - GROWTH).
SCENARIO = scenario_toml(
    scenario={"name": "bt", "start": START, "horizon": HORIZON, "steps_per_year": 12},
    hardware={"initial": 1e18, "rate": {"normal": {"mean": RATE_MEAN, "sd": RATE_SD}}, "volatility": 0.0},
    algorithms={"initial": 1.0, "rate": 0.4},
    actors=[{"name": "frontier", "budget": 1e9, "growth": GROWTH}],
    thresholds=[{"name": "p1e28", "flop": 1e28, "kind": "physical"},
                {"name": "e1e30", "flop": 1e30, "kind": "effective"}],
    groups=[{"name": "labs", "count": 5, "ranks": [1, 2, 3], "budget": 1e8, "growth": GROWTH}],
)
B0 = {"frontier": 9.0, "labs": 8.0}


@pytest.fixture(scope="module")
def scenario():
    return mcengine.parse_scenario(SCENARIO, source="bt.toml")


@pytest.fixture(scope="module")
def samples(scenario):
    """The trajectories backtest() samples itself (same scenario, n and seed)."""
    return np.asarray(mcengine.sample_trajectories(scenario, N, SEED).t_first, np.float64)


def write_csv(tmp_path, lines, name="observed.csv", header=HEADER):
    p = tmp_path / name
    p.write_text("\n".join([header] + list(lines)) + "\n")
    return p


def closed_form_cdf(actor, year, flop=1e28):
    d = math.log10(flop) - B0[actor] - H0
    tau = year - START
    return 1.0 - NormalDist(RATE_MEAN, RATE_SD).cdf(d / tau - GROWTH)


def date_at(actor, p, flop=1e28):
    """The day on which the closed-form CDF of ``actor`` reaches about ``p``."""
    d = math.log10(flop) - B0[actor] - H0
    tau = d / (GROWTH + RATE_MEAN + RATE_SD * NormalDist().inv_cdf(1 - p))
    first = datetime.date(2020, 1, 1)
    return first + datetime.timedelta(days=round(tau * 365.25))


def decimal(d: datetime.date) -> float:
    days = (datetime.date(d.year + 1, 1, 1) - datetime.date(d.year, 1, 1)).days
    return d.year + (d - datetime.date(d.year, 1, 1)).days / days


def empirical(t, y_tau):
    """Share of all samples (censored = later than everything) with t_first <= y_tau."""
    return float(np.mean(np.where(np.isnan(t), np.inf, t) <= y_tau))


def tw_crps_integral(t, y_tau, c_tau):
    """Integral over [0, c] of (F(s) - 1{y <= s})^2 ds for the empirical CDF F of the
    samples ``t`` (years since start; NaN = censored), summed interval by interval."""
    x = np.sort(np.where(np.isnan(t), np.inf, t))
    knots = np.unique(np.concatenate([[0.0, c_tau], x[x < c_tau], [y_tau] if y_tau < c_tau else []]))
    a, b = knots[:-1], knots[1:]
    f = np.searchsorted(x, a, side="right") / x.size  # F is constant on [a, b)
    ind = (a >= y_tau).astype(float)
    return float(np.sum((f - ind) ** 2 * (b - a)))


def rows_by(table):
    return {(r["actor"], r["rank"], r["threshold"]): r for r in table.to_pylist()}


# -- (1) observed events: k-th distinct organisation ---------------------------------------------


def test_kth_distinct_organisation_dates(tmp_path):
    """Co-developers each count on the joint model's date; a fine-tune with huge compute,
    a model with unknown compute, a model below the threshold and one after as_of are
    ignored; an organisation publishing twice (spelled differently) counts once."""
    path = write_csv(tmp_path, [
        "Small,Zeta,2020-01-10,1e20,no,",
        "Unknown,Epsilon,2020-02-01,,no,",
        "A,Alpha,2020-03-01,2e23,yes,",
        "Tuned,Delta,2020-04-01,1e30,no,A",
        'B,"Beta , Gamma",2020-05-01,3e23,no,',
        "A2, alpha ,2020-06-01,5e23,no,",
        'Joint,"Beta,Theta,Theta",2020-07-01,4e23,no,',
        "Late,Eta,2021-03-01,9e23,no,",
        "Vague,Iota,2020-09,6e23,no,",
        "Vaguer,Kappa,2020,1e24,no,",
    ])
    as_of = datetime.date(2020, 12, 31)
    events = bt.observed_events(path, 1e23, as_of)
    got = [(e.date, e.organization, e.model) for e in events]
    assert got == [
        (datetime.date(2020, 3, 1), "Alpha", "A"),
        (datetime.date(2020, 5, 1), "Beta", "B"),
        (datetime.date(2020, 5, 1), "Gamma", "B"),
        (datetime.date(2020, 7, 1), "Theta", "Joint"),  # Beta again: already counted
        (datetime.date(2020, 7, 2), "Kappa", "Vaguer"),  # YYYY: the middle of the year
        (datetime.date(2020, 9, 16), "Iota", "Vague"),  # YYYY-MM: the middle of the month
    ]
    assert [e.year for e in events] == [decimal(e.date) for e in events]
    assert events[0].year == 2020 + 60 / 366  # 2020 is a leap year
    # a higher threshold: Alpha reaches it with its second model (another spelling)
    high = bt.observed_events(path, 4.5e23, as_of)
    assert [(e.organization, e.model) for e in high] == [("Alpha", "A2"), ("Kappa", "Vaguer"), ("Iota", "Vague")]
    # as_of decides what is known
    assert [e.organization for e in bt.observed_events(path, 9e23, as_of)] == ["Kappa"]
    assert [e.organization for e in bt.observed_events(path, 9e23, datetime.date(2021, 3, 1))] == ["Kappa", "Eta"]
    obs = bt.read_observed(path)
    assert (obs.rows, obs.fine_tunes, obs.no_compute, len(obs.runs)) == (10, 1, 1, 8)
    assert obs.latest == datetime.date(2021, 3, 1)


def test_backtest_rows_statuses_and_output(tmp_path, scenario, samples):
    """Ranks map to the k-th organisation, the frontier to the first; events on or before
    the start are not scored; effective thresholds are skipped with a note; the table is
    written atomically and reads back with its provenance."""
    path = write_csv(tmp_path, [
        "Old,Old Lab,2019-06-01,2e28,no,",  # before the start: rank 1 already reached
        "A,Alpha,2022-03-01,1.5e28,no,",
        "FT,Beta,2021-01-01,1e31,no,A",  # a fine-tune: not a training run
    ])
    table = bt.backtest(scenario, path, as_of=datetime.date(2025, 6, 30), trajectories=N, seed=SEED)
    assert table.schema.names == bt.SCHEMA.names
    rows = rows_by(table)
    assert set(rows) == {("frontier", 1, "p1e28"), ("labs", 1, "p1e28"), ("labs", 2, "p1e28"), ("labs", 3, "p1e28")}
    for key in (("frontier", 1, "p1e28"), ("labs", 1, "p1e28")):
        r = rows[key]
        assert r["status"] == "before start" and r["observed_date"] == decimal(datetime.date(2019, 6, 1))
        assert r["observed_by"] == "Old Lab (Old)"
        assert r["pit"] is None and r["crps"] is None and r["inside_50"] is None and r["inside_90"] is None
    r2 = rows[("labs", 2, "p1e28")]
    assert r2["status"] == "observed" and r2["observed_date"] == decimal(datetime.date(2022, 3, 1))
    assert r2["pit"] == empirical(samples[:, 2, 0], r2["observed_date"] - START)  # rows: frontier, labs#1..3
    assert rows[("labs", 3, "p1e28")]["status"] == "not yet by 2025-06-30"
    assert all(r["n"] == N for r in rows.values())
    assert any("effective thresholds cannot be observed" in n and "e1e30" in n for n in bt.notes(table))
    text = bt.format_table(table)
    assert "labs #2" in text and "not yet by 2025-06-30" in text and "effective thresholds" in text

    out = bt.write(table, tmp_path / "results")
    assert out == tmp_path / "results" / "backtest.parquet"
    back = pq.read_table(out)
    assert back.equals(table) and bt.metadata(back)["as_of"] == "2025-06-30"
    assert bt.metadata(back)["group"] == "labs" and bt.metadata(back)["trajectories"] == N
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [".mcengine", "backtest.parquet"]  # no temporary left
    bt.write(table, tmp_path / "results")  # replaces the earlier backtest
    (tmp_path / "file").write_text("x")
    with pytest.raises(io.OutputError, match="not a folder"):
        bt.write(table, tmp_path / "file")
    # what `mcengine backtest` runs: the same table, printed and written
    text = bt.command(scenario, path, as_of="2025-06-30", trajectories=N, seed=SEED, out=tmp_path / "cmd")
    assert text.endswith(f"wrote {tmp_path / 'cmd' / 'backtest.parquet'}") and "labs #3" in text
    assert bt.read(tmp_path / "cmd").to_pylist() == table.to_pylist()


EPOCH = ROOT.parent / "shared" / "data" / "epoch_models_to_2019.csv"


@pytest.mark.skipif(not EPOCH.is_file(), reason="the shared Epoch data are not beside this checkout")
def test_reads_the_epoch_models_file():
    obs = bt.read_observed(EPOCH)
    assert obs.fine_tunes > 0 and obs.no_compute > 0 and len(obs.runs) > 100
    assert obs.latest <= datetime.date(2019, 12, 31)
    first = bt.observed_events(obs, 1e23, datetime.date(2019, 12, 31))
    assert [(e.organization, e.model) for e in first] == [("DeepMind", "AlphaStar")]


# -- (2) PIT and intervals against the closed form ------------------------------------------------


def test_pit_and_intervals_match_the_closed_form(tmp_path, scenario, samples):
    """Ranks 1-3 observed where the group's closed-form CDF is about 0.10, 0.50, 0.985:
    PIT = closed form within K standard errors and = the samples' CDF exactly; the
    interval flags follow; CRPS = the integral of (F - 1{y <= t})^2 up to as_of."""
    targets = {1: 0.10, 2: 0.50, 3: 0.985}
    dates = {k: date_at("labs", p) for k, p in targets.items()}
    path = write_csv(tmp_path, [f"M{k},Org{k},{d.isoformat()},1e28,no," for k, d in dates.items()])
    as_of = datetime.date(2029, 12, 31)
    rows = rows_by(bt.backtest(scenario, path, as_of=as_of, group="labs", trajectories=N, seed=SEED))
    c = decimal(as_of) - START
    for actor, k, r in [("labs", k, 1 + i) for i, k in enumerate((1, 2, 3))] + [("frontier", 1, 0)]:
        row = rows[(actor, k, "p1e28")]
        y = decimal(dates[k])
        exact = closed_form_cdf(actor, y)
        assert row["status"] == "observed" and row["observed_date"] == y
        assert abs(row["pit"] - exact) <= K * math.sqrt(max(exact * (1 - exact), 1 / N) / N), (actor, k)
        assert abs(row["pit"] - empirical(samples[:, r, 0], y - START)) <= 1.0 / N
        assert row["p_by_as_of"] == empirical(samples[:, r, 0], c)
        assert row["crps"] == pytest.approx(tw_crps_integral(samples[:, r, 0], y - START, c), rel=1e-9, abs=1e-12)
        q = np.quantile(np.where(np.isnan(samples[:, r, 0]), np.inf, samples[:, r, 0]) + START,
                        [0.05, 0.5, 0.95], method="inverted_cdf")
        assert [row["predicted_p5"], row["predicted_p50"], row["predicted_p95"]] == pytest.approx(q, abs=1e-9)
        if actor == "labs":
            p = targets[k]
            assert row["inside_50"] == (0.25 <= p <= 0.75) and row["inside_90"] == (0.05 <= p <= 0.95), k
    # the frontier (budget 10x larger) is far earlier: its PIT at the first date is ~1
    assert rows[("frontier", 1, "p1e28")]["inside_90"] is False
    # the medians in closed form: d / (GROWTH + RATE_MEAN) years after the start; the
    # sample median's standard error is 1.2533 sd(tau) / sqrt(N), sd(tau) ~ d RATE_SD / 0.5^2
    for actor, d in (("labs", 2.0), ("frontier", 1.0)):
        se = 1.2533 * d * RATE_SD / 0.25 / math.sqrt(N)
        assert abs(rows[(actor, 1, "p1e28")]["predicted_p50"] - (START + d / 0.5)) <= K * se, actor


# -- (3) censoring ----------------------------------------------------------------------------------


def test_not_yet_observed_is_scored_as_censored(tmp_path, scenario, samples):
    """Rank 3 has not happened by as_of (its organisation publishes later): no PIT, no
    date, P(by as_of) = F(c), CRPS = integral of F(t)^2 up to c, and an interval counts
    as holding it exactly when it reaches beyond as_of."""
    path = write_csv(tmp_path, [
        "A,Alpha,2023-01-15,1e28,no,",
        "B,Beta,2023-08-01,1e28,no,",
        "C,Gamma,2025-01-01,1e28,no,",  # after as_of: not yet known
    ])
    as_of = datetime.date(2024, 3, 31)
    table = bt.backtest(scenario, path, as_of=as_of, trajectories=N, seed=SEED)
    row = rows_by(table)[("labs", 3, "p1e28")]
    t = samples[:, 3, 0]
    c = decimal(as_of) - START
    f_c = empirical(t, c)
    assert row["status"] == "not yet by 2024-03-31"
    assert row["observed_date"] is None and row["pit"] is None and row["observed_by"] is None
    assert row["p_by_as_of"] == f_c
    assert 0.2 < f_c < 0.8  # the check below is not trivial
    x = np.sort(np.where(np.isnan(t), np.inf, t))
    by_hand = sum((np.searchsorted(x, a, side="right") / N) ** 2 * (b - a)
                  for a, b in zip(np.r_[0.0, x[x < c]], np.r_[x[x < c], c]))
    assert row["crps"] == pytest.approx(by_hand, rel=1e-9)
    # not known to be inside: never counted as inside (nor outside); open_* says whether the
    # interval still reaches beyond as_of (false: a known miss)
    assert row["inside_50"] is None and row["inside_90"] is None
    assert row["open_50"] == (f_c < 0.75) and row["open_90"] == (f_c < 0.95)
    # the same censored formula whatever the reason: before the event, rank 1 scores alike
    early = rows_by(bt.backtest(scenario, path, as_of=datetime.date(2022, 12, 31), trajectories=N, seed=SEED))
    r1 = early[("labs", 1, "p1e28")]
    c1 = decimal(datetime.date(2022, 12, 31)) - START
    assert r1["status"] == "not yet by 2022-12-31"
    assert r1["crps"] == pytest.approx(tw_crps_integral(samples[:, 1, 0], math.inf, c1), rel=1e-9)


def test_score_handles_predicted_censoring_and_the_horizon():
    """Trajectories censored by the horizon are later than it: they count in every
    denominator, push quantiles to null, and enter the CRPS at c."""
    t = np.array([1.0, 2.0, np.nan, np.nan])  # half never reach it by the horizon (start 0, horizon 3)
    r = bt.score(t, 1.5, 0.0, 3.0, 10.0)  # as_of after the horizon: c = 3
    assert r["status"] == "observed" and r["pit"] == 0.25 and r["p_by_as_of"] == 0.5
    assert r["predicted_p5"] == 1.0 and r["predicted_p50"] == 2.0 and r["predicted_p95"] is None
    assert r["inside_50"] is True and r["inside_90"] is True  # both [1, inf)
    assert r["crps"] == pytest.approx(tw_crps_integral(t, 1.5, 3.0))
    # observed after the horizon: censored at the horizon
    late = bt.score(t, 5.0, 0.0, 3.0, 10.0)
    assert late["status"] == "censored" and late["pit"] is None
    assert late["crps"] == pytest.approx(0.25**2 * 1 + 0.5**2 * 1)  # F = 1/4 on [1, 2), 1/2 on [2, 3)
    # a forecast that never reaches it, scored against "not yet": perfect
    never = bt.score(np.full(8, np.nan), None, 0.0, 3.0, 2.0)
    assert never["crps"] == 0.0 and never["p_by_as_of"] == 0.0 and never["open_90"] is True
    assert never["inside_90"] is None and r["open_90"] is None


# -- (4) nothing to score ---------------------------------------------------------------------------


def test_as_of_before_start_has_nothing_to_score(tmp_path, scenario, monkeypatch):
    path = write_csv(tmp_path, ["A,Alpha,2019-03-01,1e28,no,"])

    def no_sampling(*args, **kwargs):
        raise AssertionError("nothing to score, so nothing should be sampled")

    monkeypatch.setattr(engine, "sample_trajectories", no_sampling)
    table = bt.backtest(scenario, path, as_of=datetime.date(2019, 12, 31), trajectories=N)
    assert table.num_rows == 0 and table.schema.names == bt.SCHEMA.names
    message = "nothing to score yet: as-of 2019-12-31 is before the scenario start 2020.0"
    assert bt.notes(table)[-1] == message
    assert message in bt.format_table(table)
    # the default as_of is the file's latest date: here also before the start
    assert bt.notes(bt.backtest(scenario, path, trajectories=N))[-1] == (
        "nothing to score yet: as-of 2019-03-01 is before the scenario start 2020.0")
    # command(): no file is written for an empty backtest
    text = bt.command(scenario, path, as_of="2019-12-31", out=tmp_path / "out")
    assert message in text and not (tmp_path / "out").exists()


# -- (5) malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize("header,lines,match", [
    ("model,organization,publication_date,open_weights,base_model", ["A,Alpha,2020-01-01,no,"],
     r"observed\.csv: missing column training_compute_flop"),
    ("model,organization,training_compute_flop", ["A,Alpha,1e20"],
     r"observed\.csv: missing columns publication_date, base_model"),
    (HEADER, ["A,Alpha,2020-01-01,1e20,no,", "B,Beta,2020-13-01,1e20,no,"],
     r"observed\.csv: line 3 \(model 'B'\): column publication_date: '2020-13-01' is not a date"),
    (HEADER, ["A,Alpha,01/02/2020,1e20,no,"],
     r"observed\.csv: line 2 \(model 'A'\): column publication_date: '01/02/2020' is not a date; expected "
     r"YYYY-MM-DD, YYYY-MM or YYYY"),
    (HEADER, ["A,Alpha,2020-02-30,1e20,no,"], r"line 2 .*publication_date: '2020-02-30' is not a date"),
    (HEADER, ["A,Alpha,2020-01-01,lots,no,"], r"line 2 \(model 'A'\): column training_compute_flop: 'lots' is not"),
    (HEADER, ["A,Alpha,2020-01-01,-5,no,"], r"line 2 .*training_compute_flop: must be a positive"),
    (HEADER, ["A,Alpha,,1e20,no,"], r"line 2 .*publication_date: blank"),
    (HEADER, ["A,Alpha,2020-01-01,1e20,no"], r"line 2: 5 fields, but the header has 6"),
    ("", [], r"observed\.csv: empty file"),
])
def test_malformed_files_name_the_file_line_and_column(tmp_path, header, lines, match):
    path = write_csv(tmp_path, lines, header=header)
    with pytest.raises(ValueError, match=match):
        bt.read_observed(path)


def test_bad_arguments_are_clear(tmp_path, scenario):
    path = write_csv(tmp_path, ["A,Alpha,2021-01-01,1e28,no,"])
    with pytest.raises(ValueError, match="nowhere.csv: no such file"):
        bt.backtest(scenario, tmp_path / "nowhere.csv", as_of=datetime.date(2021, 1, 1))
    with pytest.raises(ValueError, match=r"group 'big' is not in the scenario \(groups: labs\)"):
        bt.backtest(scenario, path, group="big")
    with pytest.raises(ValueError, match="group 'frontier' is a single actor, not a group"):
        bt.backtest(scenario, path, group="frontier")
    with pytest.raises(ValueError, match=r"--as-of: '2021-1' is not a date; expected YYYY-MM-DD"):
        bt.command(scenario, path, as_of="2021-1")
    no_groups = mcengine.parse_scenario(scenario_toml(), source="plain.toml")
    with pytest.raises(ValueError, match=r"plain.toml: the scenario has no \[\[groups\]\]"):
        bt.backtest(no_groups, path)
    two = mcengine.parse_scenario(scenario_toml(groups=[
        {"name": "a", "count": 3, "ranks": [1], "budget": 1e8, "growth": 0.3},
        {"name": "b", "count": 3, "ranks": [1], "budget": 1e7, "growth": 0.3}]), source="two.toml")
    with pytest.raises(ValueError, match=r"two.toml: the scenario has several groups \(a, b\); name the one"):
        bt.backtest(two, path)
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):  # before any sampling
        bt.command(scenario, path, as_of="2021-06-30", out=tmp_path / "blocker")


# -- (6) summaries: coverage over events that happened ---------------------------------------------


def test_coverage_excludes_not_yet_events(tmp_path, scenario, samples):
    """summarise() computes coverage, PIT and CRPS over the observed events only; a not-yet
    event is counted apart (never as inside an interval), and its CRPS enters only the
    not-yet and the all-rows means."""
    path = write_csv(tmp_path, [
        "A,Alpha,2023-01-15,1e28,no,",
        "B,Beta,2023-08-01,1e28,no,",
    ])
    as_of = datetime.date(2024, 3, 31)
    table = bt.backtest(scenario, path, as_of=as_of, trajectories=N, seed=SEED)
    recs = table.to_pylist()
    obs = [r for r in recs if r["status"] == "observed"]
    cen = [r for r in recs if r["status"].startswith("not yet")]
    assert len(obs) == 3 and len(cen) == 1  # frontier, labs #1, #2 observed; labs #3 not yet
    assert cen[0]["open_90"] is True  # its 90 % interval reaches beyond as_of: it would count as inside if mixed in
    m = bt.summarise(table)
    assert (m["observed"], m["censored"], m["scored"], m["before_start"]) == (3, 1, 4, 0)
    assert m["inside_90"] == sum(r["inside_90"] for r in obs) / 3
    assert m["inside_50"] == sum(r["inside_50"] for r in obs) / 3
    assert m["mean_pit"] == pytest.approx(np.mean([r["pit"] for r in obs]))
    assert m["crps_observed"] == pytest.approx(np.mean([r["crps"] for r in obs]))
    assert m["crps_censored"] == pytest.approx(cen[0]["crps"]) and m["open_90"] == 1.0
    assert m["crps"] == pytest.approx(np.mean([r["crps"] for r in obs + cen]))
    # a forecast whose every observed event falls outside its 90 % interval has coverage 0,
    # however many not-yet rows are open
    fake = [dict(r, inside_50=False, inside_90=False) for r in obs] + cen * 5
    assert bt.summarise(fake)["inside_90"] == 0.0 and bt.summarise(fake)["censored"] == 5
    text = bt.format_table(table)
    assert "3 observed, 1 not yet" in text and "not yet: 90% interval reaching beyond as-of 100%" in text


def test_pit_plot_is_drawn_and_written_atomically(tmp_path, scenario):
    pytest.importorskip("matplotlib")
    path = write_csv(tmp_path, ["A,Alpha,2023-01-15,1e28,no,", "B,Beta,2023-08-01,1e28,no,"])
    table = bt.backtest(scenario, path, as_of=datetime.date(2024, 3, 31), trajectories=N, seed=SEED)
    fig = bt.plot_pit([("a", table), ("b", table)])
    out = bt.write_plot(fig, tmp_path / "pit.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(io.OutputError, match="already exists"):
        bt.write_plot(fig, tmp_path / "pit.png")
    bt.write_plot(fig, tmp_path / "pit.png", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["observed.csv", "pit.png"]  # no temporary left
    with pytest.raises(mcengine.errors.ArgumentError, match="png"):
        bt.write_plot(fig, tmp_path / "pit.gif")


def test_parse_origins():
    assert bt.parse_origins("2012, 2014") == [datetime.date(2012, 12, 31), datetime.date(2014, 12, 31)]
    assert bt.parse_origins("2016-06-30") == [datetime.date(2016, 6, 30)]
    for bad in ("2014,2012", "2012,2012", "twelve", ""):
        with pytest.raises(mcengine.errors.ArgumentError):
            bt.parse_origins(bad)


def test_rolling_usage_errors_are_one_line(tmp_path, capsys):
    from .conftest import exit_code

    path = write_csv(tmp_path, ["A,Alpha,2023-01-15,1e28,no,"])
    for args, message in [
        (["backtest", "--observed", path], "give a SCENARIO"),
        (["backtest", "--rolling", "2012", "--observed", path], "--hardware"),
        (["backtest", "bt.toml", "--rolling", "2012", "--observed", path, "--hardware", path], "no SCENARIO"),
        (["backtest", "--rolling", "2014,2012", "--observed", path, "--hardware", path], "increasing"),
        (["backtest", "--rolling", "2030", "--observed", path, "--hardware", path], "not before the as-of"),
        (["backtest", "--rolling", "2012", "--observed", path, "--hardware", path, "--plot", "x.gif"], ".png"),
    ]:
        assert exit_code([str(a) for a in args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (args, err)
