"""Parquet outputs: explicit schemas, provenance metadata, atomic writes of a results folder.

Provenance lives in one namespaced key, ``mcengine``, of every file's key-value metadata:
a JSON object with the scenario TOML text, seed, trajectories, chunk size, versions,
platform and device, start and end time (see :func:`provenance`).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"mcengine"
FILES = ("events", "access", "paths")

_STATS = [pa.field("n", pa.int64()), pa.field("p_reached", pa.float64()), pa.field("mean", pa.float64())] + [
    pa.field(f"p{q}", pa.float64()) for q in (1, 5, 10, 25, 50, 75, 90, 95, 99)
]
_THRESHOLD = [pa.field("threshold", pa.string()), pa.field("threshold_flop", pa.float64()),
              pa.field("threshold_kind", pa.string())]
_HEAD = [pa.field("scenario", pa.string()), pa.field("regime", pa.string())]

SCHEMAS = {
    "events": pa.schema(_HEAD + [pa.field("actor", pa.string()), pa.field("rank", pa.int32()),
                                 pa.field("row_kind", pa.string())] + _THRESHOLD
                        + [pa.field("metric", pa.string()), pa.field("channel", pa.string())] + _STATS),
    "access": pa.schema(_HEAD + [pa.field("budget_usd", pa.float64())] + _THRESHOLD + _STATS),
    "paths": pa.schema(_HEAD + [pa.field("series", pa.string()), pa.field("year", pa.float64())]
                       + [pa.field(c, pa.float64()) for c in ("mean", "p5", "p25", "p50", "p75", "p95")]),
    "counts": pa.schema(_HEAD + _THRESHOLD + [pa.field("basis", pa.string()), pa.field("year", pa.float64()),
                                              pa.field("n", pa.int64())]
                        + [pa.field(c, pa.float64()) for c in ("mean", "p5", "p25", "p50", "p75", "p95")]),
}
OPTIONAL_FILES = ("counts",)  # absent from results written before counts existed


def counts_schema(at_least) -> pa.Schema:
    """The schema of counts.parquet: SCHEMAS["counts"] and a ``p_at_least_<k>`` column per k."""
    return pa.schema(list(SCHEMAS["counts"]) + [pa.field(f"p_at_least_{k}", pa.float64()) for k in at_least])


def usd_name(x: float) -> str:
    """A $ amount as written in series and column names: 1e6, 2.5e8, 300."""
    return f"{x:.6g}".replace("e+0", "e").replace("e+", "e")


class OutputError(ValueError):
    """An output folder that cannot be written: ``str(err)`` is the one-line message."""


def provenance(**fields) -> dict:
    """The provenance record: the given fields plus versions and the device."""
    import jax
    import jaxlib
    import numpy

    from . import __version__

    dev = jax.devices()[0]
    return {
        **fields,
        "versions": {"mcengine": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
                     "numpy": numpy.__version__, "pyarrow": pa.__version__, "python": platform.python_version()},
        "platform": dev.platform,
        "device_kind": dev.device_kind,
        "device_count": jax.device_count(),
        "host": platform.platform(),
    }


def table(name: str | pa.Schema, rows: dict[str, list], metadata: dict) -> pa.Table:
    """A table with the schema of output ``name`` (or the schema itself) and the provenance
    metadata attached. NaN in a float column becomes null (censored or undefined)."""
    schema = SCHEMAS[name] if isinstance(name, str) else name
    arrays = []
    for f in schema:
        values = rows[f.name]
        if pa.types.is_floating(f.type):
            arrays.append(pa.array(values, f.type, from_pandas=True))  # NaN -> null
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=schema.with_metadata({METADATA_KEY: json.dumps(metadata)}))


def read_metadata(t: pa.Table) -> dict:
    """The provenance record of a table read from a results file."""
    return json.loads((t.schema.metadata or {})[METADATA_KEY])


def check_output_folder(folder: Path, overwrite: bool) -> None:
    """Fail early (before sampling) if ``folder`` could not be written as a results folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder; choose another --out")
    if folder.exists() and not overwrite:
        raise OutputError(f"{folder}: already exists; pass --force to replace it or choose another --out")
    parent = folder.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{folder.name}.probe-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        raise OutputError(f"{folder}: cannot write there ({e.strerror or e}); choose another --out") from None


def write_folder(folder: Path, tables: dict[str, pa.Table], overwrite: bool = False,
                 files: dict[str, Path] | None = None) -> Path:
    """Write the tables as ``<name>.parquet`` into ``folder`` atomically: into a temporary
    folder beside it, renamed into place only when every file is complete. ``files`` are
    finished files moved in as ``{name: path}``."""
    folder = Path(folder)
    check_output_folder(folder, overwrite)
    parent = folder.absolute().parent
    tmp = parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    old = None
    try:
        tmp.mkdir()
        for name, t in tables.items():
            pq.write_table(t, tmp / f"{name}.parquet")
        for name, path in (files or {}).items():
            shutil.move(str(path), tmp / name)
        if folder.exists():
            old = parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not folder.exists():
            os.replace(old, folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def read_folder(folder: Path) -> dict[str, pa.Table]:
    """Read a results folder written by :func:`write_folder`."""
    folder = Path(folder)
    missing = [n for n in FILES if not (folder / f"{n}.parquet").is_file()]
    if missing:
        raise OutputError(f"{folder}: not a results folder (missing {', '.join(m + '.parquet' for m in missing)})")
    names = FILES + tuple(n for n in OPTIONAL_FILES if (folder / f"{n}.parquet").is_file())
    return {n: pq.read_table(folder / f"{n}.parquet") for n in names}


class TrajectoryWriter:
    """Streams per-trajectory rows to a Parquet file, one row group per chunk, so millions
    of rows never sit in memory. Columns: ``trajectory`` (int64 index), ``regime`` (null
    without regimes), each uncertain input (engine units: log10 for levels, OOM/yr for
    rates), ``t_first:<row>:<threshold>`` and ``diffusion_date:<$>:<threshold>`` (calendar
    years; null where censored)."""

    def __init__(self, path: Path, start: float, regimes: list[str], inputs: list[str], dates: list[str],
                 diffusion: list[str], metadata: dict):
        self.path, self.start, self.regimes = Path(path), start, regimes
        fields = [pa.field("trajectory", pa.int64()), pa.field("regime", pa.string())]
        fields += [pa.field(n, pa.float64()) for n in inputs + dates + diffusion]
        self.schema = pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata)})
        self.writer = pq.ParquetWriter(self.path, self.schema)

    def write(self, first: int, arrays: tuple) -> None:
        import numpy as np

        regime, t_first, diffusion, inputs = arrays
        n = len(regime)
        cols = [pa.array(np.arange(first, first + n, dtype=np.int64)),
                pa.array([self.regimes[i] for i in regime] if self.regimes else [None] * n, pa.string())]
        cols += [pa.array(inputs[:, i].astype(np.float64)) for i in range(inputs.shape[1])]
        for block in (t_first, diffusion):
            flat = block.reshape(n, -1).astype(np.float64) + self.start
            cols += [pa.array(flat[:, i], pa.float64(), from_pandas=True) for i in range(flat.shape[1])]
        self.writer.write_table(pa.Table.from_arrays(cols, schema=self.schema))

    def close(self) -> None:
        self.writer.close()
