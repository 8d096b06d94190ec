"""Calibration from data: fit a physical-compute scenario to what was published by a date.

:func:`calibrate` reads a models file (Epoch's "Data on AI Models" columns, read as
:func:`mcengine.backtest.read_observed` reads it: training runs = rows with a training
compute and no ``base_model``) and a hardware file (Epoch's "Data on Machine Learning
Hardware" columns), keeps only the rows published (released) on or before ``as_of``, and
fits

* **hardware** (:func:`fit_hardware`): ordinary least squares of log10(peak FLOP/s per
  release-$) on the release date over every accelerator with a release price (peak = the
  best of FP32, FP16 and tensor FP16/BF16 it offers). The slope is the FLOP/$ trend; the
  line's value at the origin, converted to lifetime FLOP per amortised $ (see
  :data:`AMORTISATION`), is the starting level. Both carry the OLS standard errors.
* **the top runs** (:func:`fit_frontier`): OLS of log10 FLOP of the largest run published
  in each calendar year of the fit window on its publication date. The slope is the
  frontier's compute trend (standard error from OLS, n = years); the start level is the
  line at the origin with the *prediction* standard error (a year's maximum scatters around
  the line by the residual s.d.; the frontier's position at the origin is uncertain by as
  much).
* **the organisations that publish** (:func:`fit_organisations`): the compute trend of
  all runs (OLS of log10 FLOP on the date over every run in the window; standard error
  clustered by calendar year, since runs of one year share its conditions); each
  organisation's *offset* = the largest over its runs of log10 FLOP − trend × (date −
  start), i.e. its run moved along the trend to the start; members = organisations with a
  run in the last :data:`MEMBER_YEARS` years, their offsets fitted by a normal (sample mean
  and s.d., i.e. a lognormal budget); entrants = organisations whose first run in the file
  falls in a year of the window: yearly counts fitted by a Poisson regression
  log λ(t) = a + b (t − start) (maximum likelihood; standard errors from the Fisher
  information, inflated by the Pearson dispersion when it exceeds 1), their offsets at
  entry fitted by a normal like the members'.

and writes the scenario (:func:`scenario_toml`): ``[hardware]``, ``[algorithms]`` (held
at 1: physical thresholds never read it), the ``frontier`` actor, one ``[[groups]]``
``organisations`` group with ``[groups.entry]``, physical thresholds at whole powers of
ten around the frontier's level, and correlations that keep the sums the data measured
(compute = budget + hardware, in levels and in rates) at the fitted uncertainty. Every
number's derivation (estimator, n, standard error) is a comment beside it; fitted numbers
are distributions with their standard errors (normal, or lognormal p5/p95 for positive
quantities), never bare point estimates.

Budgets are compute / FLOP-per-$: the data measure compute, the hardware file prices, and
the split between them only matters for $-denominated quantities (access budgets). No cap
is fitted (the data hold no evidence of a ceiling), and volatilities are 0: the scatter of
a year's largest run around the trend enters as start-level uncertainty, the trend's
uncertainty as rate uncertainty.

Pure NumPy (no JAX); the CLI's ``mcengine calibrate`` writes the text with
:func:`mcengine.io.write_file` (atomic; refuses to replace a file without --force).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from pathlib import Path

import numpy as np

from . import io
from .backtest import Observed, Run, _as_date, decimal_year, parse_date, read_observed
from .errors import ArgumentError, DataError

HARDWARE_DATE = "Release date"
HARDWARE_PRICE = "Release price (USD)"
HARDWARE_FLOPS = (
    "FP32 (single precision) performance (FLOP/s)",
    "FP16 (half precision) performance (FLOP/s)",
    "Tensor-FP16/BF16 performance (FLOP/s)",
)
HARDWARE_NAME = "Hardware name"
REQUIRED_HARDWARE = (HARDWARE_NAME, HARDWARE_DATE, HARDWARE_PRICE) + HARDWARE_FLOPS

Z95 = 1.6448536269514722  # standard normal 95 % quantile
FIT_YEARS = 8  # trends are fitted on the last FIT_YEARS calendar years up to as_of
MEMBER_YEARS = 3  # organisations with a run in the last MEMBER_YEARS years are the group's members
HORIZON_YEARS = 10  # the calibrated scenario runs this many years from its start
RANKS = (1, 2, 3, 5, 10, 20)
THRESHOLDS_BELOW, THRESHOLDS_ABOVE = 1, 3  # whole OOM below / above the frontier's start level
# Lifetime FLOP per amortised $ = peak FLOP/s x UTILISATION x LIFE_YEARS x seconds per year
# / (release price x OVERHEAD). A unit convention: compute = budget x FLOP/$, so for
# physical thresholds it cancels (budgets are fitted as compute / FLOP-per-$); it only sets
# what a dollar means for access budgets. Values as baseline.toml's (Megatron-LM's 30 % of
# peak; servers and networking x1.5; 4-year life).
UTILISATION, OVERHEAD, LIFE_YEARS = 0.30, 1.5, 4.0
SECONDS_PER_YEAR = 365.25 * 86400
AMORTISATION = math.log10(UTILISATION * LIFE_YEARS * SECONDS_PER_YEAR / OVERHEAD)


# ---------------------------------------------------------------------------------------
# Estimators


@dataclasses.dataclass(frozen=True)
class Line:
    """A least-squares line y = level + slope (x - x0) with standard errors: ``level_se``
    of the line's value at x0 (the mean), ``predict_se`` of a new observation there
    (includes the residual s.d. ``resid_sd``), ``n`` points, ``clusters`` (None: plain OLS)."""

    slope: float
    slope_se: float
    level: float
    level_se: float
    predict_se: float
    resid_sd: float
    n: int
    x0: float
    clusters: int | None = None


def ols(x, y, x0: float, cluster=None) -> Line:
    """Ordinary least squares of ``y`` on ``x``, centred at ``x0``. Standard errors are the
    classical ones, or, given ``cluster`` labels, cluster-robust (CR1: the sandwich with the
    residuals summed within clusters, times G/(G-1) (n-1)/(n-2)). Needs n >= 3 points at two
    or more distinct x (ValueError otherwise)."""
    x, y = np.asarray(x, np.float64) - x0, np.asarray(y, np.float64)
    n = x.size
    if n < 3 or np.ptp(x) == 0:
        raise ValueError(f"{n} points at {len(np.unique(x))} distinct dates; a trend needs 3 points at 2 dates")
    X = np.column_stack([np.ones(n), x])
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    resid = y - X @ beta
    s2 = float(resid @ resid) / (n - 2)
    groups = None
    if cluster is None:
        cov = s2 * xtx_inv
    else:
        labels = np.asarray(cluster)
        uniq = np.unique(labels)
        groups = len(uniq)
        meat = np.zeros((2, 2))
        for g in uniq:
            sg = X[labels == g].T @ resid[labels == g]
            meat += np.outer(sg, sg)
        factor = (groups / max(groups - 1, 1)) * ((n - 1) / (n - 2))
        cov = factor * xtx_inv @ meat @ xtx_inv
    level_se = math.sqrt(max(cov[0, 0], 0.0))
    return Line(
        slope=float(beta[1]),
        slope_se=math.sqrt(max(cov[1, 1], 0.0)),
        level=float(beta[0]),
        level_se=level_se,
        predict_se=math.sqrt(level_se**2 + s2),
        resid_sd=math.sqrt(s2),
        n=n,
        x0=x0,
        clusters=groups,
    )


@dataclasses.dataclass(frozen=True)
class Poisson:
    """Counts per year fitted as Poisson with log λ(t) = a + b (t - t0): ``rate`` = λ(t0)
    per year, ``log10_rate_se`` its standard error in log10, ``growth`` = b / ln 10 (OOM/yr)
    and ``growth_se``; ``dispersion`` = Pearson chi^2 / (n - 2) (standard errors are
    multiplied by its square root when it exceeds 1); ``n`` years, ``total`` events."""

    rate: float
    log10_rate_se: float
    growth: float
    growth_se: float
    dispersion: float
    n: int
    total: int


def poisson_trend(t, counts, t0: float) -> Poisson:
    """Maximum-likelihood Poisson regression of yearly ``counts`` at times ``t`` (Newton's
    method from the log-linear least-squares start). Needs 3 or more years and at least
    one event (ValueError otherwise)."""
    x, k = np.asarray(t, np.float64) - t0, np.asarray(counts, np.float64)
    if x.size < 3 or k.sum() < 1:
        raise ValueError(f"{x.size} years with {int(k.sum())} entrants; an entry rate needs 3 years and an entrant")
    X = np.column_stack([np.ones_like(x), x])
    beta = np.array([math.log(max(k.mean(), 1e-3)), 0.0])
    for _ in range(100):
        mu = np.exp(X @ beta)
        info = X.T @ (mu[:, None] * X)
        step = np.linalg.solve(info, X.T @ (k - mu))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    mu = np.exp(X @ beta)
    cov = np.linalg.inv(X.T @ (mu[:, None] * X))
    dispersion = float(np.sum((k - mu) ** 2 / mu)) / max(x.size - 2, 1)
    cov = cov * max(1.0, dispersion)
    ln10 = math.log(10)
    return Poisson(
        rate=float(math.exp(beta[0])),
        log10_rate_se=math.sqrt(cov[0, 0]) / ln10,
        growth=float(beta[1]) / ln10,
        growth_se=math.sqrt(cov[1, 1]) / ln10,
        dispersion=dispersion,
        n=int(x.size),
        total=int(k.sum()),
    )


# ---------------------------------------------------------------------------------------
# Hardware data


@dataclasses.dataclass(frozen=True)
class Chip:
    name: str
    date: datetime.date
    flops: float  # best peak FLOP/s among HARDWARE_FLOPS
    price: float  # release price, USD
    line: int


@dataclasses.dataclass(frozen=True)
class Hardware:
    source: str
    chips: tuple[Chip, ...]  # rows with a release date, a price and a FLOP/s
    rows: int


def read_hardware(path: str | Path) -> Hardware:
    """Read a hardware CSV in Epoch's layout (columns ``Hardware name``, ``Release date``,
    ``Release price (USD)`` and the FP32 / FP16 / tensor FP16 FLOP/s columns; others are
    ignored). Rows without a price, a date or any of those FLOP/s are skipped. Raises
    DataError naming the file, the line and the column."""
    source = str(path)
    records, col = io.read_csv(
        path, REQUIRED_HARDWARE, f"expected Epoch's hardware layout with {', '.join(REQUIRED_HARDWARE)}"
    )
    chips, rows = [], 0
    for line, record in records:
        rows += 1
        get = lambda c: record[col[c]].strip()
        name = get(HARDWARE_NAME)
        where = f"{source}: line {line}" + (f" ({name!r})" if name else "")

        def number(c):
            raw = get(c)
            if not raw:
                return None
            try:
                v = float(raw)
            except ValueError:
                raise DataError(f"{where}: column {c}: {raw!r} is not a number") from None
            if not (math.isfinite(v) and v > 0):
                raise DataError(f"{where}: column {c}: must be a positive finite number, got {raw!r}")
            return v

        price = number(HARDWARE_PRICE)
        flops = [v for v in (number(c) for c in HARDWARE_FLOPS) if v is not None]
        raw_date = get(HARDWARE_DATE)
        date = None
        if raw_date:
            try:
                date = parse_date(raw_date[:10])
            except ValueError as e:
                raise DataError(f"{where}: column {HARDWARE_DATE}: {e}") from None
        if price is None or not flops or date is None:
            continue
        chips.append(Chip(name, date, max(flops), price, line))
    return Hardware(source, tuple(chips), rows)


# ---------------------------------------------------------------------------------------
# Fits


@dataclasses.dataclass(frozen=True)
class HardwareFit:
    line: Line  # log10 peak FLOP/s per release-$ on the decimal year, at the start
    first: datetime.date
    last: datetime.date


def fit_hardware(hw: Hardware, as_of: datetime.date, start: float) -> HardwareFit:
    chips = [c for c in hw.chips if c.date <= as_of]
    if len(chips) < 3:
        raise DataError(
            f"{hw.source}: {len(chips)} accelerators with a release price released by "
            f"{as_of.isoformat()}; a FLOP/$ trend needs at least 3"
        )
    x = [decimal_year(c.date) for c in chips]
    y = [math.log10(c.flops / c.price) for c in chips]
    try:
        line = ols(x, y, start)
    except ValueError as e:
        raise DataError(f"{hw.source}: FLOP/$ trend by {as_of.isoformat()}: {e}") from None
    return HardwareFit(line, min(c.date for c in chips), max(c.date for c in chips))


def _window(runs: tuple[Run, ...], as_of: datetime.date, years: int) -> list[Run]:
    first = as_of.year - years + 1
    return [r for r in runs if r.date <= as_of and r.date.year >= first]


@dataclasses.dataclass(frozen=True)
class FrontierFit:
    line: Line  # log10 FLOP of each year's largest run on its date, at the start
    years: tuple[int, ...]
    top: Run  # the largest run known by as_of


def fit_frontier(obs: Observed, as_of: datetime.date, start: float, years: int = FIT_YEARS) -> FrontierFit:
    runs = _window(obs.runs, as_of, years)
    best: dict[int, Run] = {}
    for r in runs:
        if r.date.year not in best or r.flop > best[r.date.year].flop:
            best[r.date.year] = r
    if len(best) < 3:
        raise DataError(
            f"{obs.source}: runs in {len(best)} calendar years of {as_of.year - years + 1}-"
            f"{as_of.year}; the top runs' trend needs runs in at least 3 years"
        )
    tops = [best[y] for y in sorted(best)]
    try:
        line = ols([decimal_year(r.date) for r in tops], [math.log10(r.flop) for r in tops], start)
    except ValueError as e:
        raise DataError(f"{obs.source}: top runs' trend: {e}") from None
    known = [r for r in obs.runs if r.date <= as_of]
    return FrontierFit(line, tuple(sorted(best)), max(known, key=lambda r: r.flop))


@dataclasses.dataclass(frozen=True)
class Normal:
    mean: float
    sd: float
    n: int

    @property
    def mean_se(self) -> float:
        return self.sd / math.sqrt(self.n)

    @property
    def sd_se(self) -> float:  # normal theory
        return self.sd / math.sqrt(2 * (self.n - 1))


def fit_normal(values) -> Normal:
    v = np.asarray(values, np.float64)
    return Normal(float(v.mean()), float(v.std(ddof=1)), int(v.size))


@dataclasses.dataclass(frozen=True)
class OrganisationsFit:
    trend: Line  # log10 FLOP of every run in the window on its date (clustered by year)
    members: Normal  # offsets (log10 FLOP moved along the trend to the start)
    entrants: Normal  # offsets at entry
    entry: Poisson  # new organisations per year, at the start
    entry_years: tuple[int, ...]
    entry_counts: tuple[int, ...]
    runs: int


def fit_organisations(
    obs: Observed, as_of: datetime.date, start: float, years: int = FIT_YEARS, member_years: int = MEMBER_YEARS
) -> OrganisationsFit:
    runs = _window(obs.runs, as_of, years)
    if len(runs) < 3:
        raise DataError(
            f"{obs.source}: {len(runs)} training runs in {as_of.year - years + 1}-{as_of.year}; "
            "the organisations' fit needs at least 3"
        )
    try:
        trend = ols(
            [decimal_year(r.date) for r in runs],
            [math.log10(r.flop) for r in runs],
            start,
            cluster=[r.date.year for r in runs],
        )
    except ValueError as e:
        raise DataError(f"{obs.source}: all runs' trend: {e}") from None
    offset = lambda r: math.log10(r.flop) - trend.slope * (decimal_year(r.date) - start)
    member_from = as_of.year - member_years + 1
    members: dict[str, float] = {}
    for r in runs:
        if r.date.year >= member_from:
            for o in r.organizations:
                members[o.casefold()] = max(members.get(o.casefold(), -math.inf), offset(r))
    first: dict[str, Run] = {}
    for r in sorted((r for r in obs.runs if r.date <= as_of), key=lambda r: (r.date, r.line)):
        for o in r.organizations:
            first.setdefault(o.casefold(), r)
    fit_from = as_of.year - years + 1
    new = [r for r in first.values() if r.date.year >= fit_from]
    # whole calendar years only: the as-of year counts if as_of is its last day
    last_year = as_of.year if (as_of.month, as_of.day) == (12, 31) else as_of.year - 1
    yrs = list(range(fit_from, last_year + 1))
    counts = [sum(1 for r in new if r.date.year == y) for y in yrs]
    if len(members) < 3:
        raise DataError(
            f"{obs.source}: {len(members)} organisations with a run in {member_from}-{as_of.year}; "
            "the organisations group needs at least 3"
        )
    entrants = [offset(r) for r in new if r.date.year <= last_year]
    if len(entrants) < 3:
        raise DataError(
            f"{obs.source}: {len(entrants)} organisations first published in {fit_from}-{last_year}; "
            "the entry fit needs at least 3"
        )
    try:
        entry = poisson_trend([y + 0.5 for y in yrs], counts, start)
    except ValueError as e:
        raise DataError(f"{obs.source}: entry rate: {e}") from None
    return OrganisationsFit(
        trend, fit_normal(list(members.values())), fit_normal(entrants), entry, tuple(yrs), tuple(counts), len(runs)
    )


@dataclasses.dataclass(frozen=True)
class Calibration:
    as_of: datetime.date
    start: float
    horizon: float
    models: Observed
    hardware: Hardware
    hw: HardwareFit
    frontier: FrontierFit
    orgs: OrganisationsFit
    access: tuple[float, ...]


def start_of(as_of: datetime.date) -> float:
    """The scenario start for data up to ``as_of``: the decimal year of the next day."""
    return round(decimal_year(as_of + datetime.timedelta(days=1)), 4)


def calibrate(
    models: str | Path | Observed,
    hardware: str | Path | Hardware,
    as_of: datetime.date | str,
    access: tuple[float, ...] = (),
) -> Calibration:
    """Fit every trend from the rows published by ``as_of`` (see the module docstring).
    Raises DataError (unreadable files, too little data before ``as_of``) or ArgumentError
    (a bad date or access budget)."""
    as_of = _as_date(as_of, "--as-of")
    for b in access:
        if not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0):
            raise ArgumentError(f"access budgets must be positive $ amounts, got {b!r}")
    obs = models if isinstance(models, Observed) else read_observed(models)
    hw = hardware if isinstance(hardware, Hardware) else read_hardware(hardware)
    start = start_of(as_of)
    return Calibration(
        as_of,
        start,
        start + HORIZON_YEARS,
        obs,
        hw,
        fit_hardware(hw, as_of, start),
        fit_frontier(obs, as_of, start),
        fit_organisations(obs, as_of, start),
        tuple(access),
    )


# ---------------------------------------------------------------------------------------
# The scenario


def _g(x: float) -> str:
    return format(x, ".4g")


def _lognormal(mean_log10: float, sd: float) -> str:
    """A lognormal in the parser's p5/p95 form for log10 mean and s.d."""
    return f"{{ lognormal = [{10 ** (mean_log10 - Z95 * sd):.4e}, {10 ** (mean_log10 + Z95 * sd):.4e}] }}"


