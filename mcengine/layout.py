"""The layout of a run's outputs: which rows, variables and series there are, in what order,
and what each is called. It is the one place that knows where an output sits in the
arrays the engine aggregates and what its label is in the Parquet files.

* **Rows**: every actor (``kind`` "actor"), then each reported rank of each group
  (``kind`` "group"; a group's ranks share its budget path).
* **Event variables** (one histogram each, times in years since the start): blocks of
  ``keys × thresholds`` variables, first the dates (``t_first`` by the earliest channel,
  ``diffusion_date`` per access budget, ``t_first`` by the ``trained`` and ``released``
  channels for rows with ``access_via``), then the ``lead_time`` of every row but the
  frontier. Dates are binned over [0, span] years, lead times over [-span, span].
* **Fan series** (paths.parquet, log10 units at each whole year): the kernel's stored
  series (hardware, algorithms, each row's capped budget and effective compute, and
  hardware + algorithms), and series that are exact shifts of them (an access budget's
  capability, a threshold's cost to reach), which are not stored.

Importing this module does not import JAX.
"""

from __future__ import annotations

import dataclasses
import math

from .io import usd_name
from .results import Row
from .scenario import FRONTIER, Scenario

ROW_KINDS = ("actor", "group")
DATE, LEAD = "date", "lead"


@dataclasses.dataclass(frozen=True)
class Block:
    """``len(keys) × thresholds`` consecutive event variables from ``start``: one metric
    (``t_first``, ``diffusion_date``, ``lead_time``) of each key (a Row, or an access budget
    in $), by ``channel`` (None: the earliest; "trained", "released"). ``kind`` is DATE
    (years since the start, binned over [0, span]) or LEAD (years, over [-span, span])."""

    metric: str
    channel: str | None
    keys: tuple
    start: int
    kind: str
    n_thresholds: int

    @property
    def size(self) -> int:
        return len(self.keys) * self.n_thresholds

    def index(self, key, t: int) -> int:
        """The variable of ``key`` (one of ``keys``) and threshold number ``t``."""
        return self.start + self.keys.index(key) * self.n_thresholds + t


