"""Plain-NumPy reference implementation of the fixed "peer" benchmark scenario.

What it is
----------
An independent re-implementation of the mcengine model (``MODEL.md`` sections 2-5) for exactly
one scenario, the "peer" scenario of ``BENCH.md``, whose numbers are hard-coded below in
``PEER``.  It is written from those two documents only (no mcengine code is used) so that it can
cross-check the JAX engine's numbers and serve as its CPU performance baseline.  It is
vectorised over trajectories, with a Python loop over time steps, and processes trajectories in
chunks so that memory stays bounded.

Units
-----
Everything is in log10 units ("OOM"): hardware price-performance ``H`` in log10 FLOP/$,
algorithmic efficiency ``A`` in log10(effective FLOP / physical FLOP) relative to 2025
algorithms, budgets ``B_i`` in log10 $, effective compute ``E_i = B_i + H_i + A_i`` in log10
effective FLOP (2025 algorithms).  Rates are OOM/year, volatilities OOM/sqrt(year), lags years,
penalties OOM.  Time is calendar years (float64 throughout).

Scenario (BENCH.md)
-------------------
* time: 2025.0 -> 2045.0, 12 steps/year (240 steps, dt = 1/12 yr).
* H: initial 18 (1e18 FLOP/$, fixed), rate normal(0.09, 0.15), volatility 0.05.
* A: initial 0, rate normal(0.26, 0.72), volatility 0.10.
* budgets: initial lognormal(p5, p95) $, rate normal(p5, p95), volatility 0.10,
  soft cap $1e12 (fixed), per actor (frontier, follower, open_weights, restricted, academic)
  with algo_lag / hw_lag (years) and hw_penalty (OOM) from the BENCH.md table.
* thresholds: E >= 27, 28, ..., 34 (1e27 .. 1e34 effective FLOP).
* no jumps, no regimes, no rate decay, no correlations, no catch-up, no open release.

"normal(p5, p95)" means mean (p5+p95)/2, sd (p95-p5)/3.2897; "lognormal(p5, p95)" means the
log10 of the quantity is normal with percentiles log10(p5), log10(p95).

Dynamics (MODEL.md sections 3-4)
--------------------------------
Per trajectory, initial levels and rates are drawn once (all independent).  Each step

    Y(t + dt) = Y(t) + r_Y dt + sigma_Y sqrt(dt) eps,   eps ~ N(0, 1)

for Y in {H, A, Bu_i}, where Bu_i is the *uncapped* budget (its initial value is the budget
draw).  The budget actually used is the soft-capped
``B_i = cap - log10(1 + 10**(cap - Bu_i))`` (also at t_start), computed stably with
``np.logaddexp``.  Actor i sees ``H_i(t) = H(t - hw_lag_i) - hw_penalty_i`` and
``A_i(t) = A(t - algo_lag_i)``; a lagged time before t_start reads
``Y(t_start) - r_Y (t_start - t)`` with the trajectory's own rate; lags that are not whole
steps are read by linear interpolation between step values.

Events and outputs (MODEL.md section 5)
---------------------------------------
``t_first(i, X)`` is the first time E_i >= X, linearly interpolated inside the step where it
is first crossed; t_start if E_i(t_start) >= X; NaN (censored) if not crossed by the horizon.
``lead_time(i, X) = t_first(i, X) - t_first(frontier, X)``, censored if either is.
``summarise`` reports p_reached and p5/p50/p95 of the *unconditional* distribution, in which
censored trajectories count as +inf; a quantile that is not finite is reported as None.

Random numbers
--------------
One ``numpy.random.default_rng(seed)`` generator; chunks are drawn in sequence.  Per chunk of
m trajectories: first one ``standard_normal((2 + 2*n_actors, m))`` block for the per-trajectory
draws (rows: r_H, r_A, initial budget of each actor, budget rate of each actor), then per step
one ``standard_normal((2 + n_actors, m))`` block of shocks (rows: H, A, each actor's budget).
Results therefore depend on the chunk size (they are reproducible for a given seed and chunk).

Usage
-----
    python -m benchmarks.numpy_peer -n 200000 --seed 0 [--chunk 50000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

# z(0.95) - z(0.05), as fixed by BENCH.md.
_P5_P95_SPAN = 3.2897


def _normal(p5: float, p95: float) -> tuple[float, float]:
    """(mean, sd) of a normal with the given 5th and 95th percentiles."""
    return (0.5 * (p5 + p95), (p95 - p5) / _P5_P95_SPAN)


def _lognormal(p5: float, p95: float) -> tuple[float, float]:
    """(mean, sd) of log10 of a positive quantity with the given 5th/95th percentiles."""
    return _normal(math.log10(p5), math.log10(p95))


def _fixed(value: float) -> tuple[float, float]:
    return (float(value), 0.0)


# ---------------------------------------------------------------------------------------------
# The peer scenario of BENCH.md, in log10 units.  Distributions are (mean, sd) of a normal.
# ---------------------------------------------------------------------------------------------
PEER = {
    "t_start": 2025.0,
    "t_end": 2045.0,
    "steps_per_year": 12,
    "hardware": {"initial": _fixed(18.0), "rate": _normal(0.09, 0.15), "sigma": 0.05},
    "algorithms": {"initial": _fixed(0.0), "rate": _normal(0.26, 0.72), "sigma": 0.10},
    "budget_sigma": 0.10,
    "budget_cap": 12.0,  # log10 $ (1e12), fixed; None means no cap
    "actors": [
        # name, initial budget (log10 $), budget rate (OOM/yr), algo_lag, hw_lag (yr), hw_penalty (OOM)
        {
            "name": "frontier",
            "budget": _lognormal(2e8, 1.5e9),
            "rate": _normal(0.25, 0.50),
            "algo_lag": 0.0,
            "hw_lag": 0.0,
            "hw_penalty": 0.0,
        },
        {
            "name": "follower",
            "budget": _lognormal(5e7, 5e8),
            "rate": _normal(0.25, 0.50),
            "algo_lag": 0.5,
            "hw_lag": 0.0,
            "hw_penalty": 0.0,
        },
        {
            "name": "open_weights",
            "budget": _lognormal(2e7, 2e8),
            "rate": _normal(0.20, 0.45),
            "algo_lag": 1.0,
            "hw_lag": 0.0,
            "hw_penalty": 0.0,
        },
        {
            "name": "restricted",
            "budget": _lognormal(5e7, 5e8),
            "rate": _normal(0.20, 0.50),
            "algo_lag": 1.0,
            "hw_lag": 2.0,
            "hw_penalty": 0.3,
        },
        {
            "name": "academic",
            "budget": _lognormal(1e5, 1e6),
            "rate": _normal(0.00, 0.20),
            "algo_lag": 0.5,
            "hw_lag": 0.0,
            "hw_penalty": 0.0,
        },
    ],
    "frontier": "frontier",
    # thresholds on E (log10 effective FLOP, 2025 algorithms)
    "thresholds": [27.0, 28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0],
}

_LN10 = math.log(10.0)


def _soft_cap(b_uncapped: np.ndarray, cap: float | None) -> np.ndarray:
    """cap - log10(1 + 10**(cap - b)), without overflow (logaddexp in natural-log units)."""
    if cap is None:
        return b_uncapped
    return cap - np.logaddexp(0.0, (cap - b_uncapped) * _LN10) / _LN10


def _lagged(
    hist: np.ndarray,
    k: int,
    lag_steps: float,
    y0: np.ndarray,
    rate: np.ndarray,
    dt: float,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Y(t_k - lag) from the step history ``hist`` (rows 0..k filled).

    Before t_start: Y(t_start) - r_Y (t_start - t).  Between steps: linear interpolation.
    """
    j = k - lag_steps
    jr = round(j)
    if abs(j - jr) < 1e-9:  # whole step
        j = float(jr)
    if j < 0.0:
        # pre-start rule, with the trajectory's own rate
        return np.subtract(y0, rate * (-j * dt), out=out)
    lo = int(math.floor(j))
    frac = j - lo
    if frac == 0.0:
        if out is None:
            return hist[lo].copy()
        out[...] = hist[lo]
        return out
    return np.add((1.0 - frac) * hist[lo], frac * hist[lo + 1], out=out)


