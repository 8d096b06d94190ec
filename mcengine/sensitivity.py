"""Which uncertain input drives which output.

For each uncertain per-trajectory input (a rate, an initial level, a budget, a group's
k-th budget, the regime) and each output (the frontier's date, each other row's lead
time, each access budget's diffusion date, per threshold), from one sample of
trajectories:

* ``spearman`` — the rank correlation of input and output;
* ``variance_share`` — the first-order variance share Var(E[rank(y) | x]) / Var(rank(y)),
  estimated by binning x into equal-count bins (categories for the regime) and corrected
  for the (bins - 1) / (n - 1) that it shows for an input with no effect at all.

Censoring is explicit: an output not reached by the horizon ranks above every reached one
(tied among themselves), so both measures work on ranks and never drop or invent a date.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import engine, io
from .errors import ArgumentError, ScenarioError
from .model import build
from .scenario import Scenario

SCHEMA = pa.schema(
    [
        pa.field("scenario", pa.string()),
        pa.field("output", pa.string()),
        pa.field("actor", pa.string()),
        pa.field("rank", pa.int32()),
        pa.field("threshold", pa.string()),
        pa.field("input", pa.string()),
        pa.field("n", pa.int64()),
        pa.field("p_reached", pa.float64()),
        pa.field("spearman", pa.float64()),
        pa.field("variance_share", pa.float64()),
    ]
)


def average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    order = np.argsort(a, kind="mergesort")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(a))
    s = a[order]
    starts = np.r_[True, s[1:] != s[:-1]]
    dense = starts.cumsum()[inverse]
    bounds = np.r_[np.nonzero(starts)[0], len(a)]
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def censored_ranks(y: np.ndarray) -> np.ndarray:
    """Average ranks with NaN (censored) tied above every finite value."""
    return average_ranks(np.where(np.isnan(y), np.inf, y))


def spearman(x: np.ndarray, ry: np.ndarray) -> float:
    """Rank correlation of x with the (already ranked) ry."""
    return float(np.corrcoef(average_ranks(x), ry)[0, 1])


def variance_share(x: np.ndarray, ry: np.ndarray, bins: int, categorical: bool = False) -> float:
    """First-order share of Var(ry) explained by x (binned), minus its no-effect bias."""
    if categorical:
        labels = x.astype(np.int64)
    else:
        order = np.argsort(x, kind="mergesort")
        labels = np.empty(len(x), np.int64)
        labels[order] = np.arange(len(x)) * bins // len(x)
    k = len(np.unique(labels))
    total = ry.var()
    if total == 0 or k < 2:
        return float("nan")
    counts = np.bincount(labels)
    means = np.bincount(labels, weights=ry) / np.maximum(counts, 1)
    between = np.sum(counts * means**2) / len(ry) - ry.mean() ** 2
    raw = between / total
    return float(raw - (k - 1) / (len(ry) - 1) * (1 - raw))


def sensitivity(scenario: Scenario, trajectories: int = 20_000, seed: int = 0, bins: int = 20) -> pa.Table:
    """The sensitivity table of ``scenario`` from ``trajectories`` sampled trajectories."""
    if isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer)):
        raise ArgumentError(f"trajectories must be a whole number, got {trajectories!r}")
    if not 100 <= trajectories <= 2_000_000:
        raise ArgumentError(f"sensitivity needs between 100 and 2,000,000 trajectories, got {trajectories:,}")
    model, _ = build(scenario)
    if not model.inputs and not model.regimes:
        raise ScenarioError(
            scenario.source,
            "",
            "no uncertain inputs (every number is fixed and there are no "
            "regimes), so nothing drives the outputs; give some numbers a distribution",
        )
    out = engine.sample_trajectories(scenario, trajectories, seed)
    inputs = {name: out.inputs[:, i] for i, name in enumerate(model.inputs)}
    if model.regimes:
        inputs["regime"] = out.regime
    rows: dict[str, list] = {name: [] for name in SCHEMA.names}
    for metric, actor, rank, threshold, values in _outputs(scenario, model):
        y = values(out)
        ry = censored_ranks(y)
        reached = float(np.mean(~np.isnan(y)))
        for name, x in inputs.items():
            categorical = name == "regime"
            constant = np.all(x == x[0]) or np.all(ry == ry[0])
            rho = float("nan") if constant or categorical else spearman(x, ry)
            share = float("nan") if constant else variance_share(x, ry, bins, categorical)
            for key, v in (
                ("scenario", scenario.name),
                ("output", metric),
                ("actor", actor),
                ("rank", rank),
                ("threshold", threshold),
                ("input", name),
                ("n", trajectories),
                ("p_reached", reached),
                ("spearman", rho),
                ("variance_share", share),
            ):
                rows[key].append(v)
    meta = io.provenance(
        scenario=scenario.name, scenario_toml=scenario.text, seed=seed, trajectories=trajectories, bins=bins
    )
    return io.table(SCHEMA, rows, meta)


OUTPUTS = ("t_first", "lead_time", "diffusion_date")


def _outputs(scenario: Scenario, model):
    """(output, actor, rank, threshold, values) of every output, in the table's order;
    ``values(sample)`` gives its per-trajectory values (years, NaN: not by the horizon)."""
    f = model.config.frontier
    for t, thr in enumerate(scenario.thresholds):
        for r, row in enumerate(model.rows):
            if r == f:
                yield "t_first", row.actor, row.rank, thr.name, lambda out, t=t: out.t_first[:, f, t]
            else:
                yield (
                    "lead_time",
                    row.actor,
                    row.rank,
                    thr.name,
                    lambda out, r=r, t=t: out.t_first[:, r, t] - out.t_first[:, f, t],
                )
        for k, budget in enumerate(scenario.access_budgets):
            yield "diffusion_date", f"${budget:g}", 1, thr.name, lambda out, k=k, t=t: out.diffusion[:, k, t]


def output_keys(scenario: Scenario) -> list[tuple[str, str, int, str]]:
    """(output, actor, rank, threshold) of every output :func:`sensitivity` reports."""
    return [o[:4] for o in _outputs(scenario, build(scenario)[0])]


def label(actor: str, rank: int) -> str:
    """A row as options and charts name it: ``labs`` (rank 1), ``labs #5``."""
    return actor if rank == 1 else f"{actor} #{rank}"


