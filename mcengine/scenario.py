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
import re
import tomllib
from pathlib import Path
from typing import Any, NoReturn

from .distributions import CLOSED_FORM_FAMILIES, Z_P95, Dist
from .errors import ScenarioError

SCHEMA_VERSION = 1
FRONTIER = "frontier"
THRESHOLD_KINDS = ("effective", "physical")
DEFAULT_AT_LEAST = (1, 10, 100)
MAX_MOVE = 1e6  # OOM: the most a level may move over a scenario (float32 keeps a step's resolution)
MAX_ENTRY_RANK = 1000  # largest rank a group with entrants may report (its cost grows with it)


@dataclasses.dataclass(frozen=True)
class Jumps:
    """Poisson jumps: ``per_year`` jumps per year (a per-trajectory number), each of a size
    drawn from ``size`` (OOM; negative sizes are shocks)."""

    per_year: Dist
    size: Dist


@dataclasses.dataclass(frozen=True)
class Process:
    """How a log10 level moves: ``rate`` OOM/yr, decaying towards ``long_run_rate`` with
    time constant ``decay_years`` (both None: constant), ``volatility`` OOM/sqrt(yr), jumps."""

    rate: Dist
    volatility: Dist
    long_run_rate: Dist | None = None
    decay_years: Dist | None = None
    jumps: Jumps | None = None


@dataclasses.dataclass(frozen=True)
class Factor:
    """A shared factor (hardware H or algorithms A): ``initial`` in log10 units."""

    initial: Dist
    process: Process


@dataclasses.dataclass(frozen=True)
class Entry:
    """New members joining a group over time (MODEL.md "Populations that grow").

    Members arrive as a Poisson process of ``per_year`` members per year at the start,
    growing by ``per_year_growth`` OOM/yr (rate ``per_year * 10**(per_year_growth * tau)``,
    tau in years since the start). An entrant's budget offset is drawn from ``budget``
    (log10 $: its budget had it been a member from the start); from then on it follows
    the group's shared budget path plus ``relative_growth`` OOM/yr times the years since
    the start, so entrants as a pool grow that much faster (or, if negative, slower)
    than the initial members, before and after they join."""

    per_year: Dist
    per_year_growth: Dist
    budget: Dist
    relative_growth: Dist


@dataclasses.dataclass(frozen=True)
class Actor:
    """One actor, or (``count`` > 1) a group of actors reported by ``ranks``.

    ``budget`` is log10 $ (for a group: of each member, i.i.d.), ``cap`` log10 $ (None: no
    cap), lags in years, ``hw_penalty`` in OOM, ``release_lag`` in years. A group's members
    share its growth, noise, lags and penalty, so its k-th best-funded member stays k-th.
    """

    name: str
    budget: Dist
    process: Process
    cap: Dist | None
    algo_lag: float
    hw_lag: float
    hw_penalty: Dist
    count: int = 1
    ranks: tuple[int, ...] = (1,)
    releases_weights: bool = False
    release_lag: Dist | None = None
    access_via: tuple[str, ...] = ()
    entry: Entry | None = None  # groups only: members joining over time
    publication_delay: Dist | None = None  # years from affording a run to a public model

    @property
    def is_group(self) -> bool:
        return self.count > 1 or self.ranks != (1,) or self.entry is not None

    @property
    def path(self) -> str:
        return f"{'groups' if self.is_group else 'actors'}.{self.name}"


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
class Regime:
    """A future with probability ``weight``: ``overrides`` maps draw paths to new specs."""

    name: str
    weight: float
    overrides: dict


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
    actors: tuple[Actor, ...]  # single actors, then groups
    thresholds: tuple[Threshold, ...]
    access_budgets: tuple[float, ...] = ()  # $
    catch_up_rate: Dist = Dist("fixed", 0.0)  # OOM/yr
    regimes: tuple[Regime, ...] = ()
    correlations: tuple[tuple[str, str, float], ...] = ()  # (path, path, rank correlation)
    count_at_least: tuple[int, ...] = DEFAULT_AT_LEAST  # k of the P(count >= k) columns of counts.parquet
    source: str = "<string>"  # where the text came from (path or built-in name)
    text: str = ""  # the TOML text, recorded in every output
    warnings: tuple[str, ...] = ()  # one line each: what is valid but probably not meant

    @property
    def n_steps(self) -> int:
        """Steps from start to horizon."""
        return round((self.horizon - self.start) * self.steps_per_year)

    @property
    def frontier_index(self) -> int:
        return [a.name for a in self.actors].index(FRONTIER)

    def draws(self) -> dict[str, Dist]:
        """Every per-trajectory number as {dotted path: spec}, in a stable order."""
        out: dict[str, Dist] = {}
        for fname in ("hardware", "algorithms"):
            f = getattr(self, fname)
            out[f"{fname}.initial"] = f.initial
            out.update(_process_draws(fname, "rate", f.process))
        out["algorithms.catch_up_rate"] = self.catch_up_rate
        for a in self.actors:
            if not a.is_group:
                out[f"{a.path}.budget"] = a.budget
            out.update(_process_draws(a.path, "growth", a.process))
            out[f"{a.path}.hw_penalty"] = a.hw_penalty
            if a.cap is not None:
                out[f"{a.path}.cap"] = a.cap
            if a.release_lag is not None:
                out[f"{a.path}.release_lag"] = a.release_lag
            if a.publication_delay is not None:
                out[f"{a.path}.publication_delay"] = a.publication_delay
            if a.entry is not None:
                for key in ("per_year", "per_year_growth", "relative_growth"):  # (budget: per member)
                    out[f"{a.path}.entry.{key}"] = getattr(a.entry, key)
        return out


def _process_draws(prefix: str, rate_key: str, p: Process) -> dict[str, Dist]:
    out = {f"{prefix}.{rate_key}": p.rate, f"{prefix}.volatility": p.volatility}
    for key in ("long_run_rate", "decay_years"):
        if getattr(p, key) is not None:
            out[f"{prefix}.{key}"] = getattr(p, key)
    if p.jumps is not None:
        out[f"{prefix}.jumps.per_year"] = p.jumps.per_year
    return out


