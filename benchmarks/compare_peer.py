"""Cross-check mcengine against the independent NumPy implementation of BENCH.md.

    python -m benchmarks.compare_peer -n 200000 [--seed 0] [--numpy-seed 1]

Runs both on the peer scenario in one process and prints, for every actor, threshold and
metric, the largest differences in p_reached and in p5/p50/p95 (years), against the
acceptance bounds (0.01 and 0.1 years), and the throughput of each on this device. Writes
the figures to benchmarks/results/peer-agreement-<platform>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import jax

import mcengine

from . import numpy_peer

PEER = Path(__file__).with_name("peer.toml")
RESULTS = Path(__file__).with_name("results")
STATS = ("p_reached", "p5", "p50", "p95")


def compare(n: int, seed: int = 0, numpy_seed: int = 1) -> dict:
    """Run both implementations; return their rows keyed by (actor, threshold, metric)."""
    t0 = time.perf_counter()
    res = mcengine.run(mcengine.load_scenario(PEER), trajectories=n, seed=seed)
    engine_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim = numpy_peer.simulate(n, seed=numpy_seed)
    numpy_wall = time.perf_counter() - t0
    ref = numpy_peer.summarise(sim["t_first"], sim["actors"], sim["thresholds"])
    eng = {(r["actor"], r["threshold"], r["metric"]): r for r in res.events.to_pylist()}
    rows = []
    for r in ref:
        e = eng[(r["actor"], r["threshold"], r["metric"])]
        row = {"actor": r["actor"], "threshold": r["threshold"], "metric": r["metric"]}
        for k in STATS:
            row[k] = (e[k], r[k])
        rows.append(row)
    return {
        "rows": rows,
        "engine_sample_seconds": res.metadata["sample_seconds"],
        "engine_compile_seconds": res.metadata["compile_seconds"],
        "engine_wall_seconds": engine_wall,
        "numpy_wall_seconds": numpy_wall,
        "metadata": res.metadata,
    }


def worst(rows) -> dict:
    """Largest |engine - numpy| per statistic; a null on one side only counts as infinite."""
    out = {}
    for k in STATS:
        d = 0.0
        for row in rows:
            a, b = row[k]
            if (a is None) != (b is None):
                d = math.inf
            elif a is not None:
                d = max(d, abs(a - b))
        out[k] = d
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--trajectories", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--numpy-seed", type=int, default=1)
    args = ap.parse_args(argv)
    c = compare(args.trajectories, args.seed, args.numpy_seed)
    w = worst(c["rows"])
    ok = w["p_reached"] <= 0.01 and max(w["p5"], w["p50"], w["p95"]) <= 0.1
    dev = jax.devices()[0]
    n = args.trajectories
    print(f"peer scenario, {n:,} trajectories each, on {dev.platform} ({dev.device_kind})")
    print(
        f"largest |mcengine - numpy|: p_reached {w['p_reached']:.4f} (bound 0.01); "
        f"p5 {w['p5']:.3f}, p50 {w['p50']:.3f}, p95 {w['p95']:.3f} years (bound 0.1) -> {'AGREE' if ok else 'DISAGREE'}"
    )
    print(
        f"mcengine: compile {c['engine_compile_seconds']:.1f} s, sample {c['engine_sample_seconds']:.2f} s "
        f"({n / c['engine_sample_seconds']:,.0f} trajectories/s); numpy: {c['numpy_wall_seconds']:.2f} s "
        f"({n / c['numpy_wall_seconds']:,.0f} trajectories/s)"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"peer-agreement-{dev.platform}.json"
    out.write_text(
        json.dumps(
            {
                "trajectories": n,
                "seed": args.seed,
                "numpy_seed": args.numpy_seed,
                "worst": w,
                "agree": ok,
                "device": f"{dev.platform} ({dev.device_kind})",
                "versions": c["metadata"]["versions"],
                "host": c["metadata"]["host"],
                "engine_sample_seconds": c["engine_sample_seconds"],
                "engine_compile_seconds": c["engine_compile_seconds"],
                "numpy_seconds": c["numpy_wall_seconds"],
                "rows": c["rows"],
            },
            indent=1,
        )
    )
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
