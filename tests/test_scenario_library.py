"""The built-in scenario library (``scenarios/*.toml``): every file validates, is listed as a
built-in, runs, and cites a source for every number it contains.

THE SOURCE-COMMENT RULE (checked by :func:`unsourced_numbers`)

A *statement* is one ``key = value`` assignment; a value that opens ``[`` or ``{`` and
closes on a later line (e.g. ``pairs = [`` ... ``]``) makes one statement of all its lines.
A statement is *numeric* if its value contains a numeric literal outside quoted strings
(integers, floats, exponents, ``inf``, ``nan``; digits inside strings, such as
``name = "1e28"`` or a description mentioning "$1M", do not count).

Every numeric statement must be *sourced*:

1. its first line carries a trailing ``# comment`` with some text, or
2. the line directly above its first line is a comment line (``# text``, not a bare ``#``).
   No blank line may come between; because a table header is a line of its own, such a
   comment is necessarily inside the same table as the assignment;
3. for a multi-line value whose first line is not sourced by 1 or 2, every continuation
   line that holds a number must carry its own trailing comment.

Exempt: in the ``[scenario]`` table, ``name``, ``description`` and ``schema_version``
(file metadata, not model parameters), and ``name`` in ``[[thresholds]]``.

What the rule cannot check is that the comment actually names a source and a derivation;
that is for review. It catches the mechanical failure: a number added or changed with no
comment next to it.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import mcengine

from .conftest import ROOT

SCENARIO_DIR = ROOT / "scenarios"
FILES = sorted(SCENARIO_DIR.glob("*.toml"))
EXEMPT = {("scenario", "name"), ("scenario", "description"), ("scenario", "schema_version"), ("thresholds", "name")}
_NUMBER = re.compile(r"(?<![\w.])[+-]?(?:\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?|inf|nan)(?![\w])")


def _mask_line(line: str, open_string: str | None) -> tuple[str, str | None, str | None]:
    """Split one physical line into (code, comment, open_string).

    ``code`` is the line up to a comment, with the contents of strings replaced by
    spaces (so digits inside strings are not numbers and ``#`` inside strings is not a
    comment); ``comment`` is the text after ``#`` (None if there is no comment);
    ``open_string`` is the delimiter of a multi-line string still open at the end of the
    line (``'''`` or ``\"\"\"``), or None."""
    out, i, n = [], 0, len(line)
    quote = open_string
    while i < n:
        if quote is not None:  # inside a string: look for its end
            if quote in ('"', '"""') and line[i] == "\\":
                out.append("  ")
                i += 2
                continue
            if line.startswith(quote, i):
                out.append(quote)
                i += len(quote)
                quote = None
                continue
            out.append(" ")
            i += 1
            continue
        c = line[i]
        if c == "#":
            return "".join(out), line[i + 1 :], None
        for q in ('"""', "'''", '"', "'"):
            if line.startswith(q, i):
                quote = q
                out.append(q)
                i += len(q)
                break
        else:
            out.append(c)
            i += 1
    if quote in ('"', "'"):  # a single-line string cannot stay open: treat as closed
        quote = None
    return "".join(out), None, quote


def _depth(code: str) -> int:
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")


def unsourced_numbers(text: str) -> list[tuple[int, str, str]]:
    """(line number, table, key) of every numeric statement in scenario TOML ``text``
    that has no source comment under the rule in this module's docstring. Table names
    are given without brackets (``actors`` for ``[[actors]]``)."""
    problems: list[tuple[int, str, str]] = []
    table = ""
    prev_comment = False  # the previous physical line is a comment line with text
    open_string = None
    stmt = None  # [first line, key, number on first line, sourced, uncommented continuation lines with numbers]
    depth = 0

    def finish():
        line_no, key, numeric_first, sourced, loose = stmt
        if (table, key) in EXEMPT or sourced:
            return
        if numeric_first:
            problems.append((line_no, table, key))
        problems.extend((ln, table, key) for ln in loose)

    for line_no, raw in enumerate(text.splitlines(), start=1):
        in_string_before = open_string is not None
        code, comment, open_string = _mask_line(raw, open_string)
        has_comment = comment is not None and comment.strip() != ""
        if stmt is not None:  # continuation of a multi-line value
            if _NUMBER.search(code) and not has_comment:
                stmt[4].append(line_no)
            depth += _depth(code)
            if depth <= 0 and open_string is None:
                finish()
                stmt, depth = None, 0
            prev_comment = False
            continue
        if in_string_before:  # inside a multi-line string that is not a value we track
            prev_comment = False
            continue
        stripped = code.strip()
        if not stripped:
            prev_comment = comment is not None and has_comment
            continue
        if stripped.startswith("["):  # [table] or [[array of tables]]
            table = stripped.strip("[] \t")
            prev_comment = False
            continue
        eq = code.find("=")
        key = raw[:eq].strip().strip('"').strip("'") if eq >= 0 else stripped
        value = code[eq + 1 :] if eq >= 0 else ""
        stmt = [line_no, key, bool(_NUMBER.search(value)), has_comment or prev_comment, []]
        depth = _depth(value)
        if depth <= 0 and open_string is None:
            finish()
            stmt, depth = None, 0
        prev_comment = False
    if stmt is not None:
        finish()
    return problems


# ---------------------------------------------------------------------------------------
# The checker itself


SOURCED = """\
[scenario]
schema_version = 1
name = "t-1e28"
description = "2025-2045, $1M budgets"
# start: a source
start = 2025.0
horizon = 2045.0  # end: a source
# monthly steps: a source
steps_per_year = 12

[[thresholds]]
name = "1e28"
# round-number grid
flop = 1e28
kind = "effective"

[correlations]
# judgement: why these are correlated
pairs = [
    ["a.b", "c.d", 0.4],
    ["e.f", "g.h", 0.6],
]
other = [
    "x",
    0.5,  # judgement: a number on its own line, with its own comment
]
"""


def test_checker_accepts_sourced_numbers_and_ignores_strings():
    assert unsourced_numbers(SOURCED) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[hardware]\ninitial = 1e18\n", [(2, "hardware", "initial")]),
        # a comment separated by a blank line does not count
        ("[hardware]\n# a source\n\nrate = 0.12\n", [(4, "hardware", "rate")]),
        # a bare '#' is not a source
        ("[hardware]\n#\nrate = 0.12\n", [(3, "hardware", "rate")]),
        # a comment above the table header belongs to the previous table
        ("[scenario]\n# a source\n[[actors]]\ngrowth = 0.3\n", [(4, "actors", "growth")]),
        # numbers inside distributions and inline tables count
        ('[[actors]]\nname = "x"\nbudget = { lognormal = [1e7, 1e8] }\n', [(3, "actors", "budget")]),
        # one comment covers one statement only
        ("[[actors]]\n# a source\nalgo_lag = 0.5\nhw_lag = 1.0\n", [(4, "actors", "hw_lag")]),
        # an unsourced multi-line value: each line holding a number is reported
        (
            '[correlations]\npairs = [\n  ["a", "b", 0.4],\n  ["c", "d", 0.5],  # a source\n]\n',
            [(3, "correlations", "pairs")],
        ),
        # [scenario] start is a parameter, not metadata
        ('[scenario]\nname = "x"\nstart = 2025.0\n', [(3, "scenario", "start")]),
        # a group's [groups.entry] sub-table is checked like any table
        (
            '[[groups]]\nname = "organisations"\n# a source\ncount = 100\n[groups.entry]\nper_year = 10\n',
            [(6, "groups.entry", "per_year")],
        ),
        # a sub-table header ends the comment above it: it does not source the first key below
        (
            "[[groups]]\n# a source\n[groups.entry]\nper_year_growth = { normal = [0.0, 0.25] }\n",
            [(4, "groups.entry", "per_year_growth")],
        ),
        # a '#' inside a string is not a comment
        ('[scenario]\nstart = 2025.0\ndescription = "# not a comment"\n', [(2, "scenario", "start")]),
    ],
)
def test_checker_reports_unsourced_numbers(text, expected):
    assert unsourced_numbers(text) == expected


