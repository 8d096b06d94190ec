"""Scenario files: TOML text -> a validated, frozen :class:`Scenario`.

Everything a user can get wrong in a scenario file is caught here, before any tracing,
and reported as a :class:`ScenarioError` naming the file, the dotted field path and
what would be valid. Numbers are converted to engine units on the way in: levels
($, FLOP/$, FLOP, algorithmic multipliers) become log10 (OOM), growth becomes OOM/yr.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import math
import tomllib
from pathlib import Path
from typing import Any

from .distributions import Z_P95, Dist

SCHEMA_VERSION = 1
FRONTIER = "frontier"
THRESHOLD_KINDS = ("effective", "physical")


class ScenarioError(ValueError):
    """A scenario that cannot be run: ``str(err)`` is the one-line message for users."""

    def __init__(self, source: str, field: str, message: str):
        self.source, self.field, self.message = source, field, message
        super().__init__(f"{source}: {field}: {message}" if field else f"{source}: {message}")


@dataclasses.dataclass(frozen=True)
class Factor:
    """A shared factor (hardware H or algorithms A). ``initial`` in log10 units,
    ``rate`` in OOM/yr, ``volatility`` in OOM/sqrt(yr)."""

    initial: Dist
    rate: Dist
    volatility: Dist


@dataclasses.dataclass(frozen=True)
class Actor:
    """One actor. ``budget`` and ``cap`` in log10 $ (``cap`` None: no cap), ``growth`` in
    OOM/yr, ``volatility`` in OOM/sqrt(yr), lags in years, ``hw_penalty`` in OOM."""

    name: str
    budget: Dist
    growth: Dist
    volatility: Dist
    cap: Dist | None
    algo_lag: float
    hw_lag: float
    hw_penalty: Dist


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A capability threshold: ``level`` in log10 FLOP (effective or physical)."""

    name: str
    flop: float
    kind: str

    @property
    def level(self) -> float:
        return math.log10(self.flop)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A validated scenario. Times in calendar years; see the field classes for units."""

    name: str
    description: str
    start: float
    horizon: float
    steps_per_year: int
    hardware: Factor
    algorithms: Factor
    actors: tuple[Actor, ...]
    thresholds: tuple[Threshold, ...]
    access_budgets: tuple[float, ...]  # $
    source: str = "<string>"  # where the text came from (path or built-in name)
    text: str = ""  # the TOML text, recorded in every output

    @property
    def n_steps(self) -> int:
        """Steps from start to horizon."""
        return round((self.horizon - self.start) * self.steps_per_year)

    @property
    def frontier_index(self) -> int:
        return [a.name for a in self.actors].index(FRONTIER)

    def draws(self) -> list[tuple[str, Dist]]:
        """Every per-trajectory number as (dotted path, spec), in a stable order."""
        out = []
        for fname in ("hardware", "algorithms"):
            f = getattr(self, fname)
            out += [(f"{fname}.initial", f.initial), (f"{fname}.rate", f.rate),
                    (f"{fname}.volatility", f.volatility)]
        for a in self.actors:
            p = f"actors.{a.name}"
            out += [(f"{p}.budget", a.budget), (f"{p}.growth", a.growth),
                    (f"{p}.volatility", a.volatility), (f"{p}.hw_penalty", a.hw_penalty)]
            if a.cap is not None:
                out.append((f"{p}.cap", a.cap))
        return out


# ---------------------------------------------------------------------------------------
# Loading


def builtin_names() -> list[str]:
    """Names of the scenarios shipped with mcengine."""
    root = importlib.resources.files("mcengine.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Load a scenario from a TOML file path or a built-in name (see :func:`builtin_names`)."""
    p = Path(path_or_name)
    if p.suffix == ".toml" or p.is_file() or "/" in str(path_or_name):
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ScenarioError(str(p), "", "no such file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ScenarioError(str(p), "", f"cannot read the file ({e.__class__.__name__})") from None
        return parse_scenario(text, source=str(p))
    name = str(path_or_name)
    if name not in builtin_names():
        raise ScenarioError(name, "", "no such file and no built-in scenario of that name; "
                            f"built-ins: {', '.join(builtin_names())}")
    text = (importlib.resources.files("mcengine.scenarios") / f"{name}.toml").read_text("utf-8")
    return parse_scenario(text, source=f"built-in:{name}")


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Parse and validate scenario TOML text; ``source`` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(source, "", f"not valid TOML: {e}") from None
    return _Parser(source).scenario(doc, text)


# ---------------------------------------------------------------------------------------
# Validation


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def fail(self, field: str, message: str):
        raise ScenarioError(self.source, field, message)

    # -- structure ------------------------------------------------------------------------
    def table(self, value: Any, field: str, required: set[str], optional: set[str]) -> dict:
        if not isinstance(value, dict):
            self.fail(field, f"must be a table, got {_describe(value)}")
        allowed = required | optional
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                self.fail(_join(field, key), f"unknown key; {hint}valid keys: {', '.join(sorted(allowed))}")
        for key in sorted(required):
            if key not in value:
                self.fail(_join(field, key), "missing; it is required")
        return value

    def one_of(self, t: dict, field: str, keys: tuple[str, ...]) -> str:
        present = [k for k in keys if k in t]
        if len(present) != 1:
            what = "missing" if not present else f"given {len(present)} times ({', '.join(present)})"
            self.fail(_join(field, keys[0]), f"{what}; give exactly one of {', '.join(keys)}")
        return present[0]

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(field, f"must be a number, got {_describe(value)}")
        if not math.isfinite(value):
            self.fail(field, f"must be a finite number, got {value}")
        return float(value)

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"must be a non-empty string, got {_describe(value)}")
        return value

    # -- numbers that may be distributions ------------------------------------------------
    def dist(self, value: Any, field: str, domain: str = "real", transform: str = "identity") -> Dist:
        """A number or distribution. ``domain`` is 'real', 'nonneg' or 'positive' (of the
        number as written); ``transform`` converts it into engine units."""
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in ("fixed", "normal", "lognormal", "uniform"):
                self.fail(field, "a distribution is a table with exactly one of fixed, normal, "
                          "lognormal, uniform, e.g. { normal = [p5, p95] }")
            family, arg = next(iter(value.items()))
            sub = _join(field, family)
            d = getattr(self, f"_{family}")(arg, sub, domain)
        else:
            sub = field
            d = Dist("fixed", self.number(value, field))
            self.check_domain(d.a, sub, domain)
        return d.with_transform(transform)

    def check_domain(self, x: float, field: str, domain: str):
        if domain == "positive" and not x > 0:
            self.fail(field, f"must be > 0, got {x}")
        if domain == "nonneg" and not x >= 0:
            self.fail(field, f"must be >= 0, got {x}")

    def pair(self, arg: Any, field: str, names: tuple[str, str]) -> tuple[float, float]:
        if not isinstance(arg, list) or len(arg) != 2:
            self.fail(field, f"must be a list [{names[0]}, {names[1]}], got {_describe(arg)}")
        lo, hi = (self.number(v, f"{field}[{i}]") for i, v in enumerate(arg))
        if lo > hi:
            self.fail(field, f"{names[0]} ({lo:g}) is above {names[1]} ({hi:g}); swap them")
        return lo, hi

    def _fixed(self, arg, field, domain):
        x = self.number(arg, field)
        self.check_domain(x, field, domain)
        return Dist("fixed", x)

    def _normal(self, arg, field, domain):
        if isinstance(arg, dict):
            t = self.table(arg, field, {"mean", "sd"}, set())
            mean, sd = self.number(t["mean"], _join(field, "mean")), self.number(t["sd"], _join(field, "sd"))
            if sd < 0:
                self.fail(_join(field, "sd"), f"must be >= 0, got {sd}")
        else:
            p5, p95 = self.pair(arg, field, ("p5", "p95"))
            mean, sd = (p5 + p95) / 2, (p95 - p5) / (2 * Z_P95)
        if domain != "real" and mean - 6 * sd < (0 if domain == "nonneg" else 1e-300):
            self.fail(field, f"a normal distribution can draw values {'<' if domain == 'nonneg' else '<='} 0 "
                      "here (mean - 6 sd crosses zero); use lognormal or uniform for this quantity")
        return Dist("normal", mean, sd)

    def _lognormal(self, arg, field, domain):
        p5, p95 = self.pair(arg, field, ("p5", "p95"))
        if p5 <= 0:
            self.fail(field, f"lognormal bounds must be > 0, got p5 = {p5:g}")
        lo, hi = math.log10(p5), math.log10(p95)
        return Dist("lognormal", (lo + hi) / 2, (hi - lo) / (2 * Z_P95))

    def _uniform(self, arg, field, domain):
        lo, hi = self.pair(arg, field, ("low", "high"))
        self.check_domain(lo, f"{field}[0]", domain)
        return Dist("uniform", lo, hi)

    def rate(self, t: dict, field: str, keys: tuple[str, ...]) -> Dist:
        """A growth rate given as OOM/yr (first key), doubling/halving years, or a factor."""
        key = self.one_of(t, field, keys)
        sub = _join(field, key)
        if key in ("doubling_years", "halving_years"):
            return self.dist(t[key], sub, "positive", "log2_over")
        if key == "factor_per_year":
            return self.dist(t[key], sub, "positive", "log10")
        return self.dist(t[key], sub)

    # -- sections ---------------------------------------------------------------------------
    def scenario(self, doc: dict, text: str) -> Scenario:
        self.table(doc, "", {"scenario", "hardware", "algorithms", "actors", "thresholds"}, {"access"})
        s = self.table(doc["scenario"], "scenario", {"name", "start", "horizon", "steps_per_year"},
                       {"description", "schema_version"})
        if "schema_version" in s and s["schema_version"] != SCHEMA_VERSION:
            self.fail("scenario.schema_version", f"this mcengine reads schema_version {SCHEMA_VERSION}, "
                      f"got {s['schema_version']!r}")
        name = self.string(s["name"], "scenario.name")
        description = s.get("description", "")
        if not isinstance(description, str):
            self.fail("scenario.description", f"must be a string, got {_describe(description)}")
        start = self.number(s["start"], "scenario.start")
        horizon = self.number(s["horizon"], "scenario.horizon")
        if horizon <= start:
            self.fail("scenario.horizon", f"must be after scenario.start ({start:g}), got {horizon:g}")
        spy = s["steps_per_year"]
        if isinstance(spy, bool) or not isinstance(spy, int) or spy < 1:
            self.fail("scenario.steps_per_year", f"must be a whole number >= 1, got {_describe(spy)}")
        steps = (horizon - start) * spy
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
            self.fail("scenario.horizon", f"horizon - start must be a whole number of steps: "
                      f"({horizon:g} - {start:g}) x {spy} = {steps:g}")
        if steps > 10_000_000:
            self.fail("scenario.steps_per_year", f"{round(steps)} steps from start to horizon; at most 10,000,000")

        hardware = self.factor(doc["hardware"], "hardware", ("rate", "doubling_years", "factor_per_year"))
        algorithms = self.factor(doc["algorithms"], "algorithms", ("rate", "halving_years", "factor_per_year"))
        actors = self.actors(doc["actors"])
        thresholds = self.thresholds(doc["thresholds"])
        budgets: tuple[float, ...] = ()
        if "access" in doc:
            acc = self.table(doc["access"], "access", {"budgets"}, set())
            if not isinstance(acc["budgets"], list):
                self.fail("access.budgets", f"must be a list of $ amounts, got {_describe(acc['budgets'])}")
            budgets = tuple(self.number(v, f"access.budgets[{i}]") for i, v in enumerate(acc["budgets"]))
            for i, b in enumerate(budgets):
                self.check_domain(b, f"access.budgets[{i}]", "positive")
            if len(set(budgets)) != len(budgets):
                self.fail("access.budgets", "contains the same budget twice")
        return Scenario(name, description, start, horizon, spy, hardware, algorithms, actors,
                        thresholds, budgets, source=self.source, text=text)

    def factor(self, value: Any, field: str, rate_keys: tuple[str, ...]) -> Factor:
        t = self.table(value, field, {"initial"}, set(rate_keys) | {"volatility"})
        return Factor(
            initial=self.dist(t["initial"], _join(field, "initial"), "positive", "log10"),
            rate=self.rate(t, field, rate_keys),
            volatility=self.dist(t.get("volatility", 0.0), _join(field, "volatility"), "nonneg"),
        )

    def actors(self, value: Any) -> tuple[Actor, ...]:
        if not isinstance(value, list) or not value:
            self.fail("actors", "must be one or more [[actors]] tables")
        actors, names = [], set()
        for i, raw in enumerate(value, start=1):
            field = f"actors[{i}]"
            t = self.table(raw, field, {"name", "budget"},
                           {"growth", "factor_per_year", "doubling_years", "volatility", "cap",
                            "algo_lag", "hw_lag", "hw_penalty"})
            name = self.string(t["name"], _join(field, "name"))
            if name in names:
                self.fail(_join(field, "name"), f"'{name}' is used by two actors; names must be unique")
            names.add(name)
            field = f"actors.{name}"
            lags = {}
            for key in ("algo_lag", "hw_lag"):
                lag = self.number(t.get(key, 0.0), _join(field, key))
                if not 0 <= lag <= 100:
                    self.fail(_join(field, key), f"must be a fixed number of years in [0, 100], got {lag:g}")
                lags[key] = lag
            actor = Actor(
                name=name,
                budget=self.dist(t["budget"], _join(field, "budget"), "positive", "log10"),
                growth=self.rate(t, field, ("growth", "factor_per_year", "doubling_years")),
                volatility=self.dist(t.get("volatility", 0.0), _join(field, "volatility"), "nonneg"),
                cap=self.dist(t["cap"], _join(field, "cap"), "positive", "log10") if "cap" in t else None,
                hw_penalty=self.dist(t.get("hw_penalty", 0.0), _join(field, "hw_penalty")),
                **lags,
            )
            if name == FRONTIER and (actor.algo_lag or actor.hw_lag or actor.hw_penalty != Dist("fixed", 0.0)):
                self.fail(field, "the frontier has no lags and no hardware penalty; remove algo_lag, "
                          "hw_lag and hw_penalty or set them to 0")
            actors.append(actor)
        if FRONTIER not in names:
            self.fail("actors", f"no actor is named '{FRONTIER}'; exactly one must be "
                      f"(actors: {', '.join(sorted(names))})")
        return tuple(actors)

    def thresholds(self, value: Any) -> tuple[Threshold, ...]:
        if not isinstance(value, list) or not value:
            self.fail("thresholds", "must be one or more [[thresholds]] tables")
        out, names = [], set()
        for i, raw in enumerate(value, start=1):
            field = f"thresholds[{i}]"
            t = self.table(raw, field, {"name", "flop", "kind"}, set())
            name = self.string(t["name"], _join(field, "name"))
            if name in names:
                self.fail(_join(field, "name"), f"'{name}' is used by two thresholds; names must be unique")
            names.add(name)
            field = f"thresholds.{name}"
            flop = self.number(t["flop"], _join(field, "flop"))
            self.check_domain(flop, _join(field, "flop"), "positive")
            if t["kind"] not in THRESHOLD_KINDS:
                self.fail(_join(field, "kind"), f"must be one of {', '.join(THRESHOLD_KINDS)}, got {t['kind']!r}")
            out.append(Threshold(name, flop, t["kind"]))
        return tuple(out)


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", str: "a string", list: "a list", dict: "a table"}.get(type(value))
    if kind is None:
        return repr(value)
    return f"{kind} ({value!r})" if kind != "a table" else kind
