"""The results of a run as Arrow tables, written to and read from a results folder.

Reading results needs neither the engine nor JAX: ``mcengine.read_results(folder)`` works
in any environment with pyarrow (a notebook, a plotting script).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from . import io


class Row(NamedTuple):
    """A reported row: an actor (rank 1, kind "actor") or one rank of a group (kind "group")."""

    actor: str
    rank: int
    kind: str

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    @property
    def label(self) -> str:
        """The row's name in series and column names: ``actor`` or ``group#k``."""
        return f"{self.actor}#{self.rank}" if self.is_group else self.actor

    @property
    def display(self) -> str:
        """The row's name for people: ``actor`` or ``group #k``."""
        return f"{self.actor} #{self.rank}" if self.is_group else self.actor


@dataclasses.dataclass(frozen=True)
class Results:
    """Distributions from one run (see README for the columns).

    events: t_first and t_public (calendar year), lead_time (years) per row and threshold.
    access: diffusion_date (calendar year) per access budget and threshold.
    paths: fan charts (log10 units) per series and whole year.
    counts: organisations able to reach each threshold by each whole year (None in
      results written before counts existed).
    metadata: the provenance record stored in every file.
    """

    events: pa.Table
    access: pa.Table
    paths: pa.Table
    metadata: dict
    trajectories_file: Path | None = None  # per-trajectory rows, if kept (moved in by write)
    counts: pa.Table | None = None

    def tables(self) -> dict[str, pa.Table]:
        """The tables by file name (without .parquet)."""
        out = {"events": self.events, "access": self.access, "paths": self.paths}
        return out if self.counts is None else {**out, "counts": self.counts}

    def rows(self) -> list[Row]:
        """The reported rows, in the order of the events table."""
        keys = dict.fromkeys(tuple(r.values()) for r in self.events.select(["actor", "rank", "row_kind"]).to_pylist())
        return [Row(*k) for k in keys]

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the tables as ``<name>.parquet`` (and trajectories.parquet if kept) into
        ``folder`` atomically."""
        files = {"trajectories.parquet": self.trajectories_file} if self.trajectories_file else None
        return io.write_folder(Path(folder), self.tables(), overwrite=overwrite, files=files)


def read_results(folder: str | Path) -> Results:
    """Read a results folder written by :meth:`Results.write`."""
    t = io.read_folder(Path(folder))
    return Results(t["events"], t["access"], t["paths"], io.read_metadata(t["events"]), counts=t.get("counts"))