def test_checker_flags_an_unsourced_number_in_a_real_file():
    """Removing one source comment from a library file makes the check fail there."""
    lines = (SCENARIO_DIR / "baseline.toml").read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("volatility = "))  # [hardware]
    first = at
    while lines[first - 1].lstrip().startswith("#"):  # the whole comment block above it
        first -= 1
    assert first < at and "#" not in lines[at]
    broken = lines[:first] + lines[at:]
    assert unsourced_numbers("\n".join(broken) + "\n") == [(first + 1, "hardware", "volatility")]


# ---------------------------------------------------------------------------------------
# The library


def test_library_is_not_empty_and_matches_the_builtins():
    assert FILES, f"no scenario files in {SCENARIO_DIR}"
    assert {p.stem for p in FILES} <= set(mcengine.builtin_names())


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_number_has_a_source_comment(path: Path):
    problems = unsourced_numbers(path.read_text(encoding="utf-8"))
    assert not problems, "numbers without a source comment:\n" + "\n".join(
        f"{path.name}:{line}: [{table}] {key}" for line, table, key in problems
    )


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_file_validates_and_is_builtin(path: Path):
    scenario = mcengine.load_scenario(path)  # raises ScenarioError if invalid
    assert scenario.name == path.stem, "the [scenario] name should be the file name (the built-in name)"
    assert path.stem in mcengine.builtin_names()
    assert mcengine.load_scenario(path.stem).text == scenario.text