def choose(keys, output: str | None = None, actor: str | None = None, threshold: str | None = None):
    """The (output, actor, rank, threshold) among ``keys`` that the options name: output
    (default ``t_first``), actor (``labs #5`` or ``labs#5`` for a group's rank, ``labs`` or
    ``labs #1`` for its first; default the output's first), threshold (default the middle
    one). Raises an ArgumentError naming the valid choices."""
    keys = [tuple(k) for k in keys]
    output = output or "t_first"
    outputs = list(dict.fromkeys(k[0] for k in keys))
    if output not in outputs:
        raise ArgumentError(f"unknown output {output!r}; valid outputs: {', '.join(outputs) or 'none'}")
    keys = [k for k in keys if k[0] == output]
    actors = list(dict.fromkeys(label(k[1], k[2]) for k in keys))
    wanted = actors[0] if actor is None else " #".join(p.strip() for p in actor.split("#"))
    wanted = wanted[: -len(" #1")] if wanted.endswith(" #1") else wanted  # rank 1 is the plain name
    if wanted not in actors:
        raise ArgumentError(f"unknown actor {actor!r} for {output}; valid actors: {', '.join(actors)}")
    keys = [k for k in keys if label(k[1], k[2]) == wanted]
    thresholds = list(dict.fromkeys(k[3] for k in keys))
    threshold = threshold or thresholds[len(thresholds) // 2]
    if threshold not in thresholds:
        raise ArgumentError(f"unknown threshold {threshold!r}; valid thresholds: {', '.join(thresholds)}")
    return next(k for k in keys if k[3] == threshold)


def no_effect(share: float | None, rho: float | None, n: int, bins: int) -> bool:
    """Whether an input's measured effect is within Monte Carlo noise of none: variance
    share below 3 standard deviations of its no-effect spread (about sqrt(2 (bins - 1)) /
    (n - 1)) and rank correlation (None for a category) below 3 / sqrt(n - 1)."""
    if share is None or share != share:
        return True
    small_share = share < 3 * np.sqrt(2 * (bins - 1)) / (n - 1)
    return bool(small_share and (rho is None or rho != rho or abs(rho) < 3 / np.sqrt(n - 1)))


def top_drivers(table: pa.Table, n: int = 3) -> list[tuple[str, str, list[tuple[str, float, float | None]]]]:
    """Per (output, actor #rank, threshold): the n inputs with the largest variance share,
    as (input, share, rank correlation or None). Inputs whose share is undefined (null in
    the table: a constant input or output) are left out."""
    groups: dict = {}
    for r in table.to_pylist():
        groups.setdefault((f"{r['output']} {label(r['actor'], r['rank'])}", r["threshold"]), []).append(
            (r["input"], r["variance_share"], r["spearman"])
        )
    out = []
    for (which, threshold), items in groups.items():
        defined = lambda x: x is not None and x == x  # null (or NaN) is undefined
        items = sorted(
            ((name, share, rho if defined(rho) else None) for name, share, rho in items if defined(share)),
            key=lambda i: -i[1],
        )[:n]
        out.append((which, threshold, items))
    return out