def _run(sc: dict, n: int, seed: int = 0, chunk: int = 50_000) -> dict:
    """Simulate scenario ``sc`` (same layout as PEER) for n trajectories."""
    t0 = float(sc["t_start"])
    spy = int(sc["steps_per_year"])
    n_steps = int(round((float(sc["t_end"]) - t0) * spy))
    dt = 1.0 / spy
    sqdt = math.sqrt(dt)
    actors = sc["actors"]
    na = len(actors)
    names = [a["name"] for a in actors]
    X = np.asarray(sc["thresholds"], dtype=np.float64)
    if np.any(np.diff(X) <= 0):
        raise ValueError("thresholds must be strictly increasing")
    nx = X.size
    cap = sc["budget_cap"]

    hw, al = sc["hardware"], sc["algorithms"]
    b_mu = np.array([a["budget"][0] for a in actors])[:, None]
    b_sd = np.array([a["budget"][1] for a in actors])[:, None]
    rb_mu = np.array([a["rate"][0] for a in actors])[:, None]
    rb_sd = np.array([a["rate"][1] for a in actors])[:, None]
    hw_pen = np.array([a["hw_penalty"] for a in actors])[:, None]
    algo_lag_steps = [float(a["algo_lag"]) * spy for a in actors]
    hw_lag_steps = [float(a["hw_lag"]) * spy for a in actors]
    sig_vec = np.array([hw["sigma"], al["sigma"]] + [sc["budget_sigma"]] * na)[:, None] * sqdt

    rng = np.random.default_rng(seed)
    t_first = np.full((n, na, nx), np.nan, dtype=np.float64)

    for c0 in range(0, n, chunk):
        m = min(chunk, n - c0)
        # ---- per-trajectory draws (independent) ----
        z = rng.standard_normal((2 + 2 * na, m))
        r_h = hw["rate"][0] + hw["rate"][1] * z[0]
        r_a = al["rate"][0] + al["rate"][1] * z[1]
        bu = b_mu + b_sd * z[2 : 2 + na]  # uncapped budgets (na, m)
        r_b = rb_mu + rb_sd * z[2 + na : 2 + 2 * na]
        h0 = (
            hw["initial"][0] + hw["initial"][1] * rng.standard_normal(m)
            if hw["initial"][1] > 0
            else np.full(m, hw["initial"][0])
        )
        a0 = (
            al["initial"][0] + al["initial"][1] * rng.standard_normal(m)
            if al["initial"][1] > 0
            else np.full(m, al["initial"][0])
        )

        drift = np.empty((2 + na, m))
        drift[0] = r_h * dt
        drift[1] = r_a * dt
        drift[2:] = r_b * dt

        Hh = np.empty((n_steps + 1, m))
        Ah = np.empty((n_steps + 1, m))
        Hh[0] = h0
        Ah[0] = a0
        h, a = h0.copy(), a0.copy()

        Hi = np.empty((na, m))
        Ai = np.empty((na, m))

        def effective(k: int) -> np.ndarray:
            for i in range(na):
                _lagged(Hh, k, hw_lag_steps[i], h0, r_h, dt, out=Hi[i])
                _lagged(Ah, k, algo_lag_steps[i], a0, r_a, dt, out=Ai[i])
            return _soft_cap(bu, cap) + (Hi - hw_pen) + Ai

        tf = np.full((na, m, nx), np.nan)
        e_prev = effective(0)
        # thresholds are sorted, so the crossed set is a prefix: count = #{X <= running max E}
        ncross = np.searchsorted(X, e_prev, side="right")
        ii, ss = np.nonzero(ncross > 0)
        for ii_, ss_, c_ in zip(ii, ss, ncross[ii, ss]):
            tf[ii_, ss_, :c_] = t0

        for k in range(1, n_steps + 1):
            eps = rng.standard_normal((2 + na, m))
            eps *= sig_vec
            eps += drift
            h += eps[0]
            a += eps[1]
            bu += eps[2:]
            Hh[k] = h
            Ah[k] = a
            e_new = effective(k)
            cnt = np.searchsorted(X, e_new, side="right")
            np.maximum(cnt, ncross, out=cnt)
            new = cnt > ncross
            if new.any():
                ii, ss = np.nonzero(new)
                lo_c = ncross[ii, ss]
                hi_c = cnt[ii, ss]
                e0 = e_prev[ii, ss]
                e1 = e_new[ii, ss]
                t_prev = t0 + (k - 1) * dt
                for d in range(int((hi_c - lo_c).max())):
                    sel = lo_c + d < hi_c
                    xi = lo_c[sel] + d
                    # e0 < X <= running max at step k, and the crossing is at step k: e1 >= X > e0
                    tf[ii[sel], ss[sel], xi] = t_prev + dt * (X[xi] - e0[sel]) / (e1[sel] - e0[sel])
                ncross = cnt
            e_prev = e_new

        t_first[c0 : c0 + m] = tf.transpose(1, 0, 2)

    return {
        "t_first": t_first,
        "actors": names,
        "frontier": sc["frontier"],
        "thresholds": [_threshold_name(x) for x in X],
        "threshold_values": X,
        "t_start": t0,
        "t_end": float(sc["t_end"]),
    }


