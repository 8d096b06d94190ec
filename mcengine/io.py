"""Parquet outputs: explicit schemas, provenance metadata, atomic writes of a results folder.

Provenance lives in one namespaced key, ``mcengine``, of every file's key-value metadata:
a JSON object with the scenario TOML text, seed, trajectories, chunk size, versions,
platform and device, start and end time (see :func:`provenance`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import platform
import re
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DataError, OutputError, ResourceError

METADATA_KEY = b"mcengine"
FILES = ("events", "access", "paths")
QUANTILES = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99)  # of dates and lead times
FAN_QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)  # of paths and counts


def quantile_column(q: float) -> str:
    """The column of quantile ``q``: 0.05 -> "p5"."""
    return f"p{round(q * 100)}"


_STATS = [pa.field("n", pa.int64()), pa.field("p_reached", pa.float64()), pa.field("mean", pa.float64())] + [
    pa.field(quantile_column(q), pa.float64()) for q in QUANTILES
]
_FAN_STATS = [pa.field(c, pa.float64()) for c in ["mean", *map(quantile_column, FAN_QUANTILES)]]
_THRESHOLD = [
    pa.field("threshold", pa.string()),
    pa.field("threshold_flop", pa.float64()),
    pa.field("threshold_kind", pa.string()),
]
_HEAD = [pa.field("scenario", pa.string()), pa.field("regime", pa.string())]

SCHEMAS = {
    "events": pa.schema(
        _HEAD
        + [pa.field("actor", pa.string()), pa.field("rank", pa.int32()), pa.field("row_kind", pa.string())]
        + _THRESHOLD
        + [pa.field("metric", pa.string()), pa.field("channel", pa.string())]
        + _STATS
    ),
    "access": pa.schema(_HEAD + [pa.field("budget_usd", pa.float64())] + _THRESHOLD + _STATS),
    "paths": pa.schema(_HEAD + [pa.field("series", pa.string()), pa.field("year", pa.float64())] + _FAN_STATS),
    "counts": pa.schema(
        _HEAD
        + _THRESHOLD
        + [pa.field("basis", pa.string()), pa.field("year", pa.float64()), pa.field("n", pa.int64())]
        + _FAN_STATS
    ),
}
OPTIONAL_FILES = ("counts",)  # absent from results written before counts existed


def counts_schema(at_least) -> pa.Schema:
    """The schema of counts.parquet: SCHEMAS["counts"] and a ``p_at_least_<k>`` column per k."""
    return pa.schema(list(SCHEMAS["counts"]) + [pa.field(f"p_at_least_{k}", pa.float64()) for k in at_least])


def usd_name(x: float) -> str:
    """A $ amount as written in series and column names: 1e6, 2.5e8, 300."""
    return f"{x:.6g}".replace("e+0", "e").replace("e+", "e")


def provenance(**fields) -> dict:
    """The provenance record: the given fields plus versions and the device."""
    import jax
    import jaxlib
    import numpy

    from . import __version__

    dev = jax.devices()[0]
    return {
        **fields,
        "versions": {
            "mcengine": __version__,
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "numpy": numpy.__version__,
            "pyarrow": pa.__version__,
            "python": platform.python_version(),
        },
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


MARKER = ".mcengine"  # in every folder mcengine writes: {"kind", "scenario", "written", "mcengine"}
# Entries mcengine itself puts into its folders (results, sweeps, sensitivity; figures and
# backtests added later); --force replaces a marked folder only if it holds nothing else.
_OWN_ENTRIES = re.compile(
    r"\.mcengine|(events|access|paths|counts|trajectories|sensitivity|backtest)\.parquet"
    r"|sweep\.json|tornado\.png|report\.html|.*-(fan|cdf|lead|access|counts|regimes|channels)\.(png|svg|pdf)"
)
_OWN_DATASETS = ("events", "access", "paths", "counts")  # a sweep's datasets (a file per point)


def write_marker(folder: Path, kind: str, scenario: str | None = None) -> None:
    """Mark ``folder`` as written by mcengine (``kind``: results, sweep, sensitivity, backtest)."""
    import datetime

    from . import __version__

    record = {
        "kind": kind,
        "scenario": scenario,
        "mcengine": __version__,
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    (Path(folder) / MARKER).write_text(json.dumps(record) + "\n", encoding="utf-8")


def written_by_mcengine(folder: Path) -> bool:
    """Whether ``folder`` is a folder mcengine wrote: it holds the ``.mcengine`` marker, or
    (written by a version before the marker) an ``events.parquet`` or ``sensitivity.parquet``
    whose metadata has the ``mcengine`` key, or a sweep's ``sweep.json``."""
    folder = Path(folder)
    try:
        if json.loads((folder / MARKER).read_text(encoding="utf-8")).get("kind"):
            return True
    except (OSError, ValueError, AttributeError):
        pass
    for name in ("events.parquet", "sensitivity.parquet"):
        try:
            if METADATA_KEY in (pq.read_schema(folder / name).metadata or {}):
                return True
        except (OSError, pa.ArrowException):
            pass
    try:
        return {"axes", "points"} <= set(json.loads((folder / "sweep.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return False


def _foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that mcengine does not write."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if not (p.is_dir() and not p.is_symlink() and p.name in _OWN_DATASETS)
        and not (p.is_file() and not p.is_symlink() and _OWN_ENTRIES.fullmatch(p.name))
    )


def _protected(folder: Path) -> str | None:
    """Why ``folder`` must never be replaced (the root, the home folder, the current folder
    or one above it), or None."""
    real = folder.resolve()
    cwd = Path.cwd().resolve()
    if real == Path(real.anchor):
        return "the root folder"
    if real == Path.home().resolve():
        return "the home folder"
    if real == cwd:
        return "the current folder"
    if real in cwd.parents:
        return "a folder above the current one"
    return None


def existing_ancestor(path: Path) -> Path:
    """The nearest existing path at or above ``path`` (absolute)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and not p.is_symlink() and p != p.parent:
        p = p.parent
    return p


def path_problem(path: Path) -> str | None:
    """Why no file system call (or Parquet writer) can take ``path``, or None: a NUL
    character, a name that is not UTF-8 text, or a component longer than 255 bytes."""
    text = str(path)
    if "\0" in text:
        return "the path contains a NUL character"
    try:
        os.path.abspath(text).encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not UTF-8 text"
    if any(len(os.fsencode(part)) > 255 for part in Path(text).parts):
        return "a name in the path is longer than 255 bytes"
    return None


def check_output_folder(folder: Path, overwrite: bool) -> None:
    """Fail early (before sampling) if ``folder`` could not or must not be written as an
    output folder. An existing folder is replaced only with ``overwrite`` and only if mcengine
    wrote it (see :func:`written_by_mcengine`) and it holds nothing mcengine did not write, or
    it is empty; never the root, the home folder, the current folder or one above it, and
    never through a symbolic link. Creates nothing."""
    folder = Path(folder)
    problem = path_problem(folder)
    if problem:
        raise OutputError(f"{folder}: {problem}; choose another --out")
    try:
        _check_output_folder(folder, overwrite)
    except OSError as e:
        raise OutputError(f"{folder}: cannot use it ({e.strerror or e}); choose another --out") from None


def _check_output_folder(folder: Path, overwrite: bool) -> None:
    if folder.is_symlink():
        raise OutputError(f"{folder}: is a symbolic link; mcengine does not replace links; choose another --out")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder; choose another --out")
    if folder.exists():
        if not overwrite:
            raise OutputError(
                f"{folder}: already exists; pass --force to replace a results folder written by "
                "mcengine, or choose another --out"
            )
        reason = _protected(folder)
        if reason:
            raise OutputError(f"{folder}: is {reason}, which mcengine never replaces; choose another --out")
        try:
            empty = not any(folder.iterdir())
            if not empty and not written_by_mcengine(folder):
                raise OutputError(
                    f"{folder}: was not written by mcengine (no {MARKER} marker and no mcengine "
                    "results in it); --force replaces only folders mcengine wrote; choose another --out"
                )
            foreign = [] if empty else _foreign_entries(folder)
        except OSError as e:
            raise OutputError(f"{folder}: cannot read it ({e.strerror or e}); choose another --out") from None
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise OutputError(
                f"{folder}: holds files mcengine did not write ({shown}); --force would delete them; "
                "move them out or choose another --out"
            )
    parent = existing_ancestor(folder.absolute().parent)
    if not parent.is_dir():
        raise OutputError(f"{folder}: cannot write there ({parent} is not a folder); choose another --out")
    try:
        probe = parent / f".mcengine-probe-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        raise OutputError(f"{folder}: cannot write there ({e.strerror or e}); choose another --out") from None


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, outermost first."""
    missing = []
    p = Path(os.path.abspath(folder))
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    created = []
    try:
        for p in reversed(missing):
            p.mkdir()
            created.append(p)
    except BaseException:
        remove_empty(created)
        raise
    return created


def remove_empty(created: list[Path]) -> None:
    """Remove the folders of :func:`make_parents` again, innermost first, while empty."""
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            break


def read_csv(path: str | Path, required: tuple[str, ...] | list[str], layout: str):
    """Open a CSV file for reading: ``(records, column index by required name)``, where
    ``records`` yields ``(line number, fields)`` for every non-blank line after the header.
    Every way the file can be unreadable (missing, not UTF-8, not CSV, empty, a required
    column missing, a line with another number of fields than the header) is a
    :class:`DataError` naming the file (and the line); ``layout`` says what the header
    should look like."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{source}: no such file") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{source}: not UTF-8 text (byte {e.start}); save it as UTF-8 CSV") from None
    except OSError as e:
        raise DataError(f"{source}: cannot read the file ({e.strerror or e.__class__.__name__})") from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise DataError(f"{source}: line 1: not valid CSV ({e})") from None
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{source}: empty file; expected a header line with the columns {', '.join(required)}")
    names = [h.strip() for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise DataError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            f"{layout} (found: {', '.join(names)})"
        )

    def records():
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise DataError(f"{source}: line {reader.line_num}: not valid CSV ({e})") from None
            if not any(cell.strip() for cell in record):
                continue  # blank line
            if len(record) != len(names):
                raise DataError(
                    f"{source}: line {reader.line_num}: {len(record)} fields, but the header has {len(names)}; "
                    "quote fields that contain commas"
                )
            yield reader.line_num, record

    return records(), {c: names.index(c) for c in required}


def fitting_name(stem: str, suffix: str, limit: int = 255) -> str:
    """``stem + suffix``, or where that is longer than ``limit`` bytes (a file system's
    limit on one name) the stem cut short and followed by ``~`` and a hash of the whole
    stem, so that names made from different stems stay different."""
    if len(os.fsencode(stem + suffix)) <= limit:
        return stem + suffix
    digest = hashlib.sha256(os.fsencode(stem)).hexdigest()[:10]
    room = max(0, limit - len(os.fsencode(suffix)) - len(digest) - 1)
    return f"{os.fsencode(stem)[:room].decode('utf-8', 'ignore')}~{digest}{suffix}"


@contextlib.contextmanager
def atomic_files(*paths: Path, suffix: str = ""):
    """Write files atomically: yields one temporary path beside each of ``paths`` (named
    ``.<name>.tmp-<id><suffix>``, shortened to fit a file name; a writer that picks a format
    from the extension sees ``suffix``); when the block ends without an error they are
    renamed onto ``paths``, all of them, and on any error (an interrupt included) they are
    removed and the files at ``paths`` stay as they were."""
    tmps = [Path(p).with_name(fitting_name(f".{Path(p).name}", f".tmp-{uuid.uuid4().hex[:8]}{suffix}")) for p in paths]
    try:
        yield tmps
        for tmp, path in zip(tmps, paths):
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(folder: Path, overwrite: bool = False, kind: str = "results", scenario: str | None = None):
    """Write an output folder atomically: yields a temporary folder beside ``folder``; when
    the block ends without an error, the ``.mcengine`` marker is added and the temporary
    folder is renamed into place (replacing an existing one, under the rules of
    :func:`check_output_folder`). On any error nothing is left: neither the temporary
    folder nor parent folders created for it, and a replaced folder is restored. An
    ``OSError`` while writing becomes an :class:`OutputError`."""
    folder = Path(folder)
    check_output_folder(folder, overwrite)
    parent = folder.absolute().parent
    created, tmp, old = [], None, None
    try:
        created = make_parents(parent)
        tmp = parent / f".mcengine-tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        yield tmp
        write_marker(tmp, kind, scenario)
        check_output_folder(folder, overwrite)  # again: it may have appeared meanwhile
        if folder.exists():
            old = parent / f".mcengine-old-{uuid.uuid4().hex[:8]}"
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not folder.exists():
            os.replace(old, folder)
        remove_empty(created)
        if isinstance(e, OSError):
            raise OutputError(f"{folder}: cannot write it ({e.strerror or e}); choose another --out") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_folder(
    folder: Path,
    tables: dict[str, pa.Table],
    overwrite: bool = False,
    files: dict[str, Path] | None = None,
    kind: str = "results",
) -> Path:
    """Write the tables as ``<name>.parquet`` into ``folder`` atomically (see
    :func:`atomic_folder`). ``files`` are finished files moved in as ``{name: path}``."""
    scenario = next(
        (read_metadata(t).get("scenario") for t in tables.values() if METADATA_KEY in (t.schema.metadata or {})), None
    )
    with atomic_folder(folder, overwrite, kind, scenario) as tmp:
        for name, t in tables.items():
            pq.write_table(t, tmp / f"{name}.parquet")
        for name, path in (files or {}).items():
            shutil.move(str(path), tmp / name)
    return Path(folder)


def check_output_file(path: Path, replace: bool = False, option: str = "--out") -> None:
    """Fail, before any work, if one output file could not or must not be written at
    ``path``: a path no file system takes, an existing entry that is not a plain file (a
    symbolic link included), an existing file unless ``replace``, or no writable folder to
    put it in."""
    problem = path_problem(path)
    if problem:
        raise OutputError(f"{path}: {problem}; choose another {option}")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OutputError(f"{path}: exists and is not a plain file; choose another {option}")
    if path.exists() and not replace:
        raise OutputError(f"{path}: already exists; pass --force to replace it, or choose another {option}")
    parent = existing_ancestor(path.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write there ({parent} is not a writable folder); choose another {option}")


def write_file(path: Path, data: bytes, overwrite: bool = False, option: str = "--out") -> Path:
    """Write one file atomically: a temporary file beside ``path``, then ``os.replace``.
    An existing ``path`` is replaced only with ``overwrite`` (``--force``) and only if it is
    a plain file; never through a symbolic link. Missing parent folders are created (and
    removed again on a failure); on any error nothing is left. An ``OSError`` becomes an
    :class:`OutputError` naming ``option``."""
    path = Path(path)
    problem = path_problem(path)
    if problem:
        raise OutputError(f"{path}: {problem}; choose another {option}")
    if path.is_symlink():
        raise OutputError(f"{path}: is a symbolic link; mcengine does not write through links; choose another {option}")
    if path.exists():
        if path.is_dir() or not path.is_file():
            raise OutputError(f"{path}: exists and is not a plain file; choose another {option}")
        if not overwrite:
            raise OutputError(f"{path}: already exists; pass --force to replace it, or choose another {option}")
    created = []
    try:
        created = make_parents(path.absolute().parent)
        with atomic_files(path.absolute()) as (tmp,):
            tmp.write_bytes(data)
    except BaseException as e:
        remove_empty(created)
        if isinstance(e, OSError):
            raise OutputError(f"{path}: cannot write it ({e.strerror or e}); choose another {option}") from None
        raise
    return path


def read_folder(folder: Path) -> dict[str, pa.Table]:
    """Read a results folder written by :func:`write_folder`; a :class:`DataError` if it is
    not one (missing or unreadable files, no provenance, columns of another layout)."""
    folder = Path(folder)
    try:
        kind = "folder" if folder.is_dir() else "other" if folder.exists() else None
    except (OSError, ValueError) as e:
        raise DataError(f"{folder}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    if kind != "folder":
        raise DataError(
            f"{folder}: {'not a folder' if kind else 'no such folder'}; give a results folder written by mcengine run"
        )
    missing = [n for n in FILES if not (folder / f"{n}.parquet").is_file()]
    if missing:
        raise DataError(f"{folder}: not a results folder (missing {', '.join(m + '.parquet' for m in missing)})")
    out = {}
    for n in FILES + tuple(n for n in OPTIONAL_FILES if (folder / f"{n}.parquet").is_file()):
        path = folder / f"{n}.parquet"
        try:
            t = pq.read_table(path)
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"{path}: not a readable Parquet file ({' '.join(str(e).split())[:120]})") from None
        lacking = [c for c in SCHEMAS[n].names if c not in t.column_names]
        if METADATA_KEY not in (t.schema.metadata or {}) or lacking:
            why = "no mcengine metadata" if not lacking else f"missing columns {', '.join(lacking)}"
            raise DataError(f"{path}: not written by this version of mcengine ({why})")
        try:
            read_metadata(t)
        except ValueError:
            raise DataError(f"{path}: its mcengine metadata is not valid JSON") from None
        out[n] = t
    return out


class TrajectoryWriter:
    """Streams per-trajectory rows to a Parquet file, one row group per chunk, so millions
    of rows never sit in memory. Columns: ``trajectory`` (int64 index), ``regime`` (null
    without regimes), each uncertain input (engine units: log10 for levels, OOM/yr for
    rates), ``t_first:<row>:<threshold>`` and ``diffusion_date:<$>:<threshold>`` (calendar
    years; null where censored). Refuses (ResourceError, removing ``path``) when the rows of
    ``metadata["trajectories"]`` trajectories, 8 bytes a value, would not fit on the disk;
    an ``OSError`` while writing becomes an :class:`OutputError`."""

    def __init__(
        self,
        path: Path,
        start: float,
        regimes: list[str],
        inputs: list[str],
        dates: list[str],
        diffusion: list[str],
        metadata: dict,
    ):
        self.path, self.start, self.regimes = Path(path), start, regimes
        fields = [pa.field("trajectory", pa.int64()), pa.field("regime", pa.string())]
        fields += [pa.field(n, pa.float64()) for n in inputs + dates + diffusion]
        self.schema = pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata)})
        try:
            need = 8 * len(fields) * int(metadata.get("trajectories", 0))
            free = shutil.disk_usage(self.path.parent).free
            if need > free:
                raise ResourceError(
                    f"trajectories.parquet would take about {need / 2**30:,.1f} GiB but "
                    f"{free / 2**30:,.1f} GiB is free beside the results folder; use fewer "
                    "trajectories or run without --keep-trajectories"
                )
            self.writer = pq.ParquetWriter(self.path, self.schema)
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise

    def write(self, first: int, arrays) -> None:
        """Rows of trajectories ``first``, ... from a chunk's outputs (``model.Trajectories``)."""
        import numpy as np

        regime, t_first, diffusion, inputs = arrays.regime, arrays.t_first, arrays.diffusion, arrays.inputs
        n = len(regime)
        cols = [
            pa.array(np.arange(first, first + n, dtype=np.int64)),
            pa.array([self.regimes[i] for i in regime] if self.regimes else [None] * n, pa.string()),
        ]
        cols += [pa.array(inputs[:, i].astype(np.float64)) for i in range(inputs.shape[1])]
        for block in (t_first, diffusion):
            flat = block.reshape(n, -1).astype(np.float64) + self.start
            cols += [pa.array(flat[:, i], pa.float64(), from_pandas=True) for i in range(flat.shape[1])]
        try:
            self.writer.write_table(pa.Table.from_arrays(cols, schema=self.schema))
        except OSError as e:
            raise OutputError(
                f"{self.path}: cannot write per-trajectory rows ({e.strerror or e}); free some disk "
                "space or run without --keep-trajectories"
            ) from None

    def close(self) -> None:
        self.writer.close()