_RUN_TEST = "test_every_file_runs"
_COUNTS_TEST = "test_regulatory_thresholds_are_counted"


@pytest.fixture(scope="module")
def runs(request):
    """``mcengine.run(load_scenario(name), trajectories=256, seed=0)`` of every built-in
    whose run test is selected, started together on one thread per core: the time is
    XLA compilation (~10-30 s per scenario on a 2-core CPU), which overlaps across
    threads, and tests/test_commands.py runs the same shapes (-n 256), so that the test
    session's compilation cache serves the one that comes second. Maps the name to a future
    of its Results."""
    paths = {
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) in (_RUN_TEST, _COUNTS_TEST) and item.module is request.module
    }
    # longest first (file size is a fair proxy for compile time), to shorten the wall time
    names = [p.stem for p in sorted(paths, key=lambda p: p.stat().st_size, reverse=True)]
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1)))
    futures = {
        name: pool.submit(lambda n: mcengine.run(mcengine.load_scenario(n), trajectories=256, seed=0), name)
        for name in names
    }
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_file_runs(path: Path, runs):
    scenario = mcengine.load_scenario(path.stem)
    results = runs[path.stem].result()  # re-raises the run's exception, if any
    for table in (results.events, results.paths):
        assert table.num_rows > 0
    assert results.access.num_rows == len(scenario.access_budgets) * len(scenario.thresholds) * (
        1 + len(scenario.regimes)
    )
    frontier_dates = [
        (m, a)
        for m, a in zip(results.events["metric"].to_pylist(), results.events["actor"].to_pylist())
        if m == "t_first" and a == "frontier"
    ]
    assert len(frontier_dates) >= len(scenario.thresholds)


# ---------------------------------------------------------------------------------------
# Populations of organisations and the regulatory compute lines

# The built-ins that ask how capabilities diffuse: each carries a population of
# organisations with entrants, publication delays and the two regulatory lines, so
# that its counts.parquet can be set beside published model-count forecasts.
DIFFUSION = (
    "baseline",
    "compute-efficiency-diffusion",
    "diffusion-channels",
    "export-controls",
    "rand-futures",
    "situational-awareness",
)
REGULATORY_FLOP = (1e25, 1e26)  # EU AI Act systemic-risk presumption; EO 14110 reporting line
ORGANISATIONS = "organisations"


def _has_organisations(path: Path) -> bool:
    return any(a.name == ORGANISATIONS and a.is_group for a in mcengine.load_scenario(path).actors)


def _regulatory(scenario) -> dict[float, str]:
    """{FLOP: threshold name} of the physical thresholds at the regulatory lines."""
    return {t.flop: t.name for t in scenario.thresholds if t.kind == "physical" and t.flop in REGULATORY_FLOP}