def _threshold_name(x: float) -> str:
    xr = round(x)
    if abs(x - xr) < 1e-12:
        return f"1e{int(xr)}"
    return f"10^{x:g}"


def simulate(n: int, seed: int = 0, chunk: int = 50_000) -> dict:
    """Run the peer scenario for ``n`` trajectories.

    Returns a dict with ``t_first`` (float64 array, shape (n, n_actors, n_thresholds), calendar
    years, NaN = censored), ``actors`` (names, in BENCH.md order), ``frontier`` (its name),
    ``thresholds`` (names like "1e27") and ``threshold_values`` (log10 effective FLOP).
    """
    return _run(PEER, n, seed=seed, chunk=chunk)


def _quantiles_inf(x: np.ndarray, qs) -> list:
    """numpy's default ('linear', Hyndman-Fan type 7) quantiles of ``x`` where NaN = +inf.

    Computed explicitly so that a quantile lying exactly on a finite order statistic next to
    +inf stays finite (np.quantile returns NaN there because of inf*0).  Non-finite -> None.
    """
    v = np.where(np.isnan(x), np.inf, x)
    v = np.sort(v)
    nv = v.size
    out = []
    for q in qs:
        if nv == 0:
            out.append(None)
            continue
        hpos = (nv - 1) * q
        lo = int(math.floor(hpos))
        frac = hpos - lo
        if frac == 0.0 or lo + 1 >= nv:
            val = v[lo]
        else:
            a, b = v[lo], v[lo + 1]
            val = a + (b - a) * frac if np.isfinite(b) else np.inf
        out.append(float(val) if np.isfinite(val) else None)
    return out


