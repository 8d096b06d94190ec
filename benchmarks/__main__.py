"""Benchmarks of mcengine on the current device.

    python -m benchmarks run [--quick] [-n N]     engine vs its own generator, jax.random.normal and
                                                  the independent NumPy implementation, one process
    python -m benchmarks compile [--python PY]    cold compile time, sampling speed and bytes accessed
                                                  per trajectory of every built-in (one process each)
    python -m benchmarks scaling [--quick]        time vs trajectories, steps, actors, thresholds, ranks, access
    python -m benchmarks memory [--max N]         peak host memory vs trajectories (one process each)
    python -m benchmarks profile [-n N] [--scenario S] [--set K=V]  where the engine's time goes (JAX profiler)
    python -m benchmarks traffic [--scenario S] [--set K=V]  bytes per trajectory one run moves, by instruction

Every figure is printed as a table and written as JSON to benchmarks/results/ with the
device, versions, generator and chunk size. Ratios are taken within one process, so they
mean something on any machine; absolute times only on the device named.
"""

from __future__ import annotations

import os

# Like the command line: one CPU device per core (no effect on GPUs). Set before JAX loads.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={os.cpu_count() or 1}"
    ).strip()

import argparse  # noqa: E402
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import mcengine
from mcengine import engine, random
from mcengine.kernels import DEFAULT_GENERATOR, jump_draws
from mcengine.kernels.normals import block_draws, block_normals
from mcengine.model import build

from . import numpy_peer
from .traffic import traffic

HERE = Path(__file__).parent
PEER = HERE / "peer.toml"
RESULTS = HERE / "results"


def device_info() -> dict:
    d = jax.devices()[0]
    return {
        "platform": d.platform,
        "device_kind": d.device_kind,
        "devices": jax.local_device_count(),
        "host": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "versions": {"mcengine": mcengine.__version__, "jax": jax.__version__, "numpy": np.__version__},
        "prng": random.PRNG_IMPL,
        "generator": DEFAULT_GENERATOR,
        "engine_compiler_options": engine.compiler_options(d.platform),
    }


def normals_per_trajectory(scenario) -> int:
    """Standard normals one trajectory consumes: per step, one per stream plus the jump
    draws; plus one per uncertain per-trajectory number (and group order statistics)."""
    model, spec = build(scenario)
    c = model.config
    per_step = len(model.streams) + sum(jump_draws(f, k) for _, f, k in c.jumps)
    draws = sum(d.is_random for d in spec["draws"].values()) + sum(len(r) for _, _, r in model.groups)
    return c.n_years * c.steps_per_year * per_step + draws


REF_NUMPY = HERE.parent.parent / "shared" / "bench" / "ref_numpy.py"  # the project's independent NumPy baseline


