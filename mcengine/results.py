"""The results of a run as Arrow tables, written to and read from a results folder.

Reading results needs neither the engine nor JAX: ``mcengine.read_results(folder)`` works
in any environment with pyarrow (a notebook, a plotting script).
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from . import io

_STATS = ["p5", "p50", "p95", "p_reached"]  # the columns of the tidy date and lead-time tables


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
    folder: Path | None = None  # where the results were read from (read_results)

    # -- in a notebook: a short description instead of every field -----------------------

    def describe(self) -> dict[str, Any]:
        """What the repr shows: scenario, trajectories, seed, horizon, thresholds (in the
        scenario's order), regimes, and the tables with their row counts."""
        m = self.metadata
        files = {name: table.num_rows for name, table in self.tables().items()}
        if self.trajectories_file is not None or (self.folder and (self.folder / "trajectories.parquet").is_file()):
            files["trajectories"] = None
        return {
            "scenario": m.get("scenario"),
            "trajectories": m.get("trajectories"),
            "seed": m.get("seed"),
            "horizon": m.get("horizon"),
            "thresholds": self.thresholds(),
            "regimes": self.regimes(),
            "files": files,
            "folder": None if self.folder is None else str(self.folder),
        }

    def __repr__(self) -> str:
        d = self.describe()
        files = ", ".join(name if n is None else f"{name} ({n:,} rows)" for name, n in d["files"].items())
        parts = [
            f"scenario={d['scenario']!r}",
            f"trajectories={d['trajectories']:,}" if isinstance(d["trajectories"], int) else "",
            f"seed={d['seed']}",
            f"thresholds=[{', '.join(d['thresholds'])}]",
            f"regimes=[{', '.join(d['regimes'])}]" if d["regimes"] else "",
            f"files: {files}",
            f"folder={d['folder']!r}" if d["folder"] else "",
        ]
        return f"Results({', '.join(p for p in parts if p)})"

    def _repr_html_(self) -> str:
        d = self.describe()
        rows = [
            ("scenario", d["scenario"]),
            ("trajectories", f"{d['trajectories']:,}" if isinstance(d["trajectories"], int) else d["trajectories"]),
            ("seed", d["seed"]),
            ("horizon", d["horizon"]),
            ("thresholds", ", ".join(d["thresholds"])),
        ]
        if d["regimes"]:
            rows.append(("regimes", ", ".join(d["regimes"])))
        rows += [(f"{name}", "kept" if n is None else f"{n:,} rows") for name, n in d["files"].items()]
        if d["folder"]:
            rows.append(("folder", d["folder"]))
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td style='text-align:left'>"
            f"{html.escape(str(v))}</td></tr>"
            for k, v in rows
        )
        return f"<table><caption>mcengine results</caption>{body}</table>"

    # -- tidy tables (pandas) --------------------------------------------------------------

    def thresholds(self) -> list[str]:
        """The threshold names in the scenario's order."""
        return list(dict.fromkeys(self.events.column("threshold").to_pylist()))

    def regimes(self) -> list[str]:
        """The regime names (empty without regimes)."""
        return [r for r in dict.fromkeys(self.events.column("regime").to_pylist()) if r is not None]

    def frontier_dates(self, regime: str | None = None):
        """The frontier's date per threshold (calendar year): a pandas DataFrame with
        threshold (ordered as in the scenario), threshold_flop, threshold_kind, p5, p50, p95
        and p_reached (the share reached by the horizon; a quantile is NaN where it falls
        among trajectories not reached). All trajectories pooled, or one ``regime``'s."""
        rows = [
            r
            for r in self._rows(self.events, regime)
            if r["metric"] == "t_first" and r["actor"] == "frontier" and r["channel"] is None
        ]
        return self._frame(rows, ["threshold", "threshold_flop", "threshold_kind"], _STATS, "frontier_dates")

    def lead_times(self, regime: str | None = None):
        """Every other row's lead time per threshold (years after the frontier): a pandas
        DataFrame with actor (``actor`` or ``group #k``, in the order of the events table),
        threshold (in the scenario's order), p5, p50, p95 and p_reached."""
        rows = [
            {**r, "actor": Row(r["actor"], r["rank"], r["row_kind"]).display}
            for r in self._rows(self.events, regime)
            if r["metric"] == "lead_time" and r["channel"] is None
        ]
        return self._frame(rows, ["actor", "threshold"], _STATS, "lead_times")

    def diffusion_dates(self, regime: str | None = None):
        """The date each access budget can reach each threshold (calendar year): a pandas
        DataFrame with budget_usd, threshold (in the scenario's order), p5, p50, p95 and
        p_reached."""
        return self._frame(self._rows(self.access, regime), ["budget_usd", "threshold"], _STATS, "diffusion_dates")

    def counts_by_year(self, regime: str | None = None):
        """Organisations able to reach each threshold by 1 January of each whole year (from
        counts.parquet): a pandas DataFrame with threshold (in the scenario's order), year,
        mean, p5, p25, p50, p75, p95 and p_at_least_<k> (the chance of at least k). The
        table itself is the ``counts`` attribute."""
        if self.counts is None:
            raise ValueError("these results have no counts (they were written before counts.parquet existed)")
        rows = [r for r in self._rows(self.counts, regime) if r["basis"] == "reached"]
        extra = [c for c in self.counts.column_names if c.startswith("p_at_least_")]
        stats = ["mean", "p5", "p25", "p50", "p75", "p95", *extra]
        return self._frame(rows, ["threshold", "year"], stats, "counts_by_year")

    def _rows(self, table: pa.Table, regime: str | None) -> list[dict]:
        if regime is not None and regime not in self.regimes():
            known = ", ".join(self.regimes()) or "none: the scenario has no regimes"
            raise ValueError(f"unknown regime {regime!r} (regimes: {known})")
        return [r for r in table.to_pylist() if r["regime"] == regime]

    def _frame(self, rows: list[dict], keys: list[str], stats: list[str], what: str):
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                f"Results.{what}() returns a pandas DataFrame and needs pandas: pip install pandas "
                "(the pyarrow tables .events, .access, .paths and .counts need nothing more)"
            ) from None
        columns = keys + stats
        frame = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
        frame["threshold"] = pd.Categorical(frame["threshold"], categories=self.thresholds(), ordered=True)
        if "actor" in keys:
            order = list(dict.fromkeys(frame["actor"]))
            frame["actor"] = pd.Categorical(frame["actor"], categories=order, ordered=True)
        order = [k for k in keys if k in ("actor", "budget_usd", "threshold", "year")]
        return frame.sort_values(order, kind="stable").reset_index(drop=True)

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
    meta = io.read_metadata(t["events"])
    return Results(t["events"], t["access"], t["paths"], meta, counts=t.get("counts"), folder=Path(folder))