def test_diffusion_builtins_exist():
    assert set(DIFFUSION) <= {p.stem for p in FILES}


@pytest.mark.parametrize("name", DIFFUSION)
def test_diffusion_builtins_have_a_growing_population(name: str):
    scenario = mcengine.load_scenario(name)
    groups = {a.name: a for a in scenario.actors if a.is_group}
    assert ORGANISATIONS in groups, f"{name}: no [[groups]] named {ORGANISATIONS!r}"
    assert any(g.entry is not None for g in groups.values()), f"{name}: no group has [groups.entry]"
    assert all(g.publication_delay is not None for g in groups.values()), f"{name}: a group has no publication_delay"
    entry = next(g.entry for g in groups.values() if g.entry is not None)
    assert entry.per_year.is_random, f"{name}: the entry rate should be a distribution (its uncertainty)"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_regulatory_thresholds_are_counted(path: Path, runs):
    """Every built-in with an organisations group has physical thresholds at 1e25 and 1e26
    FLOP, and its counts.parquet has a row for each of them per basis and whole year."""
    if not _has_organisations(path):
        assert path.stem not in DIFFUSION
        pytest.skip("no organisations group")
    scenario = mcengine.load_scenario(path.stem)
    names = _regulatory(scenario)
    assert set(names) == set(REGULATORY_FLOP), (
        f"{path.name}: physical thresholds at {sorted(set(REGULATORY_FLOP) - set(names))} FLOP are missing"
    )
    counts = runs[path.stem].result().counts.to_pylist()
    years = int(scenario.horizon - scenario.start) + 1
    bases = {r["basis"] for r in counts}
    assert "reached" in bases
    for name in names.values():
        rows = [r for r in counts if r["threshold"] == name and r["regime"] is None]
        assert len(rows) == years * len(bases), f"{path.name}: counts of {name}"
        for basis in bases:
            series = sorted((r["year"], r["p50"], r["mean"]) for r in rows if r["basis"] == basis)
            assert [y for y, _, _ in series] == [scenario.start + i for i in range(years)]
            means = [m for _, _, m in series]
            assert all(b >= a for a, b in zip(means, means[1:])), f"{path.name}: {name} {basis} counts fall"
        for k in scenario.count_at_least:
            assert all(0.0 <= r[f"p_at_least_{k}"] <= 1.0 for r in rows)


def _statements(text: str, table: str) -> list[tuple[int, str, bool]]:
    """(line, key, sourced) of every numeric statement in the tables named ``table`` (and
    their sub-tables), by the rule of :func:`unsourced_numbers`."""
    unsourced = {(line, key) for line, t, key in unsourced_numbers(text) if t == table or t.startswith(table + ".")}
    out, current = [], ""
    for i, raw in enumerate(text.splitlines(), start=1):
        code = _mask_line(raw, None)[0].strip()
        if code.startswith("["):
            current = code.strip("[] \t")
        elif (current == table or current.startswith(table + ".")) and "=" in code:
            key = code.split("=", 1)[0].strip()
            if _NUMBER.search(code.split("=", 1)[1]):
                out.append((i, key, (i, key) not in unsourced))
    return out


@pytest.mark.parametrize("name", DIFFUSION)
def test_population_blocks_cite_every_number(name: str):
    """The groups and their entry tables of the diffusion built-ins hold the numbers the
    counts rest on (count, budgets, growth, entry rate and its growth, delays), and each
    carries a source comment."""
    text = (SCENARIO_DIR / f"{name}.toml").read_text(encoding="utf-8")
    stmts = _statements(text, "groups")
    keys = {key for _, key, _ in stmts}
    for key in ("count", "budget", "growth", "publication_delay", "per_year", "per_year_growth"):
        assert key in keys, f"{name}.toml: no numeric {key!r} in [[groups]] / [groups.entry]"
    missing = [(line, key) for line, key, sourced in stmts if not sourced]
    assert not missing, f"{name}.toml: numbers without a source comment: {missing}"