def reference_numpy(path: Path):
    """The independent plain-NumPy implementation of BENCH.md (``ref_numpy.simulate(n,
    seed)``), or None if it is not there."""
    import importlib.util

    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("ref_numpy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def own_generator_step(per_trajectory: int, per_device: int):
    """The engine's own generator alone: the normals of per_device trajectories on every
    local device, drawn as the kernel draws them (normals.block_draws, one lane per stream,
    year blocks) and reduced to one number; compiled with the engine's options."""
    devices = jax.local_devices()
    d = len(devices)
    mesh = jax.sharding.Mesh(np.array(devices), ("d",))
    blocks = 20  # the peer scenario's years
    width = per_trajectory // blocks

    def local(seed):
        keys = random.trajectory_keys(seed[0], np.uint32(0), np.uint32(0), per_device)

        def body(total, b):
            return total + jnp.sum(block_normals(block_draws(keys, b, width), (width,))), None

        return jax.lax.scan(body, jnp.float32(0), jnp.arange(blocks))[0][None]

    f = jax.jit(
        jax.shard_map(
            local,
            mesh=mesh,
            in_specs=jax.sharding.PartitionSpec("d"),
            out_specs=jax.sharding.PartitionSpec("d"),
            check_vma=False,
        ),
        compiler_options=engine.compiler_options(devices[0].platform),
    )
    step = lambda i: f(jnp.stack([random.seed_key(i * d + k) for k in range(d)]))
    step(0).block_until_ready()
    return step


def rng_floor_step(per_trajectory: int, per_device: int, tuned: bool = False):
    """One jitted call generating per_device * per_trajectory standard normals on every
    local device with jax.random.normal (threefry2x32), reduced to one number so nothing
    is kept; ``step(i)`` runs call i (a fresh key). ``tuned``: compiled with the engine's
    compiler options instead of XLA's defaults."""
    devices = jax.local_devices()
    d = len(devices)
    mesh = jax.sharding.Mesh(np.array(devices), ("d",))

    def local(keys):
        return jnp.sum(jax.random.normal(keys[0], (per_device, per_trajectory), jnp.float32))[None]

    f = jax.jit(
        jax.shard_map(
            local, mesh=mesh, in_specs=jax.sharding.PartitionSpec("d"), out_specs=jax.sharding.PartitionSpec("d")
        ),
        compiler_options=engine.compiler_options(devices[0].platform) if tuned else None,
    )
    step = lambda i: f(jax.random.split(jax.random.fold_in(jax.random.key(1), i), d))
    step(0).block_until_ready()
    return step


def rng_floor_seconds(step, n: int, per_device: int) -> float:
    """Seconds for the floor's normals of n trajectories, in whole calls."""
    d = jax.local_device_count()
    chunks = math.ceil(n / (per_device * d))
    t = time.perf_counter()
    for i in range(chunks):
        out = step(i)
    out.block_until_ready()
    return (time.perf_counter() - t) * n / (chunks * per_device * d)


def rng_floor(n: int, per_trajectory: int) -> tuple[float, tuple[int, bool], dict]:
    """The RNG floor: seconds this device takes to generate the normals of n trajectories
    with jax.random.normal, at the fastest of several chunk sizes (cache effects matter on
    a CPU), compiled with XLA's defaults or the engine's options, whichever is faster.
    Returns (seconds, (trajectories per device and call, tuned), seconds per case tried)."""
    gpu = jax.devices()[0].platform != "cpu"
    tried = {}
    for per_device in (2**14, 2**16, 2**18) if gpu else (128, 256, 512, 1024, 4096):
        for tuned in (False, True):
            step = rng_floor_step(per_trajectory, per_device, tuned)
            tried[per_device, tuned] = min(rng_floor_seconds(step, n, per_device) for _ in range(2))
    fastest = min(tried, key=tried.get)
    return tried[fastest], fastest, tried


def engine_time(scenario, n: int, chunk: int | None = None, repeats: int = 2) -> tuple[float, float, int]:
    """(sample seconds: best of ``repeats`` runs, compile seconds: the first run's, chunk size)."""
    runs = [engine.run(scenario, n, seed=0, chunk_size=chunk) for _ in range(repeats)]
    return min(a.sample_seconds for a in runs), runs[0].compile_seconds, runs[0].chunk_size


def cmd_run(args) -> dict:
    n = args.trajectories or (20_000 if args.quick else 200_000)
    s = mcengine.load_scenario(PEER)
    per = normals_per_trajectory(s)
    first = engine.run(s, n, seed=0)  # compiles
    comp, chunk = first.compile_seconds, first.chunk_size
    _, (floor_chunk, floor_tuned), floor_tried = rng_floor(min(n, 50_000), per)
    per_device = max(1, chunk // jax.local_device_count())
    floor_step = rng_floor_step(per, floor_chunk, floor_tuned)
    own_step = own_generator_step(per, per_device)
    ref = reference_numpy(Path(args.reference))
    numpy_n = min(n, 50_000 if args.quick else 200_000)  # NumPy time is linear in n: extrapolate past this
    # The engine and its references alternate, best of several rounds each, so that a slow
    # moment of a shared machine does not land on one side only.
    eng, floor, own, numpy_s = first.sample_seconds, math.inf, math.inf, math.inf
    for _ in range(2 if args.quick else 3):
        floor = min(floor, rng_floor_seconds(floor_step, n, floor_chunk))
        own = min(own, rng_floor_seconds(own_step, n, per_device))
        eng = min(eng, engine.run(s, n, seed=0).sample_seconds)
        t = time.perf_counter()
        (ref.simulate if ref else numpy_peer.simulate)(n=numpy_n, seed=0)
        numpy_s = min(numpy_s, (time.perf_counter() - t) * n / numpy_n)
    baseline = f"independent NumPy ({REF_NUMPY.name}, 1 core)" if ref else "benchmarks/numpy_peer.py (1 core)"
    out = {
        "benchmark": "run",
        "scenario": "peer",
        "trajectories": n,
        "numpy_trajectories": numpy_n,
        "numpy_baseline": baseline,
        "chunk_size": chunk,
        "normals_per_trajectory": per,
        "engine_sample_s": eng,
        "engine_compile_s": comp,
        "own_generator_s": own,
        "rng_floor_s": floor,
        "rng_floor_per_device": floor_chunk,
        "rng_floor_compiler_options": "engine's" if floor_tuned else "XLA's",
        "rng_floor_tried_50k": {
            f"{k}/device, {'engine' if tuned else 'XLA'} options": v for (k, tuned), v in floor_tried.items()
        },
        "numpy_s": numpy_s,
        "engine_over_own_generator": eng / own,
        "engine_over_floor": eng / floor,
        "engine_speedup_over_numpy": numpy_s / eng,
        **device_info(),
    }
    rows = [
        ("engine's own generator (same normals, kernel's layout)", own, n / own),
        (f"jax.random.normal ({floor_chunk:,}/device{', engine options' if floor_tuned else ''})", floor, n / floor),
        ("mcengine (sampling)", eng, n / eng),
        (baseline, numpy_s, n / numpy_s),
    ]
    print(
        f"peer scenario, {n:,} trajectories, {per:,} normals each, on {out['devices']} "
        f"{out['platform']} device(s) ({out['device_kind']}); chunk {chunk:,}; generator {DEFAULT_GENERATOR}"
    )
    print(f"{'':58}{'seconds':>10}{'trajectories/s':>18}")
    for name, sec, rate in rows:
        print(f"{name:58}{sec:>10.3f}{rate:>18,.0f}")
    print(
        f"engine / own generator = {out['engine_over_own_generator']:.2f}x; engine / jax.random.normal = "
        f"{out['engine_over_floor']:.2f}x; engine vs NumPy = {out['engine_speedup_over_numpy']:.2f}x faster "
        f"({out['devices']} devices vs 1 core); compile {comp:.1f} s (separate)"
    )
    return out


COMPILE_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import mcengine
from mcengine import engine
s = mcengine.load_scenario(sys.argv[1])
n = int(sys.argv[2])
t = time.perf_counter()
first = engine.run(s, n, seed=0)
first_s = time.perf_counter() - t
again = engine.run(s, n, seed=0)
step = list(engine._COMPILED.values())[0]
open(sys.argv[3], "w").write(step.as_text())
cost = step.cost_analysis()
cost = cost[0] if isinstance(cost, (list, tuple)) else cost
print(json.dumps({"compile_s": first.compile_seconds, "sample_s": again.sample_seconds,
                  "wait_s": first_s - again.sample_seconds,
                  "chunk_size": again.chunk_size, "devices": again.devices,
                  "fusions": step.as_text().count(" fusion("),
                  "bytes_accessed": float(cost.get("bytes accessed", float("nan"))),
                  "flops": float(cost.get("flops", float("nan")))}))
"""


def cmd_compile(args) -> dict:
    """Per built-in scenario, each in a fresh process without the compile cache: the wait
    before sampling starts (the first run's wall time less a warm run's sampling time: every
    compile and the pilot), the engine's own compile time of its chunk step, the sampling
    speed, the compiled step's fusions (XLA compiles each fusion to a kernel of its own: on a
    2-core Xeon its fusion emitter took 20-28 ms a fusion, most of the compile time, with
    LLVM's code generation), XLA's cost analysis of the compiled step (bytes accessed per
    trajectory, each loop body counted once) and the bytes one run of the step moves per
    trajectory with every loop counted as often as it runs (:mod:`benchmarks.traffic`).
    ``--python`` measures another install of mcengine (an environment with an earlier commit
    installed) the same way, for before/after tables."""
    env = {**os.environ, "MCENGINE_CACHE": "0"}
    python = args.python or sys.executable
    names = subprocess.run(
        [python, "-c", "import mcengine.scenario as s; print(' '.join(s.builtin_names()))"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # not this folder: the interpreter must import its own mcengine
        check=True,
    ).stdout.split()
    rows = []
    print(
        f"{'scenario':32}{'wait s':>8}{'compile s':>10}{'fusions':>9}{'traj/s':>12}"
        f"{'bytes/traj XLA':>16}{'bytes/traj run':>16}"
    )
    hlo = Path(tempfile.mkdtemp()) / "step.hlo"
    for name in [*names, str(PEER)]:
        r = subprocess.run(
            [python, "-c", COMPILE_PROBE, name, str(args.trajectories), str(hlo)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        if r.returncode:
            print(f"{name:32} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
            continue
        row = {"scenario": Path(name).stem, **json.loads(r.stdout.strip().splitlines()[-1])}
        per_device = max(1, row["chunk_size"] // row["devices"])
        row["bytes_per_trajectory"] = row["bytes_accessed"] / per_device
        moved = traffic(hlo.read_text())
        row["bytes_per_trajectory_run"] = moved.total / per_device
        row["loops_without_trip_count"] = moved.unknown_trips
        row["trajectories_per_s"] = args.trajectories / row["sample_s"]
        rows.append(row)
        print(
            f"{row['scenario']:32}{row['wait_s']:>8.1f}{row['compile_s']:>10.1f}{row['fusions']:>9}"
            f"{row['trajectories_per_s']:>12,.0f}"
            f"{row['bytes_per_trajectory']:>16,.0f}{row['bytes_per_trajectory_run']:>16,.0f}"
        )
    return {
        "benchmark": "compile",
        "python": python,
        "trajectories": args.trajectories,
        "rows": rows,
        **device_info(),
    }


def _variant(actors=5, thresholds=8, ranks=0, spy=12, capped=False, access=0):
    """The peer scenario reshaped: more actors (copies), thresholds, a group's ranks (with a
    cap if ``capped``), access budgets, steps per year."""
    base = mcengine.load_scenario(PEER)
    text = base.text.split("# BENCH.md thresholds")[0].replace("steps_per_year = 12", f"steps_per_year = {spy}")
    extra = []
    for i in range(actors - 5):
        extra.append(
            f'[[actors]]\nname = "copy{i}"\nbudget = {{ lognormal = [5e7, 5e8] }}\n'
            f"growth = {{ normal = [0.25, 0.50] }}\nvolatility = 0.10\ncap = 1e12\nalgo_lag = 0.5\n"
        )
    if ranks:
        extra.append(
            f'[[groups]]\nname = "orgs"\ncount = 1000\nranks = {list(range(1, ranks + 1))}\n'
            f"budget = {{ lognormal = [1e5, 1e9] }}\ngrowth = {{ normal = [0.2, 0.4] }}\nvolatility = 0.1\n"
            + ("cap = { lognormal = [1e9, 1e11] }\nhw_lag = 0.5\n" if capped else "")
        )
    levels = np.linspace(27, 34, thresholds)
    extra += [f'[[thresholds]]\nname = "t{i}"\nflop = {10**x:.6e}\nkind = "effective"\n' for i, x in enumerate(levels)]
    if access:
        extra.append(f"[access]\nbudgets = {[float(b) for b in np.logspace(5, 11, access)]}\n")
    return mcengine.parse_scenario(
        text + "\n".join(extra),
        f"peer-variant({actors},{thresholds},{ranks},{spy},{'capped' if capped else 'uncapped'},{access})",
    )


# Pairs of scaling cases whose difference prices one added item, as a share of an added actor.
ADDED = [
    ("threshold", "thresholds 8", "thresholds 64", 56),
    ("group rank, no cap", "group ranks 3", "group ranks 30", 27),
    ("group rank, capped", "capped group ranks 3", "capped group ranks 30", 27),
    ("access budget", "access budgets 3", "access budgets 30", 27),
]


def cmd_scaling(args) -> dict:
    quick = args.quick
    n_fixed = 5_000 if quick else 40_000
    rows = []

    def measure(label, scenario, n):
        sec, comp, chunk = engine_time(scenario, n, repeats=5)  # run-to-run noise of +-30% seen on shared VMs
        model, _ = build(scenario)
        streams = len(model.streams)
        steps = model.config.n_years * model.config.steps_per_year
        rows.append(
            {
                "case": label,
                "trajectories": n,
                "steps": steps,
                "streams": streams,
                "rows": len(model.rows),
                "thresholds": len(scenario.thresholds),
                "sample_s": sec,
                "compile_s": comp,
                "chunk_size": chunk,
                "ns_per_trajectory_step_stream": 1e9 * sec / (n * steps * streams),
            }
        )
        print(
            f"{label:28}{n:>11,}{steps:>7}{streams:>8}{len(model.rows):>6}{len(scenario.thresholds):>5}"
            f"{sec:>10.3f}{comp:>9.1f}{rows[-1]['ns_per_trajectory_step_stream']:>10.2f}"
        )

    print(
        f"{'case':28}{'traj':>11}{'steps':>7}{'streams':>8}{'rows':>6}{'thr':>5}{'sample s':>10}"
        f"{'compile':>9}{'ns/t.s.s':>10}"
    )
    peer = mcengine.load_scenario(PEER)
    for n in (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000) + ((10_000_000,) if args.big else ()):
        measure(f"trajectories {n:.0e}", peer, n)
    for spy in (12, 52) if quick else (12, 52, 365):
        measure(f"steps per year {spy}", _variant(spy=spy), n_fixed if spy < 365 else n_fixed // 4)
    for actors in (5, 50):
        measure(f"actors {actors}", _variant(actors=actors), n_fixed)
    for thresholds in (8, 64):
        measure(f"thresholds {thresholds}", _variant(thresholds=thresholds), n_fixed)
    for capped in (False, True):
        for ranks in (3, 30):
            measure(f"{'capped ' if capped else ''}group ranks {ranks}", _variant(ranks=ranks, capped=capped), n_fixed)
    for access in (3, 30):
        measure(f"access budgets {access}", _variant(access=access), n_fixed)
    print("ns/t.s.s: sampling nanoseconds per trajectory x step x random stream (flat = linear cost)")
    time_of = {r["case"]: r["sample_s"] for r in rows}
    per_actor = (time_of["actors 50"] - time_of["actors 5"]) / 45
    added = {name: (time_of[b] - time_of[a]) / count / per_actor for name, a, b, count in ADDED}
    print(
        "cost of one added item, as a share of one added actor (a random stream and its row): "
        + ", ".join(f"{name} {share:.2f}" for name, share in added.items())
    )
    return {"benchmark": "scaling", "rows": rows, "added_item_cost_per_actor": added, **device_info()}


def cmd_memory(args) -> dict:
    sizes = [10**5, args.max]
    rows = []
    for n in sizes:
        code = (
            "import resource, mcengine; mcengine.run('" + str(PEER) + f"', trajectories={n}, seed=0); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rss = int(out.stdout.strip().splitlines()[-1]) * 1024
        rows.append({"trajectories": n, "peak_rss_bytes": rss, "wall_s": time.perf_counter() - t})
        print(f"{n:>14,} trajectories: peak host memory {rss / 2**20:,.0f} MiB ({rows[-1]['wall_s']:.0f} s)")
    ratio = rows[-1]["peak_rss_bytes"] / rows[0]["peak_rss_bytes"]
    print(f"peak memory ratio {sizes[-1]:.0e} / {sizes[0]:.0e} = {ratio:.3f} (target <= 1.2)")
    return {"benchmark": "memory", "rows": rows, "ratio": ratio, **device_info()}


def cmd_profile(args) -> dict:
    """Where the engine's time goes: the peer scenario (or ``--scenario``, with ``--set``
    overrides) under the JAX profiler, compiled operations ranked by their total time per
    trajectory (summed over devices, so on a CPU with one device per core it is core time)."""
    import collections
    import glob
    import gzip
    import tempfile

    n = args.trajectories or 100_000
    s = mcengine.load_scenario(args.scenario or PEER, args.overrides)
    engine.run(s, n, seed=0)  # compile outside the trace
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            engine.run(s, n, seed=0)
        with gzip.open(glob.glob(f"{folder}/**/*perfetto_trace.json.gz", recursive=True)[0]) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    total, calls = collections.Counter(), collections.Counter()
    for e in events:  # compiled operations only, not Python frames or runtime waits
        if e.get("ph") == "X" and not e["name"].startswith(
            ("$", "Thunk", "Pjit", "Common", "Slinky", "Wait", "np.", "shard_args", "cpp_pjit", "H2D", "D2H")
        ):
            total[e["name"]] += e.get("dur", 0)
            calls[e["name"]] += 1
    rows = [{"op": name, "us_per_trajectory": us / n, "calls": calls[name]} for name, us in total.most_common(25)]
    print(
        f"{_described(s, args.overrides)}, {n:,} trajectories "
        f"on {jax.local_device_count()} {jax.devices()[0].platform} device(s): "
        "top operations (a loop's own line includes the operations inside it)"
    )
    print(f"{'us/trajectory':>14}{'calls':>8}  operation")
    for r in rows:
        print(f"{r['us_per_trajectory']:>14.3f}{r['calls']:>8}  {r['op']}")
    return {
        "benchmark": "profile",
        "scenario": s.name,
        "overrides": args.overrides,
        "trajectories": n,
        "rows": rows,
        **device_info(),
    }


def _described(s, overrides) -> str:
    """The scenario a command measured, for its table's title."""
    return f"{s.name} scenario{' with ' + ', '.join(overrides) if overrides else ''}"


def _scenario_options(parser) -> None:
    """--scenario and --set, as the commands that measure one scenario take them."""
    parser.add_argument("--scenario", default=None, help="a built-in or a scenario file (default: peer)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="as mcengine run"
    )


def cmd_traffic(args) -> dict:
    """Where the compiled chunk step's memory traffic goes: the bytes one run moves per
    trajectory (every loop counted as often as it runs, :mod:`benchmarks.traffic`), against
    XLA's cost analysis (loop bodies once), and the instructions that move the most."""
    s = mcengine.load_scenario(args.scenario or PEER, args.overrides)
    run = engine.run(s, args.trajectories, seed=0)
    step = list(engine._COMPILED.values())[-1]
    cost = step.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    per_device = max(1, run.chunk_size // run.devices)
    xla = float(cost.get("bytes accessed", float("nan"))) / per_device
    moved = traffic(step.as_text())
    rows = [
        {"bytes_per_trajectory": i.bytes / per_device, "instruction": i.name, "op": i.op_name, "source": i.source}
        for i in moved.items[: args.top]
    ]
    print(
        f"{_described(s, args.overrides)}, chunk step of "
        f"{per_device:,} trajectories per device: {moved.total / per_device:,.0f} bytes per trajectory per run "
        f"(XLA's cost analysis, loop bodies once: {xla:,.0f}"
        f"; loops without a known trip count, counted once: {moved.unknown_trips})"
    )
    print(f"{'bytes/traj':>12}  {'instruction':36}{'source':32}operation")
    for r in rows:
        print(f"{r['bytes_per_trajectory']:>12,.0f}  {r['instruction'][:35]:36}{r['source'][:31]:32}{r['op'][-60:]}")
    return {
        "benchmark": "traffic",
        "scenario": s.name,
        "overrides": args.overrides,
        "trajectories_per_device": per_device,
        "bytes_per_trajectory_run": moved.total / per_device,
        "bytes_per_trajectory_once": moved.once / per_device,
        "bytes_per_trajectory_xla": xla,
        "loops_without_trip_count": moved.unknown_trips,
        "rows": rows,
        **device_info(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="RNG floor vs NumPy vs engine on the peer scenario")
    r.add_argument("--quick", action="store_true", help="small sizes: under a minute on 2 CPU cores")
    r.add_argument("-n", "--trajectories", type=int, default=None)
    r.add_argument("--reference", default=str(REF_NUMPY), help="the independent NumPy implementation (ref_numpy.py)")
    co = sub.add_parser("compile", help="cold compile time, speed and bytes per trajectory of every built-in")
    co.add_argument("--python", default=None, help="the Python of another mcengine install (before/after tables)")
    co.add_argument("-n", "--trajectories", type=int, default=20_000)
    sc = sub.add_parser("scaling", help="time vs trajectories, steps, actors, thresholds, group ranks, access budgets")
    sc.add_argument("--quick", action="store_true")
    sc.add_argument("--big", action="store_true", help="include 1e7 trajectories")
    pr = sub.add_parser("profile", help="where the engine's time goes (JAX profiler), per compiled operation")
    pr.add_argument("-n", "--trajectories", type=int, default=None)
    _scenario_options(pr)
    tr = sub.add_parser("traffic", help="bytes per trajectory one run of the chunk step moves, by instruction")
    tr.add_argument("-n", "--trajectories", type=int, default=2048)
    _scenario_options(tr)
    tr.add_argument("--top", type=int, default=25, help="instructions listed")
    m = sub.add_parser("memory", help="peak host memory for 1e5 vs --max trajectories")
    m.add_argument("--max", type=int, default=10**7)
    args = ap.parse_args(argv)
    commands = {
        "run": cmd_run,
        "compile": cmd_compile,
        "scaling": cmd_scaling,
        "memory": cmd_memory,
        "profile": cmd_profile,
        "traffic": cmd_traffic,
    }
    result = commands[args.command](args)
    RESULTS.mkdir(exist_ok=True)
    tag = f"{result['platform']}-{time.strftime('%Y%m%d-%H%M%S')}"
    label = "-other" if getattr(args, "python", None) else ""
    path = RESULTS / f"{args.command}{label}{'-quick' if getattr(args, 'quick', False) else ''}-{tag}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