@dataclasses.dataclass(frozen=True)
class FanSeries:
    """A series of paths.parquet: ``name``, computed as ``shift + sign * stored[index]``
    where ``stored`` are the kernel's fan series at a year (log10 units)."""

    name: str
    index: int
    sign: int = 1
    shift: float = 0.0


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """Rows, event variables and fan series of a scenario (hashable: part of the static
    model). Build it with :meth:`of`."""

    rows: tuple[Row, ...]
    thresholds: tuple[str, ...]
    access_budgets: tuple[float, ...]
    via: tuple[int, ...]  # rows that can get capabilities through open release
    blocks: tuple[Block, ...]
    stored_fan: tuple[str, ...]  # the kernel's fan series, in its order
    fan: tuple[FanSeries, ...]  # every series of paths.parquet, in its order
    n_years: int  # whole years from start to horizon: fan and count points 0..n_years
    count_bases: tuple[str, ...] = ("reached",)  # "reached", and "public" if a row has a delay
    at_least: tuple[int, ...] = ()  # k of the P(count >= k) columns

    @classmethod
    def of(cls, s: Scenario) -> OutputLayout:
        """The layout of scenario ``s``."""
        rows = []
        for a in s.actors:
            for k in a.ranks if a.is_group else (1,):
                rows.append(Row(a.name, k, "group" if a.is_group else "actor"))
        frontier = rows.index(Row(FRONTIER, 1, "actor"))
        via_names = {a.name for a in s.actors if a.access_via}
        via = tuple(i for i, r in enumerate(rows) if r.actor in via_names)
        T = len(s.thresholds)
        blocks, start = [], 0

        def add(metric, channel, keys, kind):
            nonlocal start
            blocks.append(Block(metric, channel, tuple(keys), start, kind, T))
            start += len(keys) * T

        add("t_first", None, rows, DATE)
        add("diffusion_date", None, s.access_budgets, DATE)
        for r in via:
            add("t_first", "trained", [rows[r]], DATE)
            add("t_first", "released", [rows[r]], DATE)
        delayed = {a.name for a in s.actors if a.publication_delay is not None}
        add("t_public", None, [r for r in rows if r.actor in delayed], DATE)
        add("lead_time", None, [r for i, r in enumerate(rows) if i != frontier], LEAD)
        stored = (
            ["hardware", "algorithms"]
            + [f"budget:{r.label}" for r in rows]
            + [f"effective:{r.label}" for r in rows]
            + ["hardware+algorithms"]
        )
        at = {name: i for i, name in enumerate(stored)}
        per_usd = at["hardware+algorithms"]
        fan = (
            [FanSeries(name, i) for i, name in enumerate(stored[:-1])]
            + [FanSeries(f"capability_at_budget:{usd_name(b)}", per_usd, 1, math.log10(b)) for b in s.access_budgets]
            + [
                FanSeries(f"cost_to_reach:{t.name}", at["hardware"] if t.kind == "physical" else per_usd, -1, t.level)
                for t in s.thresholds
            ]
        )
        return cls(
            tuple(rows),
            tuple(t.name for t in s.thresholds),
            tuple(s.access_budgets),
            via,
            tuple(blocks),
            tuple(stored),
            tuple(fan),
            int(math.floor(s.horizon - s.start + 1e-9)),
            ("reached", "public") if delayed else ("reached",),
            tuple(s.count_at_least),
        )

    @property
    def frontier(self) -> int:
        """The frontier's row."""
        return self.rows.index(Row(FRONTIER, 1, "actor"))

    def block(self, metric: str, channel: str | None = None) -> Block:
        """The block of ``metric`` by ``channel``; for the channels of rows with access_via
        use :meth:`channel_blocks`."""
        return next(b for b in self.blocks if b.metric == metric and b.channel == channel)

    def channel_blocks(self, row: Row) -> tuple[Block, Block]:
        """The (trained, released) blocks of a row with access_via."""
        find = lambda ch: next(b for b in self.blocks if b.channel == ch and b.keys == (row,))
        return find("trained"), find("released")

    @property
    def n_dates(self) -> int:
        return sum(b.size for b in self.blocks if b.kind == DATE)

    @property
    def n_leads(self) -> int:
        return sum(b.size for b in self.blocks if b.kind == LEAD)

    @property
    def n_event_vars(self) -> int:
        return self.n_dates + self.n_leads

    def fan_index(self, name: str) -> int:
        """The position of a stored fan series (e.g. ``budget:labs#1``) in the kernel's fan."""
        return self.stored_fan.index(name)

    @property
    def n_count_vars(self) -> int:
        """Count variables: per basis, whole year and threshold (in that order)."""
        return len(self.count_bases) * (self.n_years + 1) * len(self.thresholds)

    def count_index(self, basis: str, year: int, t: int) -> int:
        return (self.count_bases.index(basis) * (self.n_years + 1) + year) * len(self.thresholds) + t

    def count_values(self, out):
        """The count variables [count vars, N] of trajectories-last outputs ``out`` and the
        P(count >= k) flags [count vars * len(at_least), N] (1.0 or 0.0; k fastest)."""
        import jax.numpy as jnp

        n = out.counts.shape[-1]
        years = self.n_years + 1
        parts = [out.counts[:years]] + ([out.public_counts[:years]] if "public" in self.count_bases else [])
        counts = jnp.concatenate(parts, axis=0).reshape(-1, n)
        ks = jnp.asarray(self.at_least, jnp.float32)[None, :, None]
        return counts, (counts[:, None] >= ks).astype(jnp.float32).reshape(-1, n)

    def stack_fan(self, fan):
        """The kernel's fan values (:class:`mcengine.kernels.Fan`, trajectories last) as one
        array [years + 1, stored series, N] in the order of ``stored_fan``."""
        import jax.numpy as jnp

        return jnp.concatenate(
            [jnp.stack([fan.hardware, fan.algorithms], axis=1), fan.budget, fan.effective, fan.per_usd[:, None]], axis=1
        )

    def event_values(self, out):
        """The event variables [vars, N] (years; NaN: censored) of trajectories-last outputs
        ``out`` (:class:`mcengine.model.Trajectories`), in block order. For a row with
        access_via, a channel's date is its date where that channel came first (trained
        wins ties) and NaN where the other did."""
        import jax.numpy as jnp

        n = out.t_first.shape[-1]
        parts = []
        for b in self.blocks:
            if b.metric == "t_first" and b.channel is None:
                parts.append(out.t_first.reshape(-1, n))
            elif b.metric == "diffusion_date":
                parts.append(out.diffusion.reshape(-1, n))
            elif b.metric == "t_public":
                rows = [self.rows.index(r) for r in b.keys]
                parts.append(
                    out.t_public[jnp.asarray(rows, jnp.int32)].reshape(-1, n)
                    if rows
                    else jnp.zeros((0, n), jnp.float32)
                )
            elif b.metric == "t_first":
                r = self.rows.index(b.keys[0])
                trained, released = out.trained[r], out.released[r]
                first_is_trained = jnp.isnan(released) | (trained <= released)
                parts.append(
                    jnp.where(first_is_trained, trained, jnp.nan)
                    if b.channel == "trained"
                    else jnp.where(first_is_trained, jnp.nan, released)
                )
            elif b.metric == "lead_time":
                f = self.frontier
                parts.append(jnp.delete(out.t_first - out.t_first[f : f + 1], f, axis=0).reshape(-1, n))
        return jnp.concatenate(parts, axis=0)
