"""Property test: random and malformed scenario files and --set values either run or
exit with status 2 and one line on stderr; never a traceback, never a hang, and never
exit status 1 (an internal error: a bug in mcengine, not a mistake of the user's).

Inputs start from a small valid scenario and are mutated: values replaced by anything
(NaN, infinities, huge or negative numbers, strings, lists, tables, bogus distributions),
keys deleted or misspelt, entries duplicated, the TOML text itself corrupted, and --set
overrides with random paths and values."""

from __future__ import annotations

import copy

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mcengine.cli import main  # noqa: E402

from .conftest import scenario_toml  # noqa: E402

EXAMPLES = 200

BASE = dict(
    scenario={"name": "h", "start": 2025.0, "horizon": 2027.0, "steps_per_year": 2},
    hardware={"initial": 1e18, "rate": {"normal": [0.1, 0.2]}, "volatility": 0.05},
    algorithms={"initial": 1.0, "rate": 0.4},
    actors=[
        {"name": "frontier", "budget": {"lognormal": [1e8, 1e9]}, "growth": 0.3, "cap": 1e12},
        {"name": "b", "budget": 1e8, "growth": 0.3, "algo_lag": 0.5},
    ],
    thresholds=[{"name": "x", "flop": 1e27, "kind": "effective"}],
    access={"budgets": [1e6]},
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**15), 10**15),
    st.sampled_from([0, -1, 1e300, -1e-300, 2**63, 0.5, 12, 1e6, 2045.0]),
)
leaf = st.one_of(numbers, st.text(max_size=8), st.booleans(), st.lists(numbers, max_size=3))
dists = st.dictionaries(
    st.sampled_from(
        ["fixed", "normal", "lognormal", "uniform", "beta", "mean", "triangular", "pert", "mixture"]
        + ["min", "max", "range", "weights"]
    ),
    st.one_of(
        leaf,
        st.fixed_dictionaries({"mean": numbers, "sd": numbers}),
        st.lists(st.one_of(numbers, st.sampled_from(["1 to 2", "-1 to 1", "2 to 1"])), max_size=4),
    ),
    max_size=3,
)
values = st.one_of(leaf, dists)
KEYS = [
    "name",
    "start",
    "horizon",
    "steps_per_year",
    "initial",
    "rate",
    "volatility",
    "budget",
    "growth",
    "cap",
    "algo_lag",
    "hw_lag",
    "hw_penalty",
    "flop",
    "kind",
    "budgets",
    "doubling_years",
    "jumps",
    "count",
    "ranks",
    "long_run_rate",
    "decay_years",
    "releases_weights",
    "access_via",
    "volatilty",
    "weight",
]


def tables(doc):
    """Every table of the document (sections and array entries)."""
    out = []
    for v in doc.values():
        if isinstance(v, dict):
            out.append(v)
        elif isinstance(v, list):
            out += [t for t in v if isinstance(t, dict)]
    return out


@st.composite
def hostile(draw):
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "set", "delete", "add", "duplicate", "drop_section"]))
        if not tables(doc):
            break
        t = draw(st.sampled_from(tables(doc)))
        if op == "set" and t:
            t[draw(st.sampled_from(sorted(t)))] = draw(values)
        elif op == "delete" and t:
            del t[draw(st.sampled_from(sorted(t)))]
        elif op == "add":
            t[draw(st.sampled_from(KEYS))] = draw(values)
        elif op == "duplicate" and isinstance(doc.get("actors"), list) and doc["actors"]:
            doc["actors"].append(copy.deepcopy(draw(st.sampled_from(doc["actors"]))))
        elif op == "drop_section" and len(doc) > 1:
            del doc[draw(st.sampled_from(sorted(doc)))]
    try:
        text = scenario_toml(
            **{k: doc.get(k) for k in ("scenario", "hardware", "algorithms", "actors", "thresholds", "access")}
        )
    except (AttributeError, TypeError):  # a section replaced by a non-table: write it raw
        text = "\n".join(f"{k} = {v!r}" for k, v in doc.items())
    if draw(st.booleans()) and draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=5)) + text[at:]
    sets = draw(
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "hardware.rate",
                        "actors.b.budget",
                        "scenario.horizon",
                        "thresholds.x.flop",
                        "actors.zz.cap",
                        "algorithms",
                        "",
                        "hardware.jumps.per_year",
                        "scenario.steps_per_year",
                    ]
                ),
                st.one_of(st.text(max_size=6), numbers.map(repr)),
            ),
            max_size=2,
        )
    )
    return text, [f"{p}={v}" for p, v in sets]


@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
@given(case=hostile())
def test_hostile_input_runs_or_fails_with_one_line(case, tmp_path_factory, capsys):
    text, sets = case
    folder = tmp_path_factory.mktemp("h")
    path = folder / "s.toml"
    try:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8", errors="replace"))
    args = ["run", str(path), "-n", "16", "-q", "--out", str(folder / "out")]
    for s in sets:
        args += ["--set", s]
    code = 0
    try:
        main(args)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    hypothesis.event(f"exit {code}")
    assert "Traceback" not in err
    if code == 0:
        assert sorted(p.name for p in (folder / "out").iterdir()) == [
            ".mcengine",
            "access.parquet",
            "counts.parquet",
            "events.parquet",
            "paths.parquet",
        ]
    else:
        assert code != 1, f"an internal error (a bug), not a user error: {err}"
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
        assert not (folder / "out").exists()