# ---------------------------------------------------------------------------------------
# Loading


def builtin_names() -> list[str]:
    """Names of the scenarios shipped with mcengine."""
    root = importlib.resources.files("mcengine.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_scenario(path_or_name: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> Scenario:
    """Load a scenario from a TOML file path or a built-in name (see :func:`builtin_names`),
    with optional ``overrides`` such as ``"hardware.rate=0.2"`` or
    ``"actors.frontier.budget={ lognormal = [1e8, 1e9] }"`` (see :func:`apply_overrides`)."""
    source, text = _read(path_or_name)
    return parse_scenario(text, source=source, overrides=overrides)


MAX_FILE_BYTES = 10_000_000  # a scenario file is text of a few kB


def _read(path_or_name: str | Path) -> tuple[str, str]:
    p = Path(path_or_name)
    if "\0" in str(p):
        raise ScenarioError(str(p).replace("\0", "\\0"), "", "the path contains a NUL character")
    try:
        return _read_path(p, path_or_name)
    except OSError as e:
        raise ScenarioError(str(p), "", f"cannot read the file ({e.strerror or e.__class__.__name__})") from None


def _read_path(p: Path, path_or_name: str | Path) -> tuple[str, str]:
    if p.suffix == ".toml" or p.exists() or "/" in str(path_or_name) or "\\" in str(path_or_name):
        if p.is_dir():
            raise ScenarioError(str(p), "", "is a folder, not a scenario file; give a .toml file or a built-in name")
        if p.exists() and not p.is_file():
            raise ScenarioError(str(p), "", "is not a regular file; give a .toml file or a built-in name")
        try:
            with open(p, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise ScenarioError(str(p), "", "no such file") from None
        except OSError as e:
            raise ScenarioError(str(p), "", f"cannot read the file ({e.strerror or e.__class__.__name__})") from None
        if len(data) > MAX_FILE_BYTES:
            raise ScenarioError(str(p), "", f"larger than {MAX_FILE_BYTES // 10**6} MB; not a scenario file")
        try:
            return str(p), data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScenarioError(str(p), "", f"not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    name = str(path_or_name)
    if name not in builtin_names():
        raise ScenarioError(
            name, "", f"no such file and no built-in scenario of that name; built-ins: {', '.join(builtin_names())}"
        )
    return f"built-in:{name}", (importlib.resources.files("mcengine.scenarios") / f"{name}.toml").read_text("utf-8")


def parse_scenario(text: str, source: str = "<string>", overrides: tuple[str, ...] | list[str] = ()) -> Scenario:
    """Parse and validate scenario TOML text; ``source`` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(source, "", f"not valid TOML: {e}") from None
    if not doc:
        raise ScenarioError(
            source,
            "",
            "the file is empty (no TOML keys or tables); a scenario needs [scenario], "
            "[hardware], [algorithms], [[actors]] and [[thresholds]]",
        )
    if overrides:
        apply_overrides(doc, overrides, source)
        text += "".join(f"\n{_RECORDED_SET}{o}" for o in overrides) + "\n"
    return _Parser(source).scenario(doc, text)


_RECORDED_SET = "# --set "  # how the scenario text a run keeps records each override, one per line


def recorded_overrides(text: str) -> list[str]:
    """The ``--set`` overrides (``PATH=VALUE``) a scenario's recorded text ends with, as
    :func:`parse_scenario` appends them."""
    tail = []
    for line in reversed(text.rstrip("\n").splitlines()):
        if not line.startswith(_RECORDED_SET):
            break
        tail.append(line.removeprefix(_RECORDED_SET))
    return tail[::-1]


def apply_overrides(doc: dict, overrides, source: str) -> None:
    """Set ``path=value`` items in a parsed scenario document, in place. The path is dotted;
    entries of [[actors]], [[groups]], [[thresholds]] and [[regimes]] are named by their
    ``name``; the value is TOML (a bare word counts as a string). The result is validated
    like any file. Giving one quantity twice, in one form or two (``hardware.rate`` and
    ``hardware.doubling_years``), is refused."""
    given: dict[tuple[int, str], str] = {}  # (table, quantity) -> the override that set it
    for item in overrides:
        path, sep, raw = item.partition("=")
        path, raw = path.strip(), raw.strip()
        field = f"--set {path}" if path else "--set"
        if not sep or not path or any(not part for part in path.split(".")):
            raise ScenarioError(source, field, f"expected PATH=VALUE with a dotted PATH, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            if not raw or any(c in raw for c in "[]{}=\"'\n\\#"):
                raise ScenarioError(
                    source, field, f"{raw!r} is not a TOML value (a number, a string, a list or a {{ ... }} table)"
                ) from None
            value = raw
        target, rest = doc, path.split(".")
        while len(rest) > 1:
            key = rest.pop(0)
            nxt = target.get(key)
            if isinstance(nxt, list):  # an array of tables: the next part(s) name the entry
                for n in range(len(rest) - 1, 0, -1):
                    entry = next((t for t in nxt if isinstance(t, dict) and t.get("name") == ".".join(rest[:n])), None)
                    if entry is not None:
                        target, rest = entry, rest[n:]
                        break
                else:
                    names = ", ".join(str(t.get("name")) for t in nxt if isinstance(t, dict))
                    raise ScenarioError(source, field, f"no entry of [[{key}]] is named {rest[0]!r} (names: {names})")
            elif nxt is None:
                target[key] = target = {}
            elif isinstance(nxt, dict):
                target = nxt
            else:
                raise ScenarioError(source, field, f"'{key}' is a value, not a table, so it has no fields")
        quantity = (id(target), "rate" if rest[0] in _RATE_ALTERNATIVES else rest[0])
        if quantity in given:
            raise ScenarioError(
                source,
                field,
                f"sets the same quantity as --set {given[quantity]} given before; give each quantity once",
            )
        given[quantity] = path
        if rest[0] in _RATE_ALTERNATIVES:  # a rate given another way replaces the file's
            for other in _RATE_ALTERNATIVES - {rest[0]}:
                target.pop(other, None)
        target[rest[0]] = value


# ---------------------------------------------------------------------------------------
# Validation


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def fail(self, field: str, message: str) -> NoReturn:
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
    def dist(
        self, value: Any, field: str, domain: str = "real", transform: str = "identity", closed_form: bool = False
    ) -> Dist:
        """A number or distribution. ``domain`` is 'real', 'nonneg' or 'positive' (of the
        number as written); ``transform`` converts it into engine units. ``closed_form``:
        only the families whose upper tail the kernels compute in closed form (group and
        entrant budgets, jump sizes)."""
        d = self.raw_dist(value, field, domain)
        if closed_form and (d.family not in CLOSED_FORM_FAMILIES or d.truncated):
            written = next((k for k in value if k in _DIST_FAMILIES), d.family) if isinstance(value, dict) else ""
            kind = "a truncated distribution" if d.truncated else f"a {written} distribution"
            self.fail(
                field,
                f"{kind} is not supported here: the kernels treat this number in closed form "
                "(its upper tail or its sum), so it must be fixed, normal, lognormal or uniform (without min/max)",
            )
        return d.with_transform(transform)

    def raw_dist(self, value: Any, field: str, domain: str, in_mixture: bool = False) -> Dist:
        """A number or distribution in the units written (see :meth:`dist`)."""
        if isinstance(value, str):
            return self.shorthand(value, field, domain)
        if not isinstance(value, dict):
            d = Dist("fixed", self.number(value, field))
            self.check_domain(d.a, field, domain)
            return d
        families = [k for k in value if k in _DIST_FAMILIES]
        if len(families) != 1:
            self.fail(
                field,
                "a distribution is a table with exactly one of "
                f"{', '.join(_DIST_FAMILIES)}, e.g. {{ normal = [p5, p95] }}"
                + (f" (got {', '.join(families)})" if families else ""),
            )
        family = families[0]
        sub = _join(field, family)
        extra = _DIST_EXTRA_KEYS[family]
        for key in value:
            if key != family and key not in extra:
                close = difflib.get_close_matches(key, sorted(extra), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                valid = f"valid keys beside {family}: {', '.join(sorted(extra))}" if extra else f"{family} takes none"
                self.fail(_join(field, key), f"unknown key; {hint}{valid}")
        if family == "mixture":
            if in_mixture:
                self.fail(sub, "a mixture inside a mixture; list its parts in the outer mixture instead")
            return self._mixture(value, field, domain)
        bounds = "min" in value or "max" in value
        arg = value[family]
        if family == "beta":
            d = self._beta(arg, sub, domain, value.get("range"), _join(field, "range"), bounds)
        else:
            d = getattr(self, f"_{family}")(arg, sub, domain, bounds)
        if bounds:
            d = self.truncation(d, value, field, domain)
        return d

    def shorthand(self, text: str, field: str, domain: str) -> Dist:
        """``"a to b"``: a and b are the 5th and 95th percentiles of a lognormal if 0 < a,
        else of a normal (as Squiggle's ``a to b``)."""
        m = _TO.fullmatch(text)
        if m is None:
            self.fail(
                field,
                f'must be a number, "a to b" (a 90% interval) or a distribution table such as '
                f"{{ normal = [p5, p95] }}, got {text!r}",
            )
        a, b = float(m[1]), float(m[2])
        if not (math.isfinite(a) and math.isfinite(b)):
            self.fail(field, f"{text!r}: both ends must be finite numbers")
        if not a < b:
            self.fail(field, f"{text!r}: the first number must be below the second (a 90% interval, low to high)")
        if a > 0:
            return self._lognormal([a, b], field, domain, False)
        return self._normal([a, b], field, domain, False)

    def truncation(self, d: Dist, t: dict, field: str, domain: str) -> Dist:
        """``d`` restricted to the table's ``min`` / ``max`` (the units written)."""
        lower = self.number(t["min"], _join(field, "min")) if "min" in t else -math.inf
        upper = self.number(t["max"], _join(field, "max")) if "max" in t else math.inf
        if "min" in t:
            if domain == "positive" and not lower > 0:
                self.fail(_join(field, "min"), f"must be > 0 for this quantity (it is positive), got {lower:g}")
            self.check_domain(lower, _join(field, "min"), domain)
        elif domain != "real" and d.quantile(1e-12) < (0 if domain == "nonneg" else 1e-300):
            self.fail(_join(field, "min"), f"missing; this quantity must be {_DOMAIN_WORDS[domain]}, so give min")
        if lower >= upper:
            self.fail(_join(field, "max"), f"must be above min ({lower:g}), got {upper:g}")
        if d.family == "uniform":  # exact without a truncation: narrow the range
            lo, hi = max(d.a, lower), min(d.b, upper)
            if not lo < hi:
                self.fail(field, f"min/max ({lower:g}, {upper:g}) leave nothing of uniform [{d.a:g}, {d.b:g}]")
            return Dist("uniform", lo, hi)
        try:
            return d.truncate(lower, upper)
        except ValueError as e:
            self.fail(field, f"min/max ({lower:g}, {upper:g}): {e}; bring them inside the distribution's range")

    def _mixture(self, t: dict, field: str, domain: str) -> Dist:
        sub = _join(field, "mixture")
        parts_raw = t["mixture"]
        if not isinstance(parts_raw, list) or len(parts_raw) < 2:
            self.fail(sub, f"must be a list of two or more distributions or numbers, got {_describe(parts_raw)}")
        if len(parts_raw) > 100:
            self.fail(sub, f"{len(parts_raw)} parts; at most 100")
        parts = tuple(self.raw_dist(p, f"{sub}[{i}]", domain, in_mixture=True) for i, p in enumerate(parts_raw))
        if "weights" in t:
            wf = _join(field, "weights")
            ws = t["weights"]
            if not isinstance(ws, list) or len(ws) != len(parts):
                self.fail(wf, f"must be a list of {len(parts)} positive numbers (one per part), got {_describe(ws)}")
            weights = [self.number(w, f"{wf}[{i}]") for i, w in enumerate(ws)]
            for i, w in enumerate(weights):
                if not w > 0:
                    self.fail(f"{wf}[{i}]", f"must be > 0, got {w:g}; leave the part out instead")
        else:
            weights = [1.0] * len(parts)
        total = math.fsum(weights)
        return Dist("mixture", 0.0, weights=tuple(w / total for w in weights), parts=parts)

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

    def _fixed(self, arg, field, domain, bounds=False):
        x = self.number(arg, field)
        self.check_domain(x, field, domain)
        return Dist("fixed", x)

    def _normal(self, arg, field, domain, bounds=False):
        if isinstance(arg, dict):
            t = self.table(arg, field, {"mean", "sd"}, set())
            mean, sd = self.number(t["mean"], _join(field, "mean")), self.number(t["sd"], _join(field, "sd"))
            if sd < 0:
                self.fail(_join(field, "sd"), f"must be >= 0, got {sd}")
        else:
            p5, p95 = self.pair(arg, field, ("p5", "p95"))
            mean, sd = (p5 + p95) / 2, (p95 - p5) / (2 * Z_P95)
        if not bounds and domain != "real" and mean - 6 * sd < (0 if domain == "nonneg" else 1e-300):
            self.fail(
                field,
                f"a normal distribution can draw values {'<' if domain == 'nonneg' else '<='} 0 "
                "here (mean - 6 sd crosses zero); use lognormal or uniform for this quantity, "
                "or truncate it with min",
            )
        return Dist("normal", mean, sd)

    def _lognormal(self, arg, field, domain, bounds=False):
        p5, p95 = self.pair(arg, field, ("p5", "p95"))
        if p5 <= 0:
            self.fail(field, f"lognormal bounds must be > 0, got p5 = {p5:g}")
        lo, hi = math.log10(p5), math.log10(p95)
        return Dist("lognormal", (lo + hi) / 2, (hi - lo) / (2 * Z_P95))

    def _uniform(self, arg, field, domain, bounds=False):
        lo, hi = self.pair(arg, field, ("low", "high"))
        if not bounds:
            self.check_domain(lo, f"{field}[0]", domain)
        return Dist("uniform", lo, hi)

    def triple(self, arg: Any, field: str) -> tuple[float, float, float]:
        """[min, mode, max] of a triangular or PERT distribution."""
        if not isinstance(arg, list) or len(arg) != 3:
            self.fail(field, f"must be a list [min, mode, max], got {_describe(arg)}")
        lo, mode, hi = (self.number(v, f"{field}[{i}]") for i, v in enumerate(arg))
        if not lo < hi:
            self.fail(field, f"min ({lo:g}) must be below max ({hi:g})")
        if not math.isfinite(hi - lo):
            self.fail(field, f"max - min overflows ({lo:g} to {hi:g}); use a narrower range")
        if not lo <= mode <= hi:
            self.fail(field, f"mode ({mode:g}) must lie between min ({lo:g}) and max ({hi:g})")
        return lo, mode, hi

    def _triangular(self, arg, field, domain, bounds=False):
        lo, mode, hi = self.triple(arg, field)
        if not bounds:
            self.check_domain(lo, f"{field}[0]", domain)
        return Dist("triangular", lo, hi, c=mode)

    def _pert(self, arg, field, domain, bounds=False):
        lo, mode, hi = self.triple(arg, field)
        if not bounds:
            self.check_domain(lo, f"{field}[0]", domain)
        span = hi - lo
        return Dist("beta", lo, hi, c=1 + 4 * (mode - lo) / span, d=1 + 4 * (hi - mode) / span)

    def _beta(self, arg, field, domain, scale, scale_field, bounds=False):
        if not isinstance(arg, list) or len(arg) != 2:
            self.fail(field, f"must be a list [alpha, beta] of two shape parameters, got {_describe(arg)}")
        alpha, beta = (self.number(v, f"{field}[{i}]") for i, v in enumerate(arg))
        for i, v in enumerate((alpha, beta)):
            if not 0.01 <= v <= 1e4:
                self.fail(f"{field}[{i}]", f"a beta shape parameter must be in [0.01, 10000], got {v:g}")
        lo, hi = 0.0, 1.0
        if scale is not None:
            if not isinstance(scale, list) or len(scale) != 2:
                self.fail(scale_field, f"must be a list [low, high], got {_describe(scale)}")
            lo, hi = (self.number(v, f"{scale_field}[{i}]") for i, v in enumerate(scale))
            if not lo < hi:
                self.fail(scale_field, f"low ({lo:g}) must be below high ({hi:g})")
            if not math.isfinite(hi - lo):
                self.fail(scale_field, f"high - low overflows ({lo:g} to {hi:g}); use a narrower range")
        if not bounds and domain != "real" and not (lo > 0 if domain == "positive" else lo >= 0):
            self.fail(
                scale_field if scale is not None else field,
                f"this quantity must be {_DOMAIN_WORDS[domain]}, but the beta's range starts at {lo:g}; "
                f"give range = [low, high] with low {_DOMAIN_WORDS[domain]}",
            )
        return Dist("beta", lo, hi, c=alpha, d=beta)

    # -- processes ---------------------------------------------------------------------------
    def process(self, t: dict, field: str, rate_keys: tuple[str, ...]) -> Process:
        """A growth process: rate (OOM/yr, or doubling/halving years, or a factor per year),
        optional decay to a long-run rate, volatility, jumps. Registers every per-trajectory
        number under its dotted path for regime overrides."""
        key = self.one_of(t, field, rate_keys)
        rate_path = _join(field, rate_keys[0])
        for k in rate_keys:
            self.aliases[_join(field, k)] = (rate_path,) + _RATE_FORMS.get(k, ("real", "identity"))
        rate = self.dist(t[key], _join(field, key), *self.aliases[_join(field, key)][1:])
        decay = {
            k: self.dist(t[k], _join(field, k), d) if k in t else None
            for k, d in (("long_run_rate", "real"), ("decay_years", "positive"))
        }
        for k, d in (
            ("long_run_rate", "real"),
            ("decay_years", "positive"),
            ("volatility", "nonneg"),
            ("jumps.per_year", "nonneg"),
        ):
            self.aliases[_join(field, k)] = (_join(field, k), d, "identity")
        if (decay["long_run_rate"] is None) != (decay["decay_years"] is None):
            self.fail(
                _join(field, "decay_years" if decay["decay_years"] is None else "long_run_rate"),
                "missing; a decaying rate needs both long_run_rate (OOM/yr) and decay_years",
            )
        jumps = None
        if "jumps" in t:
            jf = _join(field, "jumps")
            j = self.table(t["jumps"], jf, {"per_year", "size"}, set())
            jumps = Jumps(
                self.dist(j["per_year"], _join(jf, "per_year"), "nonneg"),
                self.dist(j["size"], _join(jf, "size"), closed_form=True),
            )
            if jumps.per_year.quantile(1 - 1e-9) > 1000:
                self.fail(
                    _join(jf, "per_year"), "more than 1000 jumps per year; use volatility for frequent small moves"
                )
        return Process(
            rate=rate,
            volatility=self.dist(t.get("volatility", 0.0), _join(field, "volatility"), "nonneg"),
            jumps=jumps,
            **decay,
        )

    # -- sections ---------------------------------------------------------------------------
    def scenario(self, doc: dict, text: str) -> Scenario:
        self.aliases: dict[str, tuple[str, str, str]] = {}  # set path -> (draw path, domain, transform)
        self.table(
            doc,
            "",
            {"scenario", "hardware", "algorithms", "actors", "thresholds"},
            {"access", "groups", "regimes", "correlations", "counts"},
        )
        s = self.table(
            doc["scenario"],
            "scenario",
            {"name", "start", "horizon", "steps_per_year"},
            {"description", "schema_version"},
        )
        if "schema_version" in s and s["schema_version"] != SCHEMA_VERSION:
            self.fail(
                "scenario.schema_version",
                f"this mcengine reads schema_version {SCHEMA_VERSION}, got {s['schema_version']!r}",
            )
        name = self.string(s["name"], "scenario.name")
        if not _NAME.fullmatch(name):
            self.fail(
                "scenario.name",
                f"{name!r} cannot name a results folder; use 1 to 100 letters, digits, "
                "'-', '_' or '.', starting with a letter or digit",
            )
        description = s.get("description", "")
        if not isinstance(description, str):
            self.fail("scenario.description", f"must be a string, got {_describe(description)}")
        start = self.number(s["start"], "scenario.start")
        horizon = self.number(s["horizon"], "scenario.horizon")
        if horizon <= start:
            self.fail("scenario.horizon", f"must be after scenario.start ({start:g}), got {horizon:g}")
        if horizon - start > 1000:
            self.fail("scenario.horizon", f"at most 1000 years after the start, got {horizon - start:g}")
        spy = s["steps_per_year"]
        if isinstance(spy, bool) or not isinstance(spy, int) or not 1 <= spy <= 10_000:
            self.fail("scenario.steps_per_year", f"must be a whole number from 1 to 10000, got {_describe(spy)}")
        steps = (horizon - start) * spy
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
            self.fail(
                "scenario.horizon",
                f"horizon - start must be a whole number of steps: ({horizon:g} - {start:g}) x {spy} = {steps:g}",
            )
        if steps > 1_000_000:
            self.fail("scenario.steps_per_year", f"{round(steps)} steps from start to horizon; at most 1,000,000")

        hardware = self.factor(doc["hardware"], "hardware", ("rate", "doubling_years", "factor_per_year"), set())
        algorithms = self.factor(
            doc["algorithms"], "algorithms", ("rate", "halving_years", "factor_per_year"), {"catch_up_rate"}
        )
        catch_up = self.dist(doc["algorithms"].get("catch_up_rate", 0.0), "algorithms.catch_up_rate", "nonneg")
        self.aliases["algorithms.catch_up_rate"] = ("algorithms.catch_up_rate", "nonneg", "identity")
        actors = self.actors(doc["actors"], "actors")
        groups = self.actors(doc["groups"], "groups") if "groups" in doc else ()
        everyone = actors + groups
        self.unique([a.name for a in everyone], "groups", "actors and groups")
        self.check_releases(everyone)
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
        at_least = self.counts(doc["counts"]) if "counts" in doc else DEFAULT_AT_LEAST
        scenario = Scenario(
            name,
            description,
            start,
            horizon,
            spy,
            hardware,
            algorithms,
            everyone,
            thresholds,
            budgets,
            catch_up,
            count_at_least=at_least,
            source=self.source,
            text=text,
        )
        regimes = self.regimes(doc["regimes"], scenario) if "regimes" in doc else ()
        self.check_moves(scenario, regimes)
        correlations = self.correlations(doc["correlations"], scenario) if "correlations" in doc else ()
        return dataclasses.replace(
            scenario, regimes=regimes, correlations=correlations, warnings=self.fixed_by_regimes(correlations, regimes)
        )

    def check_moves(self, scenario: Scenario, regimes: tuple[Regime, ...]):
        """Refuse a rate, volatility or jump size that can move a level by more than
        MAX_MOVE OOM over the scenario's years (in any regime, at the 1e-9 quantiles):
        the kernels keep levels as float32 log10 numbers, which then no longer resolve a
        step (and overflow to infinity near 3e38)."""
        years = scenario.horizon - scenario.start
        specs = lambda path, d: (
            [(path, d)]
            + [(f'regimes.{r.name}.set."{path}"', r.overrides[path]) for r in regimes if path in r.overrides]
        )
        extreme = lambda d: max(abs(d.quantile(1e-9)), abs(d.quantile(1 - 1e-9)))
        for path, d in scenario.draws().items():
            per = path.rsplit(".", 1)[1]
            for field, spec in specs(path, d):
                if per in ("rate", "growth", "long_run_rate", "catch_up_rate", "per_year_growth", "relative_growth"):
                    move, unit = extreme(spec) * years, "OOM/yr"
                elif per == "volatility":
                    move, unit = 6.0 * extreme(spec) * math.sqrt(years), "OOM/sqrt(yr)"
                else:
                    break
                if move > MAX_MOVE:
                    self.fail(field, _too_far(move, years, unit))
        processes = [("hardware", scenario.hardware.process), ("algorithms", scenario.algorithms.process)]
        for prefix, process in processes + [(a.path, a.process) for a in scenario.actors]:
            jumps = process.jumps
            if jumps is None:
                continue
            per_year = max(d.quantile(1 - 1e-9) for _, d in specs(f"{prefix}.jumps.per_year", jumps.per_year))
            move = extreme(jumps.size) * (per_year * years + 10.0)
            if move > MAX_MOVE:
                self.fail(f"{prefix}.jumps.size", _too_far(move, years, "OOM a jump"))

    def fixed_by_regimes(self, correlations, regimes: tuple[Regime, ...]) -> tuple[str, ...]:
        """A warning for each correlated number that a regime sets to a fixed number: in that
        regime the correlation does nothing."""
        out = []
        for i, (a, b, _) in enumerate(correlations, start=1):
            for x in (a, b):
                fixed_in = [r.name for r in regimes if x in r.overrides and not r.overrides[x].is_random]
                if fixed_in:
                    out.append(
                        f"{self.source}: correlations.pairs[{i}]: '{x}' is set to a fixed number by regime "
                        f"{', '.join(repr(n) for n in fixed_in)}, so the correlation has no effect there; "
                        "give it a distribution in the regime or drop the pair"
                    )
        return tuple(out)

    def counts(self, value: Any) -> tuple[int, ...]:
        """The [counts] table: ``at_least``, the k of the P(count >= k) columns."""
        t = self.table(value, "counts", set(), {"at_least"})
        ks = t.get("at_least", list(DEFAULT_AT_LEAST))
        if (
            not isinstance(ks, list)
            or not ks
            or not all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 10**12 for k in ks)
        ):
            self.fail(
                "counts.at_least", f"must be a list of whole numbers >= 1, e.g. [1, 10, 100], got {_describe(ks)}"
            )
        if sorted(set(ks)) != ks:
            self.fail("counts.at_least", f"must be increasing, without repeats; got {ks}")
        if len(ks) > 100:
            self.fail("counts.at_least", f"{len(ks)} values; at most 100")
        return tuple(ks)

    def factor(self, value: Any, field: str, rate_keys: tuple[str, ...], extra: set[str]) -> Factor:
        t = self.table(value, field, {"initial"}, set(rate_keys) | _PROCESS_KEYS | extra)
        initial = self.dist(t["initial"], _join(field, "initial"), "positive", "log10")
        self.aliases[_join(field, "initial")] = (_join(field, "initial"), "positive", "log10")
        return Factor(initial=initial, process=self.process(t, field, rate_keys))

    def actors(self, value: Any, section: str) -> tuple[Actor, ...]:
        group = section == "groups"
        if not isinstance(value, list) or (not value and not group):
            self.fail(section, f"must be one or more [[{section}]] tables")
        out: list[Actor] = []
        for i, raw in enumerate(value, start=1):
            field = f"{section}[{i}]"
            required = {"name", "budget"} | ({"count", "ranks"} if group else set())
            optional = (
                _RATE_KEYS
                | _PROCESS_KEYS
                | {"cap", "algo_lag", "hw_lag", "hw_penalty", "access_via", "publication_delay"}
                | ({"entry"} if group else {"releases_weights", "release_lag"})
            )
            t = self.table(raw, field, required, optional)
            name = self.string(t["name"], _join(field, "name"))
            if name in [a.name for a in out]:
                self.fail(_join(field, "name"), f"'{name}' is used twice; names must be unique")
            field = f"{section}.{name}"
            lags = {}
            for key in ("algo_lag", "hw_lag"):
                lag = self.number(t.get(key, 0.0), _join(field, key))
                if not 0 <= lag <= 100:
                    self.fail(_join(field, key), f"must be a fixed number of years in [0, 100], got {lag:g}")
                lags[key] = lag
            count, ranks, entry = 1, (1,), None  # type: tuple[int, tuple[int, ...], Entry | None]
            if group:
                entry = self.entry(t["entry"], _join(field, "entry")) if "entry" in t else None
                count, ranks = self.count_and_ranks(t, field, entry is not None)
            budget = self.dist(t["budget"], _join(field, "budget"), "positive", "log10", closed_form=group)
            if not group:
                self.aliases[_join(field, "budget")] = (_join(field, "budget"), "positive", "log10")
            releases = t.get("releases_weights", False)
            if not isinstance(releases, bool):
                self.fail(_join(field, "releases_weights"), f"must be true or false, got {_describe(releases)}")
            if "release_lag" in t and not releases:
                self.fail(_join(field, "release_lag"), "only for an actor with releases_weights = true")
            access_via = t.get("access_via", [])
            if not isinstance(access_via, list) or not all(isinstance(x, str) for x in access_via):
                self.fail(_join(field, "access_via"), f"must be a list of actor names, got {_describe(access_via)}")
            for key, domain, transform in (
                ("cap", "positive", "log10"),
                ("hw_penalty", "real", "identity"),
                ("release_lag", "nonneg", "identity"),
                ("publication_delay", "nonneg", "identity"),
            ):
                self.aliases[_join(field, key)] = (_join(field, key), domain, transform)
            actor = Actor(
                name=name,
                budget=budget,
                process=self.process(t, field, ("growth", "factor_per_year", "doubling_years")),
                cap=self.dist(t["cap"], _join(field, "cap"), "positive", "log10") if "cap" in t else None,
                hw_penalty=self.dist(t.get("hw_penalty", 0.0), _join(field, "hw_penalty")),
                count=count,
                ranks=ranks,
                releases_weights=releases,
                release_lag=(
                    self.dist(t.get("release_lag", 0.0), _join(field, "release_lag"), "nonneg") if releases else None
                ),
                access_via=tuple(access_via),
                entry=entry,
                publication_delay=(
                    self.dist(t["publication_delay"], _join(field, "publication_delay"), "nonneg")
                    if "publication_delay" in t
                    else None
                ),
                **lags,
            )
            if name == FRONTIER and (
                group or actor.algo_lag or actor.hw_lag or actor.access_via or actor.hw_penalty != Dist("fixed", 0.0)
            ):
                self.fail(
                    field,
                    "the frontier is a single actor with no lags, no hardware penalty and "
                    "no access_via; remove them or set them to 0",
                )
            out.append(actor)
        if not group and FRONTIER not in [a.name for a in out]:
            self.fail(
                "actors",
                f"no actor is named '{FRONTIER}'; exactly one must be "
                f"(actors: {', '.join(sorted(a.name for a in out))})",
            )
        return tuple(out)

    def count_and_ranks(self, t: dict, field: str, entry: bool) -> tuple[int, tuple[int, ...]]:
        """A group's initial member count and its reported ranks. With entrants the count
        may be 0 and a rank may exceed it (members who join later count too)."""
        count = t["count"]
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        low = 0 if entry else 1
        if isinstance(count, bool) or not isinstance(count, int) or not low <= count <= 10**12:
            self.fail(_join(field, "count"), f"must be a whole number from {low} to 1e12, got {_describe(count)}")
        ranks = t["ranks"]
        if (
            not isinstance(ranks, list)
            or not ranks
            or not all(isinstance(k, int) and not isinstance(k, bool) for k in ranks)
        ):
            self.fail(
                _join(field, "ranks"), f"must be a list of whole numbers, e.g. [1, 10, 100], got {_describe(ranks)}"
            )
        most = MAX_ENTRY_RANK if entry else count
        if sorted(set(ranks)) != ranks or ranks[0] < 1 or ranks[-1] > most:
            limit = f"{most:,} (a group with entrants)" if entry else f"count ({count})"
            self.fail(_join(field, "ranks"), f"must be increasing, without repeats, from 1 to {limit}; got {ranks}")
        if len(ranks) > 1000:
            self.fail(_join(field, "ranks"), f"{len(ranks)} ranks; at most 1000")
        return count, tuple(ranks)

    def entry(self, value: Any, field: str) -> Entry:
        """A group's [groups.entry] table: members joining over time."""
        t = self.table(value, field, {"per_year", "budget"}, {"per_year_growth", "per_year_factor", "relative_growth"})
        if "per_year_growth" in t and "per_year_factor" in t:
            self.fail(_join(field, "per_year_factor"), "given with per_year_growth; give one of them")
        growth_key = "per_year_factor" if "per_year_factor" in t else "per_year_growth"
        growth_form = ("positive", "log10") if growth_key == "per_year_factor" else ("real", "identity")
        for key, domain, transform in (("per_year", "nonneg", "identity"), ("relative_growth", "real", "identity")):
            self.aliases[_join(field, key)] = (_join(field, key), domain, transform)
        for key in ("per_year_growth", "per_year_factor"):
            self.aliases[_join(field, key)] = (_join(field, "per_year_growth"),) + (
                ("positive", "log10") if key == "per_year_factor" else ("real", "identity")
            )
        per_year = self.dist(t["per_year"], _join(field, "per_year"), "nonneg")
        if per_year.quantile(1 - 1e-9) > 1e9:
            self.fail(_join(field, "per_year"), "more than 1e9 entrants per year; at most 1e9")
        return Entry(
            per_year=per_year,
            per_year_growth=self.dist(t.get(growth_key, 0.0), _join(field, growth_key), *growth_form),
            budget=self.dist(t["budget"], _join(field, "budget"), "positive", "log10", closed_form=True),
            relative_growth=self.dist(t.get("relative_growth", 0.0), _join(field, "relative_growth")),
        )

    def check_releases(self, everyone: tuple[Actor, ...]):
        releasers = {a.name for a in everyone if a.releases_weights}
        for a in everyone:
            for j, via in enumerate(a.access_via):
                if via not in releasers:
                    self.fail(
                        f"{a.path}.access_via[{j + 1}]",
                        f"'{via}' is not an actor with releases_weights = "
                        f"true (releasing actors: {', '.join(sorted(releasers)) or 'none'})",
                    )
                if via == a.name:
                    self.fail(f"{a.path}.access_via[{j + 1}]", "an actor cannot get access through itself")
            if len(set(a.access_via)) != len(a.access_via):
                self.fail(f"{a.path}.access_via", "names the same actor twice")

    def unique(self, names: list[str], field: str, what: str):
        seen = set()
        for n in names:
            if n in seen:
                self.fail(field, f"'{n}' is used twice among {what}; names must be unique")
            seen.add(n)

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
        if len(out) > 10_000:
            self.fail("thresholds", f"{len(out)} thresholds; at most 10,000")
        return tuple(out)

    def regimes(self, value: Any, scenario: Scenario) -> tuple[Regime, ...]:
        if not isinstance(value, list) or not value:
            self.fail("regimes", "must be one or more [[regimes]] tables")
        base = scenario.draws()
        out: list = []
        for i, raw in enumerate(value, start=1):
            field = f"regimes[{i}]"
            t = self.table(raw, field, {"name", "weight"}, {"set"})
            name = self.string(t["name"], _join(field, "name"))
            if name in [r.name for r in out]:
                self.fail(_join(field, "name"), f"'{name}' is used twice; names must be unique")
            field = f"regimes.{name}"
            weight = self.number(t["weight"], _join(field, "weight"))
            if not 0 < weight <= 1:
                self.fail(_join(field, "weight"), f"must be in (0, 1], got {weight:g}")
            overrides = {}
            sets = self.table(t.get("set", {}), _join(field, "set"), set(), set(self.aliases))
            for path, v in sets.items():
                draw_path, domain, transform = self.aliases[path]
                sub = _join(_join(field, "set"), f'"{path}"')
                if draw_path.endswith(".jumps.per_year") and draw_path not in base:
                    self.fail(
                        sub,
                        f"{draw_path.rsplit('.', 1)[0]} is not in the scenario; define it there "
                        "(per_year = 0 and a size) to vary it by regime",
                    )
                if draw_path.endswith(".release_lag") and draw_path not in base:
                    self.fail(
                        sub,
                        f"{draw_path.rsplit('.', 1)[0]} does not release weights; "
                        "release_lag applies only with releases_weights = true",
                    )
                if draw_path in overrides:
                    self.fail(sub, f"sets {draw_path} twice")
                overrides[draw_path] = self.dist(v, sub, domain, transform)
            for prefix in {p.rsplit(".", 1)[0] for p in overrides if p.endswith((".long_run_rate", ".decay_years"))}:
                for key in ("long_run_rate", "decay_years"):
                    path = f"{prefix}.{key}"
                    if path not in overrides and path not in base:
                        self.fail(
                            _join(field, "set"),
                            f"sets a decaying rate for {prefix} without {path}; "
                            "give both long_run_rate and decay_years",
                        )
            out.append(Regime(name, weight, overrides))
        total = sum(r.weight for r in out)
        if abs(total - 1.0) > 1e-9:
            self.fail("regimes", f"weights sum to {total:g}; they must sum to 1")
        return tuple(out)

    def correlations(self, value: Any, scenario: Scenario) -> tuple[tuple[str, str, float], ...]:
        t = self.table(value, "correlations", {"pairs"}, set())
        if not isinstance(t["pairs"], list):
            self.fail("correlations.pairs", "must be a list of [path, path, rank correlation]")
        random_draws = {p for p, d in scenario.draws().items() if d.is_random}
        out, seen = [], set()
        for i, pair in enumerate(t["pairs"], start=1):
            field = f"correlations.pairs[{i}]"
            if not (isinstance(pair, list) and len(pair) == 3 and all(isinstance(x, str) for x in pair[:2])):
                self.fail(field, f'must be ["path.one", "path.two", rank correlation], got {_describe(pair)}')
            a, b = (self.aliases.get(x, (x,))[0] for x in pair[:2])
            rho = self.number(pair[2], f"{field}[3]")
            for x in (a, b):
                if x not in random_draws:
                    close = difflib.get_close_matches(x, sorted(random_draws), n=1)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    self.fail(
                        field,
                        f"'{x}' is not an uncertain per-trajectory number of this scenario; {hint}"
                        f"correlate distributions such as {', '.join(sorted(random_draws)[:3])}",
                    )
            if a == b:
                self.fail(field, "correlates a number with itself")
            if not -1 < rho < 1:
                self.fail(f"{field}[3]", f"must be strictly between -1 and 1, got {rho:g}")
            if frozenset((a, b)) in seen:
                self.fail(field, f"the pair {a}, {b} is given twice")
            seen.add(frozenset((a, b)))
            out.append((a, b, rho))
        try:
            correlation_matrix(tuple(out))
        except ValueError:
            names = "; ".join(f"{a} ~ {b} = {r:g}" for a, b, r in out)
            self.fail(
                "correlations.pairs",
                f"these rank correlations cannot hold together (the matrix is not "
                f"positive definite): {names}; weaken some of them",
            )
        return tuple(out)


def correlation_matrix(pairs: tuple[tuple[str, str, float], ...]):
    """The paths involved and the Cholesky factor of the normal-copula correlation matrix
    (Pearson ``2 sin(pi rho_s / 6)`` for a Spearman rank correlation ``rho_s``). Raises
    ValueError if the matrix is not positive definite."""
    import numpy as np

    paths = sorted({p for a, b, _ in pairs for p in (a, b)})
    m = np.eye(len(paths))
    for a, b, rho in pairs:
        i, j = paths.index(a), paths.index(b)
        m[i, j] = m[j, i] = 2 * math.sin(math.pi * rho / 6)
    try:
        return paths, np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        raise ValueError("not positive definite") from None


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a scenario name: one safe path component
_RATE_FORMS = {
    "doubling_years": ("positive", "log2_over"),
    "halving_years": ("positive", "log2_over"),
    "factor_per_year": ("positive", "log10"),
}
_RATE_KEYS = {"growth", "factor_per_year", "doubling_years"}
_RATE_ALTERNATIVES = {"rate", "growth", "doubling_years", "halving_years", "factor_per_year"}
_PROCESS_KEYS = {"volatility", "long_run_rate", "decay_years", "jumps"}
_DIST_FAMILIES = ("fixed", "normal", "lognormal", "uniform", "triangular", "pert", "beta", "mixture")
_DIST_EXTRA_KEYS = {  # the keys a distribution table may have beside its family
    "fixed": set(),
    "normal": {"min", "max"},
    "lognormal": {"min", "max"},
    "uniform": {"min", "max"},
    "triangular": {"min", "max"},
    "pert": {"min", "max"},
    "beta": {"range", "min", "max"},
    "mixture": {"weights"},
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TO = re.compile(rf"\s*({_NUMBER})\s+to\s+({_NUMBER})\s*")
_DOMAIN_WORDS = {"positive": "> 0", "nonneg": ">= 0"}


def _too_far(move: float, years: float, unit: str) -> str:
    return (
        f"can move a level by up to {move:.3g} OOM over the scenario's {years:g} years; the engine keeps "
        f"levels as float32 log10 numbers, exact enough only within {MAX_MOVE:.0e} OOM: give a smaller value ({unit})"
    )


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", str: "a string", list: "a list", dict: "a table"}.get(type(value))
    if kind is None:
        return repr(value)
    return f"{kind} ({value!r})" if kind != "a table" else kind