def summarise(t_first: np.ndarray, actors, thresholds, frontier: str = "frontier", qs=(0.05, 0.50, 0.95)) -> list[dict]:
    """Aggregate rows: t_first for every actor, lead_time for every non-frontier actor.

    Each row: actor, threshold, metric, n, p_reached, p5, p50, p95 (unconditional quantiles,
    censored = +inf, None where not finite).
    """
    actors = list(actors)
    thresholds = list(thresholds)
    fi = actors.index(frontier)
    n = t_first.shape[0]
    keys = [f"p{int(round(q * 100))}" for q in qs]
    rows = []
    for metric in ("t_first", "lead_time"):
        for i, name in enumerate(actors):
            if metric == "lead_time" and i == fi:
                continue
            for j, th in enumerate(thresholds):
                col = t_first[:, i, j]
                if metric == "lead_time":
                    col = col - t_first[:, fi, j]  # NaN if either is censored
                reached = int(np.count_nonzero(~np.isnan(col)))
                row = {
                    "actor": name,
                    "threshold": th,
                    "metric": metric,
                    "n": int(n),
                    "p_reached": reached / n if n else None,
                }
                row.update(dict(zip(keys, _quantiles_inf(col, qs))))
                rows.append(row)
    return rows


def _fmt(v, width=9, prec=2):
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{prec}f}"


def format_table(rows: list[dict]) -> str:
    lines = []
    metric = None
    for r in rows:
        if r["metric"] != metric:
            metric = r["metric"]
            unit = "calendar year" if metric == "t_first" else "years after frontier"
            lines.append("")
            lines.append(f"{metric} ({unit}; '-' = quantile among censored)")
            lines.append(f"{'actor':<13} {'thresh':>6} {'p_reached':>9} {'p5':>9} {'p50':>9} {'p95':>9}")
        lines.append(
            f"{r['actor']:<13} {r['threshold']:>6} {r['p_reached']:>9.4f} "
            f"{_fmt(r['p5'])} {_fmt(r['p50'])} {_fmt(r['p95'])}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.numpy_peer", description="Plain-NumPy reference run of the BENCH.md peer scenario."
    )
    p.add_argument("-n", type=int, default=200_000, help="number of trajectories")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=50_000, help="trajectories per chunk")
    p.add_argument("--json", metavar="FILE", help="write the summary rows as JSON")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    res = simulate(args.n, seed=args.seed, chunk=args.chunk)
    wall = time.perf_counter() - t0
    rows = summarise(res["t_first"], res["actors"], res["thresholds"], res["frontier"])

    print(f"peer scenario (BENCH.md), NumPy {np.__version__}: n={args.n} seed={args.seed} chunk={args.chunk}")
    print(format_table(rows))
    print()
    print(f"simulation wall time: {wall:.3f} s  ({args.n / wall:,.0f} trajectories/s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "scenario": "peer",
                    "n": args.n,
                    "seed": args.seed,
                    "chunk": args.chunk,
                    "wall_s": wall,
                    "trajectories_per_s": args.n / wall,
                    "rows": rows,
                },
                f,
                indent=1,
            )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
