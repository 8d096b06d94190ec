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

SCHEMA = pa.schema([
    pa.field("scenario", pa.string()), pa.field("output", pa.string()), pa.field("actor", pa.string()),
    pa.field("rank", pa.int32()), pa.field("threshold", pa.string()), pa.field("input", pa.string()),
    pa.field("n", pa.int64()), pa.field("p_reached", pa.float64()), pa.field("spearman", pa.float64()),
    pa.field("variance_share", pa.float64()),
])


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
        raise ScenarioError(scenario.source, "", "no uncertain inputs (every number is fixed and there are no "
                            "regimes), so nothing drives the outputs; give some numbers a distribution")
    out = engine.sample_trajectories(scenario, trajectories, seed)
    inputs = {name: out.inputs[:, i] for i, name in enumerate(model.inputs)}
    if model.regimes:
        inputs["regime"] = out.regime
    f = model.config.frontier
    outputs = []
    for t, thr in enumerate(scenario.thresholds):
        for r, row in enumerate(model.rows):
            if r == f:
                outputs.append(("t_first", row.actor, row.rank, thr.name, out.t_first[:, f, t]))
            else:
                outputs.append(("lead_time", row.actor, row.rank, thr.name, out.t_first[:, r, t] - out.t_first[:, f, t]))
        for k, budget in enumerate(scenario.access_budgets):
            outputs.append(("diffusion_date", f"${budget:g}", 1, thr.name, out.diffusion[:, k, t]))
    rows = {name: [] for name in SCHEMA.names}
    for metric, actor, rank, threshold, y in outputs:
        ry = censored_ranks(y)
        reached = float(np.mean(~np.isnan(y)))
        for name, x in inputs.items():
            categorical = name == "regime"
            constant = np.all(x == x[0]) or np.all(ry == ry[0])
            rho = float("nan") if constant or categorical else spearman(x, ry)
            share = float("nan") if constant else variance_share(x, ry, bins, categorical)
            for key, v in (("scenario", scenario.name), ("output", metric), ("actor", actor), ("rank", rank),
                           ("threshold", threshold), ("input", name), ("n", trajectories), ("p_reached", reached),
                           ("spearman", rho), ("variance_share", share)):
                rows[key].append(v)
    meta = io.provenance(scenario=scenario.name, scenario_toml=scenario.text, seed=seed, trajectories=trajectories,
                         bins=bins)
    return io.table(SCHEMA, rows, meta)


def top_drivers(table: pa.Table, n: int = 3) -> list[tuple[str, str, list[tuple[str, float, float | None]]]]:
    """Per (output, actor #rank, threshold): the n inputs with the largest variance share,
    as (input, share, rank correlation or None). Inputs whose share is undefined (null in
    the table: a constant input or output) are left out."""
    groups: dict = {}
    for r in table.to_pylist():
        label = f"{r['output']} {r['actor']}" + (f" #{r['rank']}" if r["rank"] != 1 else "")
        groups.setdefault((label, r["threshold"]), []).append((r["input"], r["variance_share"], r["spearman"]))
    out = []
    for (label, threshold), items in groups.items():
        defined = lambda x: x is not None and x == x  # null (or NaN) is undefined
        items = sorted(((name, share, rho if defined(rho) else None) for name, share, rho in items
                        if defined(share)), key=lambda i: -i[1])[:n]
        out.append((label, threshold, items))
    return out
