"""mcengine agrees with the independent NumPy implementation of BENCH.md (benchmarks/).

Tolerances are Monte Carlo errors: 5 standard errors of the difference of two independent
estimates, each standard error estimated from the NumPy sample (quantile SE from the
order-statistic formula sqrt(q(1-q)/n) / density, density from neighbouring quantiles)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import compare_peer, numpy_peer

pytestmark = pytest.mark.slow  # long statistical or multi-process checks: `pytest -m "not slow"` skips them

K = 5.0


def quantile_se(x: np.ndarray, q: float, n: int, delta: float = 0.02) -> float:
    xs = np.where(np.isnan(x), np.inf, x)
    with np.errstate(invalid="ignore"):  # inf - inf where the neighbour is censored
        lo, hi = np.quantile(xs, [max(q - delta, 0.0), min(q + delta, 1.0)])
    spread = (hi - lo) / (min(q + delta, 1.0) - max(q - delta, 0.0))
    return math.sqrt(q * (1 - q) / n) * spread if np.isfinite(spread) else math.inf


def test_engine_agrees_with_numpy_baseline():
    n = 20_000
    c = compare_peer.compare(n, seed=0, numpy_seed=1)
    sim = numpy_peer.simulate(n, seed=1)
    actors, thresholds = list(sim["actors"]), list(sim["thresholds"])
    t = sim["t_first"]
    f = actors.index("frontier")
    checked = 0
    for row in c["rows"]:
        i, j = actors.index(row["actor"]), thresholds.index(row["threshold"])
        x = t[:, i, j] - (t[:, f, j] if row["metric"] == "lead_time" else 0.0)
        (pe, pn) = row["p_reached"]
        tol_p = K * math.sqrt(2 * pn * (1 - pn) / n) + 2 / n
        assert abs(pe - pn) <= tol_p, (row, tol_p)
        for q in (5, 50, 95):
            e, r = row[f"p{q}"]
            if (e is None) != (r is None):  # only where the quantile sits at the reached share
                assert abs(pn - q / 100) <= tol_p, row
                continue
            if e is None:
                continue
            tol = K * math.sqrt(2) * quantile_se(x, q / 100, n) + 1e-3
            assert abs(e - r) <= tol, (row, q, tol)
            checked += 1
    assert checked >= 200
