"""Calibration from data (mcengine.calibrate): the fits recover the trends of synthetic
files generated with known parameters (within K standard errors of each fit), rows after
the as-of date are ignored, the written scenario is complete, sourced and runs, and bad
input is one line with exit status 2."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest

import mcengine
from mcengine import calibrate as cal
from mcengine.backtest import decimal_year

from .conftest import ROOT, exit_code
from .test_scenario_library import unsourced_numbers

ROLLING_ORIGIN = datetime.date(2016, 12, 31)
N_RUN = 4096  # trajectories of the runs below (one size, so that they share one compiled program)
K = 4.0  # tolerance in standard errors of the fit being checked (a 4-sigma miss: ~6e-5 per check)
AS_OF = datetime.date(2019, 12, 31)
START = 2020.0
# known parameters of the synthetic data
HW_LEVEL_2008, HW_RATE, HW_NOISE = 9.0, 0.15, 0.3  # log10 FLOP/s per $ of chips
TOP_LEVEL_2008, TOP_RATE, TOP_NOISE = 18.0, 0.6, 0.3  # log10 FLOP of each year's largest run
RUN_LEVEL_2008, RUN_RATE, RUN_SD = 12.0, 0.4, 1.0  # log10 FLOP of every other run
ENTRY_AT_START, ENTRY_GROWTH = 40.0, 0.1  # new organisations per year at the start; OOM/yr

MODELS_HEADER = "model,organization,publication_date,training_compute_flop,open_weights,base_model"
HW_HEADER = ",".join(f'"{c}"' if "," in c else c for c in cal.REQUIRED_HARDWARE)


def _date(rng, year):
    return datetime.date(year, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 365)))


def synthetic(tmp_path, later: bool = False, seed: int = 1):
    """A models file and a hardware file drawn from the known parameters, 2008-2019; with
    ``later``, absurd rows published in 2020-2021 are added (they must not matter)."""
    rng = np.random.default_rng(seed)
    models, chips = [MODELS_HEADER], [HW_HEADER]
    org = 0
    for year in range(2008, 2020):
        d = _date(rng, year)
        t = decimal_year(d)
        top = TOP_LEVEL_2008 + TOP_RATE * (t - 2008) + rng.normal(0, TOP_NOISE)
        models.append(f"Top{year},Frontier Lab,{d.isoformat()},{10 ** top:.6e},no,")
        k = rng.poisson(ENTRY_AT_START * 10 ** (ENTRY_GROWTH * (year + 0.5 - START)))
        for _ in range(k):
            org += 1
            for j in range(1 + int(rng.integers(0, 2))):  # one or two runs in its first year
                d = _date(rng, year)
                x = RUN_LEVEL_2008 + RUN_RATE * (decimal_year(d) - 2008) + rng.normal(0, RUN_SD)
                models.append(f"M{org}-{j},Org {org},{d.isoformat()},{10 ** x:.6e},no,")
        models.append(f"Tune{year},Org 1,{d.isoformat()},1e40,no,Top{year}")  # a fine-tune: ignored
        for _ in range(4):
            d = _date(rng, year)
            y = HW_LEVEL_2008 + HW_RATE * (decimal_year(d) - 2008) + rng.normal(0, HW_NOISE)
            price = 1000.0
            chips.append(f"Chip {len(chips)},{d.isoformat()},{price},{10 ** y * price:.6e},,")
    if later:
        models += ["Huge,Frontier Lab,2020-03-01,1e40,no,", "Other,New Org,2021-01-05,1e39,no,"]
        chips += ["Cheap Chip,2020-05-01,0.01,1e20,,"]
    chips.append("No price,2015-01-01,,1e12,,")  # skipped: no release price
    m, h = tmp_path / "models.csv", tmp_path / "hardware.csv"
    m.write_text("\n".join(models) + "\n")
    h.write_text("\n".join(chips) + "\n")
    return m, h


def _within(estimate, truth, se, what):
    assert abs(estimate - truth) <= K * se, f"{what}: {estimate:.4f} vs {truth} (SE {se:.4f})"


def test_fits_recover_the_generating_trends(tmp_path):
    m, h = synthetic(tmp_path)
    c = cal.calibrate(m, h, AS_OF)
    hw, fr, og = c.hw.line, c.frontier.line, c.orgs
    assert hw.n == 48 and c.hardware.rows == 49  # the chip without a price is skipped
    _within(hw.slope, HW_RATE, hw.slope_se, "hardware rate")
    _within(hw.level, HW_LEVEL_2008 + HW_RATE * (START - 2008), hw.level_se, "hardware level at the start")
    _within(hw.resid_sd, HW_NOISE, HW_NOISE / math.sqrt(2 * (hw.n - 2)), "hardware scatter")
    assert fr.n == cal.FIT_YEARS and c.frontier.years == tuple(range(2012, 2020))
    _within(fr.slope, TOP_RATE, fr.slope_se, "top runs' rate")
    _within(fr.level, TOP_LEVEL_2008 + TOP_RATE * (START - 2008), fr.level_se, "top runs' level")
    assert fr.predict_se > fr.level_se
    _within(og.trend.slope, RUN_RATE, og.trend.slope_se, "all runs' rate")
    assert og.trend.clusters == cal.FIT_YEARS
    _within(og.entry.growth, ENTRY_GROWTH, og.entry.growth_se, "entry growth")
    _within(math.log10(og.entry.rate), math.log10(ENTRY_AT_START), og.entry.log10_rate_se, "entry rate")
    # offsets moved to the start: the generating mean there; SE of the mean plus the trend's error
    offset = RUN_LEVEL_2008 + RUN_RATE * (START - 2008)
    for fit in (og.members, og.entrants):
        se = math.hypot(fit.mean_se, og.trend.slope_se * cal.FIT_YEARS / 2)
        _within(fit.mean, offset, se, "offset mean")
        _within(fit.sd, RUN_SD, math.hypot(fit.sd_se, 0.1), "offset s.d.")  # 0.1: the spread of the years
    assert sum(og.entry_counts) == og.entry.total == og.entrants.n


def test_ols_and_poisson_standard_errors_match_their_sampling_spread():
    """Over many synthetic data sets, the fits' SE equals the spread of their estimates
    (within 15 %, the sampling error of an s.d. from 300 repetitions plus the CR1 bias)."""
    rng = np.random.default_rng(5)
    x = np.repeat(np.arange(10.0), 5)
    slopes, ses, g, gse = [], [], [], []
    for _ in range(300):
        y = 1.0 + 0.5 * x + rng.normal(0, 1, x.size)
        line = cal.ols(x, y, 0.0, cluster=x)
        slopes.append(line.slope)
        ses.append(cal.ols(x, y, 0.0).slope_se)
        k = rng.poisson(5 * 10 ** (0.1 * np.arange(8.0)))
        p = cal.poisson_trend(np.arange(8.0), k, 0.0)
        g.append(p.growth)
        gse.append(p.growth_se)
    assert np.std(slopes) == pytest.approx(np.mean(ses), rel=0.15)
    assert np.std(g) == pytest.approx(np.mean(gse), rel=0.15)
    assert np.mean(slopes) == pytest.approx(0.5, abs=4 * np.std(slopes) / math.sqrt(300))


def test_as_of_excludes_later_rows(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    clean = cal.calibrate(*synthetic(tmp_path / "a"), AS_OF)
    dirty = cal.calibrate(*synthetic(tmp_path / "b", later=True), AS_OF)
    strip = lambda text: [ln for ln in text.splitlines() if not ln.startswith(("#   models:", "#   hardware:"))]
    assert strip(cal.scenario_toml(clean)) == strip(cal.scenario_toml(dirty))
    assert dirty.frontier.top.flop < 1e30
    # and an earlier as-of sees less
    early = cal.calibrate(*synthetic(tmp_path / "a"), datetime.date(2016, 12, 31))
    assert early.start == 2017.0 and early.hw.line.n < clean.hw.line.n and early.frontier.years[-1] == 2016


def test_scenario_is_complete_sourced_and_runs(tmp_path):
    m, h = synthetic(tmp_path)
    with_access = cal.scenario_toml(cal.calibrate(m, h, AS_OF, access=(1e5, 1e6)))
    assert unsourced_numbers(with_access) == []
    assert mcengine.parse_scenario(with_access).access_budgets == (1e5, 1e6)
    # the origin of the rolling test below: the same scenario, so one compiled program serves both
    c = cal.calibrate(m, h, ROLLING_ORIGIN)
    text = cal.scenario_toml(c, header="# a header comment\n")
    assert text.startswith("# a header comment\n")
    assert unsourced_numbers(text) == []  # every number carries its derivation
    s = mcengine.parse_scenario(text, source="synthetic.toml")
    assert s.name == "calibrated-2016-12-31" and s.start == 2017.0 and s.horizon == 2017.0 + cal.HORIZON_YEARS
    (group,) = [a for a in s.actors if a.is_group]
    assert group.entry is not None and group.count == c.orgs.members.n
    assert all(t.kind == "physical" for t in s.thresholds)
    draws = s.draws()
    # fitted numbers are distributions (with their SE), not points
    for path in ("hardware.initial", "hardware.rate", "actors.frontier.budget", "actors.frontier.growth",
                 "groups.organisations.growth", "groups.organisations.entry.per_year",
                 "groups.organisations.entry.per_year_growth"):
        assert draws[path].is_random, path
    assert draws["hardware.rate"].b == pytest.approx(c.hw.line.slope_se, rel=1e-3)
    from mcengine.model import build

    n = N_RUN
    t = mcengine.sample_trajectories(s, n, 0)
    inputs = list(build(s)[0].inputs)
    x = np.asarray(t.inputs, np.float64)
    col = lambda p: x[:, inputs.index(p)]
    # compute = budget + hardware keeps the fitted SE (the correlations), in level and in rate
    level = col("actors.frontier.budget") + col("hardware.initial")
    rate = col("actors.frontier.growth") + col("hardware.rate")
    fr = c.frontier.line
    se_sd = lambda sd: K * sd / math.sqrt(2 * n)  # sampling error of an s.d.
    assert np.std(level) == pytest.approx(fr.predict_se, abs=se_sd(fr.predict_se) + 0.01 * fr.predict_se)
    assert np.mean(level) == pytest.approx(fr.level, abs=K * fr.predict_se / math.sqrt(n))
    assert np.std(rate) == pytest.approx(fr.slope_se, abs=se_sd(fr.slope_se) + 0.01 * fr.slope_se)
    assert np.isfinite(np.asarray(t.t_first)[:, 0, :]).mean() > 0.5


def test_rolling_backtest_command(tmp_path, capsys):
    """backtest --rolling calibrates at each origin, scores up to the file's end, prints one
    line per origin and the pooled one, and draws the PIT figure."""
    pytest.importorskip("matplotlib")
    m, h = synthetic(tmp_path)
    plot = tmp_path / "pit.png"
    code = exit_code(["backtest", "--rolling", ROLLING_ORIGIN.isoformat(), "--observed", str(m), "--hardware", str(h),
                      "-n", str(N_RUN), "--plot", str(plot)])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    row = next(ln for ln in lines if ln.startswith("2016-12-31"))
    assert int(row.split()[2]) > 0  # events observed in 2017-2019 were scored
    assert any(ln.startswith("pooled") for ln in lines) and plot.read_bytes()[:4] == b"\x89PNG"


def test_real_data_2019(tmp_path):
    data = ROOT.parent / "shared" / "data"
    if not (data / "epoch_models_to_2019.csv").is_file():
        pytest.skip("the shared Epoch data are not beside this checkout")
    c = cal.calibrate(data / "epoch_models_to_2019.csv", data / "ml_hardware_2025-12.csv", AS_OF)
    assert c.hw.line.n == 33 and c.frontier.top.model == "AlphaStar"
    mcengine.parse_scenario(cal.scenario_toml(c))


def _cli(capsys, *args):
    code = exit_code(["calibrate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_command_writes_refuses_to_overwrite_and_reports_bad_input(tmp_path, capsys):
    m, h = synthetic(tmp_path)
    out = tmp_path / "cal.toml"
    code, text, err = _cli(capsys, "--models", m, "--hardware", h, "--as-of", "2019-12-31", "--out", out)
    assert code == 0, err
    assert "hardware FLOP/$ trend" in text and out.is_file()
    mcengine.load_scenario(out)
    before = out.read_text()
    code, _, err = _cli(capsys, "--models", m, "--hardware", h, "--as-of", "2018-12-31", "--out", out)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == before
    assert _cli(capsys, "--models", m, "--hardware", h, "--as-of", "2018-12-31", "--out", out, "--force")[0] == 0
    assert out.read_text() != before and "start = 2019.0" in out.read_text()

    nested = tmp_path / "new" / "dir" / "cal.toml"  # missing folders are made
    assert _cli(capsys, "--models", m, "--hardware", h, "--as-of", "2019-12-31", "--out", nested)[0] == 0
    link = tmp_path / "link.toml"
    link.symlink_to(out)
    code, _, err = _cli(capsys, "--models", m, "--hardware", h, "--as-of", "2019-12-31", "--out", link, "--force")
    assert code == 2 and "symbolic link" in err and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left

    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text(MODELS_HEADER + "\nA,Org,2019-01-01,1e20,no\n")  # a field short
    no_cols = tmp_path / "nocols.csv"
    no_cols.write_text("model,organization\nA,Org\n")
    bad_hw = tmp_path / "badhw.csv"
    bad_hw.write_text(HW_HEADER + "\nChip,2019-01-01,cheap,1e12,,\n")
    cases = [
        ((bad_csv, h, "2019-12-31"), "fields, but the header has"),
        ((no_cols, h, "2019-12-31"), "missing columns"),
        ((m, no_cols, "2019-12-31"), "missing columns"),
        ((m, bad_hw, "2019-12-31"), "not a number"),
        ((m, h, "2019-02-30"), "--as-of"),
        ((m, h, "2019"), "--as-of"),
        ((tmp_path / "absent.csv", h, "2019-12-31"), "no such file"),
        ((m, h, "2009-12-31"), "at least 3"),  # too little data by then
    ]
    for (models, hardware, as_of), message in cases:
        target = tmp_path / "new.toml"
        code, _, err = _cli(capsys, "--models", models, "--hardware", hardware, "--as-of", as_of, "--out", target)
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (message, err)
        assert message in err, (message, err)
        assert not target.exists()


def test_calibration_needs_no_jax():
    import subprocess
    import sys

    code = "import sys, mcengine.calibrate, mcengine.backtest; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    from mcengine import backtest, scenario

    assert backtest.FRONTIER == scenario.FRONTIER
