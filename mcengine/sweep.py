"""Sweeps: one scenario over a grid of overridden values, written as hive-partitioned
Parquet datasets (``events/``, ``access/``, ``paths/``) that pandas, polars and DuckDB read
as one table each, with a column per swept path.

Points that change only numbers reuse the compiled kernel (the numbers are traced
arguments); a point that changes the scenario's shape compiles once for that shape.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from . import api, engine, io
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
    """The partition column of a swept path: dots and other symbols become underscores."""
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
    with io.atomic_folder(out, overwrite, kind="sweep", scenario=scenarios[0].name) as tmp:
        manifest = []
        for i, (point, s) in enumerate(zip(points, scenarios)):
            if progress:
                progress(f"point {i + 1}/{len(points)}: " + ", ".join(f"{p}={v}" for p, v in point))
            results = api.run(s, trajectories=trajectories, seed=seed)
            labels = {c: _label(v) for c, (_, v) in zip(columns, point)}
            for name in io.FILES + io.OPTIONAL_FILES:
                table = getattr(results, name)
                if table is None:
                    continue
                for c, label in labels.items():
                    table = table.append_column(c, pa.array([label] * table.num_rows, pa.string()))
                ds.write_dataset(
                    table,
                    tmp / name,
                    format="parquet",
                    partitioning=columns,
                    partitioning_flavor="hive",
                    basename_template=f"part-{i}-{{i}}.parquet",
                    existing_data_behavior="overwrite_or_ignore",
                )
            manifest.append(
                {
                    "point": {p: v for p, v in point},
                    "partition": labels,
                    "compile_seconds": results.metadata["compile_seconds"],
                    "sample_seconds": results.metadata["sample_seconds"],
                }
            )
        (tmp / "sweep.json").write_text(
            json.dumps(
                {
                    "scenario": source,
                    "fixed": list(fixed),
                    "axes": axes,
                    "seed": seed,
                    "trajectories": trajectories,
                    "points": manifest,
                },
                indent=1,
            )
        )
    return Path(out)


def _label(value: str) -> str:
    """A partition value: the literal itself when it is a plain number or word."""
    return value if re.fullmatch(r"[0-9A-Za-z_.+-]+", value) else "v" + uuid.uuid5(uuid.NAMESPACE_OID, value).hex[:8]