def _normal(mean: float, sd: float) -> str:
    return f"{{ normal = {{ mean = {mean:.5f}, sd = {sd:.5f} }} }}"


def _spearman(pearson: float) -> float:
    """The rank correlation whose normal-copula Pearson correlation is ``pearson``."""
    return 6 / math.pi * math.asin(pearson / 2)


def scenario_toml(c: Calibration, name: str | None = None, description: str | None = None, header: str = "") -> str:
    """The calibrated scenario as TOML text (``header``: comment lines put first)."""
    hw, fr, og = c.hw.line, c.frontier.line, c.orgs
    a = c.as_of.isoformat()
    fit_from = c.as_of.year - FIT_YEARS + 1
    name = name or f"calibrated-{a}"
    h0 = hw.level + AMORTISATION  # log10 lifetime FLOP per amortised $ at the start
    # frontier: compute level C ~ N(fr.level, fr.predict_se); budget B = C - H with H ~ N(h0, hw.level_se);
    # sd_B^2 = sd_C^2 + sd_H^2 and corr(B, H) = -sd_H / sd_B make B + H ~ N(fr.level, sd_C) exactly.
    sd_b = math.hypot(fr.predict_se, hw.level_se)
    rho_level = -hw.level_se / sd_b
    g_f = fr.slope - hw.slope
    sd_gf = math.hypot(fr.slope_se, hw.slope_se)
    rho_gf = -hw.slope_se / sd_gf
    g_o = og.trend.slope - hw.slope
    sd_go = math.hypot(og.trend.slope_se, hw.slope_se)
    rho_go = -hw.slope_se / sd_go
    top_level = fr.level
    k_lo, k_hi = math.floor(top_level) - THRESHOLDS_BELOW, math.floor(top_level) + THRESHOLDS_ABOVE
    top = c.frontier.top
    out = [header.rstrip("\n"), "#"] if header else []
    out += [
        "# Calibrated by `mcengine calibrate` from the rows published by " + a + " only:",
        f"#   models:   {c.models.source} ({len([r for r in c.models.runs if r.date <= c.as_of])} training runs "
        "with known compute by then)",
        f"#   hardware: {c.hardware.source} ({len([x for x in c.hardware.chips if x.date <= c.as_of])} accelerators "
        "with a release price by then)",
        f"# Fit window: calendar years {fit_from}-{c.as_of.year}. SE = standard error. Fitted numbers are",
        "# distributions with their standard errors; OOM = orders of magnitude (log10).",
        "",
        "[scenario]",
        "schema_version = 1",
        f'name = "{name}"',
        f'description = "{description or f"Calibrated from models and hardware published by {a}: physical-compute dates of the frontier and of ranks of the publishing organisations"}"',
        f"# the day after the as-of date {a} (decimal year)",
        f"start = {c.start}",
        f"# start + {HORIZON_YEARS} years (a fixed horizon, not fitted)",
        f"horizon = {c.horizon}",
        "# monthly steps, as the built-in scenarios",
        "steps_per_year = 12",
        "",
        "[hardware]",
        f"# OLS of log10(peak FLOP/s per release-$) on release date, n = {hw.n} accelerators released",
        f"# {c.hw.first.isoformat()}..{c.hw.last.isoformat()} (peak = best of FP32, FP16, tensor FP16): line at the start",
        f"# {hw.level:.3f} (SE {hw.level_se:.3f}, residual s.d. {hw.resid_sd:.3f}) + amortisation {AMORTISATION:.3f}",
        f"# (x {UTILISATION:g} utilisation x {LIFE_YEARS:g} yr / {OVERHEAD:g} overhead; a unit convention, cancels in physical",
        f"# thresholds) = 10^{h0:.3f} FLOP per $; lognormal with the line's SE.",
        f"initial = {_lognormal(h0, hw.level_se)}",
        f"# OLS slope of the same fit: {hw.slope:.4f} OOM/yr, SE {hw.slope_se:.4f} (n = {hw.n}).",
        f"rate = {_normal(hw.slope, hw.slope_se)}",
        "# 0: the residual scatter is between chips, not of the trend over time (estimator choice)",
        "volatility = 0.0",
        "",
        "[algorithms]",
        "# not used: every threshold is physical (budget x FLOP/$); held at 1",
        "initial = 1.0",
        "# no algorithmic term (physical thresholds only)",
        "rate = 0.0",
        "# no algorithmic term (physical thresholds only)",
        "volatility = 0.0",
        "",
        "[[actors]]",
        'name = "frontier"',
        f"# OLS of log10 FLOP of each year's largest run on its date, n = {fr.n} years "
        f"({c.frontier.years[0]}-{c.frontier.years[-1]}):",
        f"# line at the start 10^{fr.level:.3f} FLOP, prediction SE {fr.predict_se:.3f} OOM (line SE {fr.level_se:.3f},",
        f"# residual s.d. {fr.resid_sd:.3f}); largest run known: {top.model} ({top.date.isoformat()}, {top.flop:.3g} FLOP).",
        f"# Budget = compute / FLOP-per-$: log10 $ ~ N({fr.level - h0:.3f}, {sd_b:.3f}), s.d. sqrt(prediction SE^2 +",
        "# hardware level SE^2), drawn with the correlation below so that compute keeps the prediction SE.",
        f"budget = {_lognormal(fr.level - h0, sd_b)}",
        f"# compute trend {fr.slope:.4f} (SE {fr.slope_se:.4f}, n = {fr.n}) - hardware trend {hw.slope:.4f} "
        f"(SE {hw.slope_se:.4f});",
        "# SE sqrt of the sum of squares, correlated with the hardware rate below so the sum keeps the compute SE.",
        f"growth = {_normal(g_f, sd_gf)}",
        "# 0: scatter around the trend is carried by the start level (prediction SE), its uncertainty by growth",
        "volatility = 0.0",
        "",
        "[[groups]]",
        'name = "organisations"',
        f"# organisations with a training run published {c.as_of.year - MEMBER_YEARS + 1}-01-01..{a} (distinct names as",
        "# `mcengine backtest` counts them: case and spacing ignored, no alias table)",
        f"count = {og.members.n}",
        "# ranks scored by `mcengine backtest` (fixed list; with entrants a rank may exceed count)",
        f"ranks = [{', '.join(str(k) for k in RANKS)}]",
        "# Each member's offset = max over its runs of log10 FLOP - all-runs trend x (date - start); sample mean",
        f"# {og.members.mean:.3f} (SE {og.members.mean_se:.3f}), s.d. {og.members.sd:.3f} (SE {og.members.sd_se:.3f}), "
        f"n = {og.members.n}; minus log10 FLOP/$ {h0:.3f}.",
        f"budget = {_lognormal(og.members.mean - h0, og.members.sd)}",
        f"# all-runs trend: OLS of log10 FLOP on date, n = {og.runs} runs {fit_from}-{c.as_of.year}, slope "
        f"{og.trend.slope:.4f}, SE {og.trend.slope_se:.4f}",
        f"# (clustered by year, {og.trend.clusters} years) - hardware trend {hw.slope:.4f} (SE {hw.slope_se:.4f}); "
        "correlated with it below.",
        f"growth = {_normal(g_o, sd_go)}",
        "# 0: members differ by their offsets; the trend's uncertainty is in growth",
        "volatility = 0.0",
        "",
        "[groups.entry]",
        "# Poisson regression of new organisations per year (first run with known compute in the file) on",
        f"# the year, {og.entry_years[0]}-{og.entry_years[-1]}: counts {list(og.entry_counts)} (n = {og.entry.n} years, "
        f"{og.entry.total} entrants);",
        f"# rate at the start {og.entry.rate:.3f}/yr, SE {og.entry.log10_rate_se:.3f} in log10 (dispersion "
        f"{og.entry.dispersion:.2f}, SEs x sqrt(max(1, it)))",
        f"per_year = {_lognormal(math.log10(og.entry.rate), og.entry.log10_rate_se)}",
        f"# growth of the entry rate: slope {og.entry.growth:.4f} OOM/yr, SE {og.entry.growth_se:.4f} (same fit)",
        f"per_year_growth = {_normal(og.entry.growth, og.entry.growth_se)}",
        f"# entrants' offsets at entry (first run, moved along the all-runs trend to the start): mean "
        f"{og.entrants.mean:.3f} (SE {og.entrants.mean_se:.3f}),",
        f"# s.d. {og.entrants.sd:.3f} (SE {og.entrants.sd_se:.3f}), n = {og.entrants.n}; minus log10 FLOP/$ {h0:.3f}.",
        f"budget = {_lognormal(og.entrants.mean - h0, og.entrants.sd)}",
    ]
    for k in range(k_lo, k_hi + 1):
        out += [
            "",
            "[[thresholds]]",
            f'name = "1e{k}"',
            f"# whole power of ten; grid from {THRESHOLDS_BELOW} below to {THRESHOLDS_ABOVE} above the frontier's "
            f"start level 10^{top_level:.2f}",
            f"flop = 1e{k}",
            'kind = "physical"',
        ]
    if c.access:
        out += [
            "",
            "[access]",
            "# $ amounts given on the command line (--access)",
            f"budgets = [{', '.join(format(b, '.3g') for b in c.access)}]",
        ]
    out += [
        "",
        "[correlations]",
        "# rank correlations (Spearman) whose normal-copula Pearson value is -SE_hw / s.d.: they keep",
        "# budget + hardware (compute, measured directly) at the compute fits' SE, in level and in rate",
        "pairs = [",
        f'    ["actors.frontier.budget", "hardware.initial", {_spearman(rho_level):.4f}],  # level: {rho_level:.4f} Pearson',
        f'    ["actors.frontier.growth", "hardware.rate", {_spearman(rho_gf):.4f}],  # rate: {rho_gf:.4f} Pearson',
        f'    ["groups.organisations.growth", "hardware.rate", {_spearman(rho_go):.4f}],  # rate: {rho_go:.4f} Pearson',
        "]",
    ]
    return "\n".join(out) + "\n"


def summary(c: Calibration) -> str:
    """A few lines for the terminal: the fitted trends with their standard errors."""
    hw, fr, og = c.hw.line, c.frontier.line, c.orgs
    return "\n".join(
        [
            f"calibrated at {c.as_of.isoformat()} (start {c.start}, horizon {c.horizon})",
            f"  hardware FLOP/$ trend   {hw.slope:.3f} +- {hw.slope_se:.3f} OOM/yr (n = {hw.n} accelerators)",
            f"  top runs' compute trend {fr.slope:.3f} +- {fr.slope_se:.3f} OOM/yr (n = {fr.n} years); "
            f"start level 10^{fr.level:.2f} +- {fr.predict_se:.2f} FLOP",
            f"  all runs' compute trend {og.trend.slope:.3f} +- {og.trend.slope_se:.3f} OOM/yr (n = {og.runs} runs)",
            f"  organisations: {og.members.n} members, offsets {og.members.mean:.2f} +- sd {og.members.sd:.2f} OOM",
            f"  entry: {og.entry.rate:.2f}/yr at the start (log10 SE {og.entry.log10_rate_se:.2f}), growing "
            f"{og.entry.growth:.3f} +- {og.entry.growth_se:.3f} OOM/yr (n = {og.entry.n} years, {og.entry.total} entrants)",
        ]
    )
