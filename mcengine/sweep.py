"""Sweeps: one scenario over a grid of overridden values, written as Parquet datasets
(``events/``, ``access/``, ``paths/``, ``counts/``: one file per point) that pandas, polars
and DuckDB read as one table each, with a typed column per swept path.

The swept values are real columns in every file, not hive folder names: a number is read
back as a number by every reader (``df[df.hardware_rate == 0.6]`` works and sorts
numerically), and a value that is not a number (a distribution, a table) gets a readable
label such as ``lognormal_1e9_1e10``.

Points that change only numbers reuse the compiled kernel (the numbers are traced
arguments); a point that changes the scenario's shape compiles once for that shape.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import api, engine, io, report
from .scenario import ScenarioError, load_scenario

MAX_POINTS = 10_000  # grid points of one sweep


def parse_axis(item: str, source: str) -> tuple[str, list[str]]:
    """``path=v1,v2,...`` -> (path, [literal values]). Values are TOML (tables and lists
    allowed, e.g. ``x={ lognormal = [1, 2] },{ lognormal = [2, 4] }``); bare words are strings."""
    path, sep, raw = item.partition("=")
    path = path.strip()
    if not sep or not path or not raw.strip():
        raise ScenarioError(source, f"--set {path}", f"expected PATH=V1,V2,..., got {item!r}")
    try:
        values = tomllib.loads(f"v = [{raw}]")["v"]
        literals = _split_top_level(raw)
        if len(literals) != len(values):
            raise ValueError
    except (tomllib.TOMLDecodeError, ValueError):
        literals = [v.strip() for v in raw.split(",")]
    if any(not v for v in literals) or len(set(literals)) != len(literals):
        raise ScenarioError(source, f"--set {path}", f"values must be distinct and non-empty, got {raw!r}")
    return path, literals


def _split_top_level(raw: str) -> list[str]:
    """Split on commas outside brackets and braces."""
    out, depth, cur = [], 0, ""
    for ch in raw:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + [cur.strip()]


def column_name(path: str) -> str:
    """The column of a swept path: dots and other symbols become underscores."""
    return re.sub(r"[^0-9A-Za-z_]", "_", path)


def sweep(
    scenario: str | Path,
    axes: list[str],
    fixed: tuple[str, ...] = (),
    trajectories: int = 20_000,
    seed: int = 0,
    out: Path = Path("sweep"),
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Run every point of the grid ``axes`` (``path=v1,v2`` items) over ``scenario`` with
    the ``fixed`` overrides, and write the datasets (events, access, paths, counts) into
    ``out`` atomically."""
    source = str(scenario)
    grid = [parse_axis(a, source) for a in axes]
    if not grid:
        raise ScenarioError(source, "--set", "a sweep needs at least one --set PATH=V1,V2,...")
    columns = [column_name(p) for p, _ in grid]
    if len(set(columns)) != len(columns):
        raise ScenarioError(source, "--set", "two swept paths share a column name; sweep each path once")
    size = math.prod(len(vals) for _, vals in grid)
    if size > MAX_POINTS:
        raise ScenarioError(source, "--set", f"the grid has {size:,} points; at most {MAX_POINTS:,}")
    engine.check_trajectories(trajectories)
    points = list(itertools.product(*[[(p, v) for v in vals] for p, vals in grid]))
    scenarios = [load_scenario(scenario, [*fixed, *(f"{p}={v}" for p, v in point)]) for point in points]
    io.check_output_folder(out, overwrite)
    typed = [axis_values(vals) for _, vals in grid]
    with io.atomic_folder(out, overwrite, kind="sweep", scenario=scenarios[0].name) as tmp:
        manifest = []
        for i, (point, s) in enumerate(zip(points, scenarios)):
            if progress:
                progress(f"point {i + 1}/{len(points)}: " + ", ".join(f"{p}={v}" for p, v in point))
            results = api.run(s, trajectories=trajectories, seed=seed)
            values = {c: typed[k][1][grid[k][1].index(v)] for k, (c, (_, v)) in enumerate(zip(columns, point))}
            for name in io.FILES + io.OPTIONAL_FILES:
                table = getattr(results, name)
                if table is None:
                    continue
                table = table.append_column("point", pa.array([i] * table.num_rows, pa.int64()))
                for k, c in enumerate(columns):
                    table = table.append_column(c, pa.array([values[c]] * table.num_rows, typed[k][0]))
                (tmp / name).mkdir(exist_ok=True)
                pq.write_table(table, tmp / name / f"point-{i:05d}.parquet")
            manifest.append(
                {
                    "point": {p: v for p, v in point},
                    "values": values,
                    "compile_seconds": results.metadata["compile_seconds"],
                    "sample_seconds": results.metadata["sample_seconds"],
                    "summary": report.point_summary(results),
                }
            )
        (tmp / "sweep.json").write_text(
            json.dumps(
                {
                    "scenario": source,
                    "fixed": list(fixed),
                    "axes": axes,
                    "columns": dict(zip(columns, (p for p, _ in grid))),
                    "seed": seed,
                    "trajectories": trajectories,
                    "points": manifest,
                },
                indent=1,
            )
        )
    return Path(out)


def axis_values(literals: list[str]) -> tuple[pa.DataType, list]:
    """The column type and values of one swept path: int64 when every value is a whole
    number written without a point or exponent, float64 when every value is a number, bool
    for true/false, otherwise strings (words as written; tables and lists as a readable
    label such as ``lognormal_1e9_1e10``, made distinct if two would coincide)."""
    parsed = []
    for lit in literals:
        try:
            parsed.append(tomllib.loads(f"v = {lit}")["v"])
        except tomllib.TOMLDecodeError:
            parsed.append(lit)
    if all(isinstance(v, bool) for v in parsed):
        return pa.bool_(), parsed
    if all(isinstance(v, int) and not isinstance(v, bool) for v in parsed):
        return pa.int64(), parsed
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in parsed):
        return pa.float64(), [float(v) for v in parsed]
    base = [_label(v) for v in parsed]
    labels: list[str] = []
    for k, lab in enumerate(base):
        n = base[:k].count(lab)  # distinct literals, one label: the later ones numbered
        while n and f"{lab}_{n + 1}" in labels + base:
            n += 1
        labels.append(f"{lab}_{n + 1}" if n else lab)
    return pa.string(), labels


def _label(value) -> str:
    """A readable label for a swept value: ``{ lognormal = [1e9, 1e10] }`` ->
    ``lognormal_1e9_1e10``; a word stays as it is."""
    if isinstance(value, dict):
        text = "_".join(f"{k}_{_label(v)}" for k, v in value.items())
    elif isinstance(value, list):
        text = "_".join(_label(v) for v in value)
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, int | float):
        text = _number(value)
    else:
        text = str(value)
    return re.sub(r"[^0-9A-Za-z_.+-]+", "_", text).strip("_") or "_"


def _number(x: float) -> str:
    """A number as short as it can be read back exactly: 1e9 -> "1e9", 0.6 -> "0.6"."""
    if isinstance(x, int) and abs(x) < 10**6:
        return str(x)
    x = float(x)
    text = next(t for t in (f"{x:.{d}g}" for d in range(1, 18)) if float(t) == x)
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa
