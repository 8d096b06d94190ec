"""Orchestration: chunks of trajectories, devices, processes, jit, checkpoints.

Trajectories are processed in fixed-shape chunks (the last one padded and masked, so one
compile serves a whole run). A chunk is split evenly over the local devices; each device
samples its share and reduces it to histogram counts in one jitted call, and only counts
come back to the host, so memory does not grow with the number of trajectories. With
several processes (``jax.distributed``), process p takes chunks p, p + P, ...; their
integer counts are summed exactly at the end. Trajectory i's random numbers depend on the
seed and i alone, so results are identical whatever the chunk size, device count or
process count.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from . import aggregate, io, jaxsetup, random
from .errors import ArgumentError, ResourceError
from .kernels import DEFAULT_GENERATOR, GENERATORS, MAX_BLOCK_STEPS, jump_draws
from .model import Model, Trajectories, build, trajectories
from .scenario import Scenario

PILOT_TRAJECTORIES = 4096  # fixed-size pilot that sets the fan-chart bins
# Fewest trajectories a device samples at once. XLA compiles arrays of up to ~16 elements
# differently, and the last bits of some results then change with the chunk size; shorter
# chunks are padded to this (measured: 17 and more per device agree bit for bit).
MIN_PER_DEVICE = 64
_FLUSH_COUNT = 2**30  # move device counts (int32) to the host before they could overflow
MAX_TRAJECTORIES = 10**12  # the most one run samples (indices, counts and bins stay exact far beyond)
MAX_DAYS = 7.0  # default limit on a run's estimated sampling time (api.run's max_days, --max-days)


def check_trajectories(trajectories) -> None:
    """ArgumentError unless ``trajectories`` is a whole number >= 1; ResourceError above
    MAX_TRAJECTORIES."""
    if isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer)) or trajectories < 1:
        raise ArgumentError(f"trajectories must be a whole number >= 1, got {trajectories!r}")
    if trajectories > MAX_TRAJECTORIES:
        raise ResourceError(
            f"{int(trajectories):,} trajectories is more than one run samples ({MAX_TRAJECTORIES:.0e})".replace(
                "e+", "e"
            )
            + "; quantiles settle long before that: use fewer"
        )


def _sample(seed_data, first_hi, first_lo, spec, count, model) -> Trajectories:
    """Outputs of trajectories [first, first + count), trajectories on the last axis."""
    return trajectories(random.trajectory_keys(seed_data, first_hi, first_lo, count), spec, model)


# XLA options for the engine's programs on CPU: prefer 512-bit vectors where the CPU has them
# (AVX-512). The kernel then runs 10-20% faster on such a CPU (peer, group, jump and weekly-step
# scenarios) with bit-identical results; jax.random.normal alone is not faster, so the RNG
# floor is unaffected. A jaxlib that does not know the option gets XLA's defaults. (XLA's
# older loop emitter, xla_cpu_use_fusion_emitters=False, was faster still but made the last
# bits of some results depend on the chunk size.)
CPU_COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


@functools.cache
def compiler_options(platform: str) -> dict | None:
    """The compiler options of the engine's programs on ``platform`` (None: XLA's own)."""
    if platform != "cpu":
        return None
    try:
        jax.jit(lambda x: x, compiler_options=CPU_COMPILER_OPTIONS).lower(np.float32(0)).compile()
    except jax.errors.JaxRuntimeError:
        return None
    return CPU_COMPILER_OPTIONS


def _chunk_counts(counts, seed_data, first_hi, first_lo, n_valid, spec, bins, count, model):
    """Sample ``count`` trajectories from ``first`` and add the first ``n_valid`` of them to
    the histogram counts (of the event, fan, count and flag variables, then the
    trajectories per regime), pooled (block 0) and per regime (block 1 + regime). Runs on
    one device; returns the new counts and the trajectories (last axis)."""
    *histograms, regime_counts = counts
    out = _sample(seed_data, first_hi, first_lo, spec, count, model)
    mask = jnp.arange(count) < n_valid
    organisations, flags = model.layout.count_values(out)
    values = (model.layout.event_values(out), out.fan.reshape(-1, count), aggregate.count_scale(organisations), flags)
    blocks = [jnp.zeros((count,), jnp.int32)] + ([1 + out.regime] if model.regimes else [])
    for block in blocks:
        histograms = [aggregate.fill(h, v, mask, block, *b) for h, v, b in zip(histograms, values, bins)]
    regime_counts = regime_counts.at[out.regime].add(mask.astype(jnp.int32))
    return (*histograms, regime_counts), out


# Whether the histograms count a variable with no spread by a sum (aggregate.fill's hot bins)
# rather than by a scatter into one address: None, where scatters are atomics (GPUs); on a
# CPU a scatter is a loop, one address costs nothing extra, and the sum only adds memory
# traffic (peer: 84,935 -> 100,148 bytes per trajectory of the chunk step). Counts are the
# same either way.
HOT_BINS: bool | None = None


def hot_bins(platform: str) -> bool:
    return platform != "cpu" if HOT_BINS is None else HOT_BINS


_COMPILED: dict = {}  # compiled chunk steps, reused across runs of the same shape (sweeps)


def _compile_step(model: Model, spec, bins, seed_data, shapes, per_device: int, devices):
    """The compiled chunk step over ``devices``: counts carry a leading device axis. It also
    returns every trajectory's outputs (:class:`Trajectories`, trajectories first, [d,
    per_device, ...]: a run keeps them only if asked, but one program then serves runs,
    ``sample_trajectories`` and the analyses built on it) and each device's first
    ``min(per_device, PILOT_TRAJECTORIES)`` fan values [d, P, fan vars] (the pilot that
    sets the fan bins is run through this same program)."""
    mesh = Mesh(np.array(devices), ("d",))
    key = (
        model,
        per_device,
        tuple(devices),
        shapes,
        jax.tree.structure(spec),
        tuple(np.shape(x) for x in jax.tree.leaves((spec, bins))),
    )
    if key in _COMPILED:
        return _COMPILED[key], mesh
    head = min(per_device, PILOT_TRAJECTORIES)

    def local(counts, seed_data, hi, lo, n_valid, spec, bins):
        new, out = _chunk_counts(
            tuple(c[0] for c in counts), seed_data, hi[0], lo[0], n_valid[0], spec, bins, per_device, model
        )
        first = out.trajectories_first()
        pilot = (first.fan[None, :head].reshape(1, head, -1), model.layout.count_values(out)[0][:, :head].T[None])
        return tuple(c[None] for c in new), jax.tree.map(lambda x: x[None], first), pilot

    sharded = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P("d"), P(), P("d"), P("d"), P("d"), P(), P()),
        out_specs=(P("d"), P("d"), P("d")),
        check_vma=False,
    )
    step = jax.jit(sharded, donate_argnums=(0,))
    d = len(devices)
    vec = np.zeros(d, np.uint32)
    lowered = step.lower(_zeros(shapes, d, mesh), seed_data, vec, vec, vec.astype(np.int32), spec, bins)
    with jaxsetup.quiet_cache_loads():
        _COMPILED[key] = lowered.compile(compiler_options(devices[0].platform))
    return _COMPILED[key], mesh


def _zeros(shapes, d, mesh):
    sharding = jax.sharding.NamedSharding(mesh, P("d"))
    return tuple(jax.device_put(np.zeros((d,) + s, np.int32), sharding) for s in shapes)


@dataclasses.dataclass
class Aggregates:
    """Host-side totals of a run: int64 histogram counts [blocks, vars, bins] (block 0
    pooled, then one per regime), the trajectories per regime, and the bins."""

    trajectories: int
    model: Model
    event_counts: np.ndarray
    event_bins: aggregate.Bins
    fan_counts: np.ndarray
    fan_bins: aggregate.Bins
    count_counts: np.ndarray
    count_bins: aggregate.Bins
    flag_counts: np.ndarray  # [blocks, flags, 2]: trajectories with the flag off, on
    regime_counts: np.ndarray
    chunk_size: int
    devices: int
    processes: int
    compile_seconds: float
    sample_seconds: float


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Save the aggregation state to ``path`` every ``every`` chunks; ``resume`` continues
    from a state saved there by an identical run."""

    path: Path
    every: int = 10
    resume: bool = False


def default_chunk_size(trajectories: int) -> int:
    """A chunk size for the default devices, splitting ``trajectories`` into equal chunks
    so that little of the last one is padding: about 2**20 trajectories per GPU (enough to
    fill it), 2**11 per CPU core (a year's working set then stays in the core's cache;
    measured fastest on the peer scenario, benchmarks/results)."""
    platform = jax.devices()[0].platform
    target = (2**20 if platform in ("gpu", "cuda", "rocm") else 2**11) * jax.local_device_count()
    chunks = math.ceil(trajectories / target)
    return max(1, math.ceil(trajectories / chunks / 64) * 64)


def memory_estimate(model: Model, n_event_vars: int, event_bins: int, per_device: int) -> int:
    """Bytes one device needs: the int32 histograms (twice, for the update) and the per-
    chunk temporaries (per trajectory: the values and their bin and slot indices, the fan,
    the scan state, one fan record per block of steps, each group's and the access
    budgets' series at every step (dated after the time loop), and a block's temporaries:
    its shocks and, per step, every row's value against every threshold, a few times
    over)."""
    blocks = 1 + model.regimes
    c = model.config
    series = len(model.layout.stored_fan)
    n_fan = (c.n_years + 1) * series
    lay = model.layout
    n_flags = lay.n_count_vars * len(lay.at_least)
    histograms = (
        2
        * 4
        * blocks
        * (
            n_event_vars * event_bins
            + n_fan * aggregate.FAN_BINS
            + lay.n_count_vars * aggregate.COUNT_BINS
            + 2 * n_flags
        )
    )
    # the kernel's rows: a group with entrants dates its sampled initial members, not its ranks
    rows = len(model.rows) + sum(len(p.points) - len(p.ranks) for p in c.populations)
    pairs = (rows + model.n_access) * len(c.physical)
    state = 2 * c.buffer + 4 * pairs
    draws = len(model.streams) + sum(jump_draws(f, k) for _, f, k in c.jumps)
    width = min(c.steps_per_year, MAX_BLOCK_STEPS)
    steps = math.ceil(c.n_years * c.steps_per_year / width) * width
    records = steps // width * series + (steps + 1) * (3 * len(model.groups) + 2 * (model.n_access > 0))
    block = width * (5 * pairs + 3 * draws + 6 * (rows + model.n_access))
    # groups counted after the loop: per group its need, share level (and for entrants the
    # previous-low steps and reached entrants) at every step per threshold, its sampled
    # members' and entrants' dates, and the counts at every count time
    T = len(c.physical)
    population = sum(
        (c.n_steps + 1) * T * (3 + 4 * bool(p.entrants))
        + 2 * (len(p.points) + p.entrants) * T
        + 4 * len(lay.count_bases) * (c.n_years + 1) * T
        for p in c.populations
    )
    per_trajectory = 4 * (
        6 * blocks * (n_event_vars + n_fan + lay.n_count_vars * (1 + len(lay.at_least)))
        + 4 * state
        + records
        + block
        + population
        + 64
    )
    return histograms + per_device * per_trajectory


def compiled_bytes(compiled) -> int | None:
    """Bytes a compiled program needs on one device by XLA's own memory analysis
    (arguments, outputs and temporaries, less what outputs reuse of arguments); None
    where the backend does not say."""
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)
    except (AttributeError, NotImplementedError, jax.errors.JaxRuntimeError):
        return None


def available_memory(device) -> int:
    """Bytes free for mcengine on ``device`` (host RAM for a CPU)."""
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def build_for(scenario: Scenario, generator: str = DEFAULT_GENERATOR) -> tuple[Model, dict]:
    """The scenario's model and spec, with the per-step shocks from ``generator``."""
    if generator not in GENERATORS:
        raise ArgumentError(f"unknown generator {generator!r}; choose one of {', '.join(GENERATORS)}")
    model, spec = build(scenario)
    check_program_size(model)
    return dataclasses.replace(model, config=model.config._replace(generator=generator)), spec


# Most initial members of a group that a run samples and dates one by one: its listed ranks,
# or with entrants every member up to its largest rank. Each is drawn on its own in the
# compiled program, so compiling grows with them: a run of 64 trajectories on a busy 2-core
# CPU took 40 s and 0.8 GB at 10 members with entrants, 245 s and 1.5 GB at 100 (most of it
# compiling), and 1000 grew to 21 GB; 1000 listed ranks without entrants had not finished
# compiling after 5 minutes (4 GB). The memory estimate, per trajectory, cannot see it.
MAX_SAMPLED_MEMBERS = 200


def check_program_size(model: Model) -> None:
    """ResourceError, before anything is compiled, for a group whose ranks need more than
    MAX_SAMPLED_MEMBERS of its initial members sampled."""
    for (path, _, ranks), pop in zip(model.groups, model.config.populations):
        if len(pop.points) <= MAX_SAMPLED_MEMBERS:
            continue
        if pop.entrants:
            raise ResourceError(
                f"{path}: a group with entrants samples every initial member up to its largest rank "
                f"({ranks[-1]:,}), and a run compiles at most {MAX_SAMPLED_MEMBERS}; report ranks up to "
                f"{MAX_SAMPLED_MEMBERS} (counts cover all members)"
            )
        raise ResourceError(
            f"{path}: a group samples each listed rank on its own ({len(ranks):,} listed), and a run "
            f"compiles at most {MAX_SAMPLED_MEMBERS}; list at most {MAX_SAMPLED_MEMBERS} ranks "
            "(e.g. 1, 2, 5, 10, 20, 50, ...; counts cover all members)"
        )


def run(
    scenario: Scenario,
    trajectories: int,
    seed: int,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    checkpoint: Checkpoint | None = None,
    on_chunk: Callable[[int, Trajectories], None] | None = None,
    generator: str = DEFAULT_GENERATOR,
    max_seconds: float | None = None,
) -> Aggregates:
    """Sample ``trajectories`` trajectories in chunks over all devices and processes, and
    aggregate them. ``on_chunk(first, trajectories)``, if given,
    receives each chunk's per-trajectory arrays (numpy, valid rows only) in order.
    ``generator`` names the generator of the per-step shocks (kernels.GENERATORS).
    Raises ResourceError if the run cannot fit in memory, and, with ``max_seconds``, if the
    time of its second chunk says that sampling would take longer than that."""
    check_trajectories(trajectories)
    model, spec = build_for(scenario, generator)
    devices = jax.local_devices()
    d, processes, me = len(devices), jax.process_count(), jax.process_index()
    chunk = max(chunk_size or default_chunk_size(trajectories), MIN_PER_DEVICE * d)
    chunk = math.ceil(chunk / d) * d  # an equal share per device
    seed_data = random.seed_key(seed)
    layout = model.layout
    blocks = 1 + model.regimes
    ev_bins = aggregate.event_bins(model.span, model.config.n_steps, layout.n_dates, layout.n_leads, blocks)
    chunk = _fit_chunk(model, layout.n_event_vars, ev_bins.nbins, chunk, d, devices[0], chunk_size is None)
    per_device = chunk // d

    t0 = time.perf_counter()
    n_fan = (model.config.n_years + 1) * len(layout.stored_fan)
    n_flags = layout.n_count_vars * len(layout.at_least)
    flag_bins = aggregate.Bins(np.full(n_flags, -0.5), np.ones(n_flags), 2)
    unset = lambda n, nbins: aggregate.Bins(np.zeros(n), np.ones(n), nbins)  # for the pilot: counts discarded
    # events have no hot bins (no pilot sets their bins); the pilot's own counts are discarded
    hot = hot_bins(devices[0].platform)
    on_device = lambda ev, *others: (ev.on_device(hot=False),) + tuple(b.on_device(hot) for b in others)
    pilot_bins = on_device(
        ev_bins, unset(n_fan, aggregate.FAN_BINS), unset(layout.n_count_vars, aggregate.COUNT_BINS), flag_bins
    )
    shapes: tuple[tuple[int, ...], ...] = tuple(
        (blocks * b.lo.size, b.nbins)
        for b in (
            ev_bins,
            unset(n_fan, aggregate.FAN_BINS),
            unset(layout.n_count_vars, aggregate.COUNT_BINS),
            flag_bins,
        )
    )
    shapes += ((max(1, model.regimes),),)
    while True:
        step, mesh = _compile_step(model, spec, pilot_bins, seed_data, shapes, per_device, devices)
        need, free = compiled_bytes(step), available_memory(devices[0]) // (d if devices[0].platform == "cpu" else 1)
        if need is None or need <= 0.7 * free:
            break
        if chunk_size is not None or per_device <= MIN_PER_DEVICE:
            raise ResourceError(
                f"this run needs {need / 2**30:.1f} GiB per device (XLA's memory analysis of the "
                f"compiled step) but {free / 2**30:.1f} GiB is free; "
                + (
                    "use a smaller --chunk-size"
                    if chunk_size is not None
                    else "use fewer thresholds, actors, group ranks, access budgets or regimes, or fewer steps per year"
                )
            )
        per_device = max(MIN_PER_DEVICE, per_device // 2)
        chunk = per_device * d
    compile_seconds = time.perf_counter() - t0

    def call(counts, c, bins):
        """Run chunk ``c`` through the compiled step: (counts, kept arrays, valid rows, pilot)."""
        first = c * chunk
        n_valid = min(chunk, trajectories - first)
        starts = [random.split_index(first + k * per_device) for k in range(d)]
        valid = np.clip(n_valid - per_device * np.arange(d), 0, per_device).astype(np.int32)
        counts, kept, pilot = step(
            counts, seed_data, np.array([s[0] for s in starts]), np.array([s[1] for s in starts]), valid, spec, bins
        )
        return counts, kept, valid, pilot

    # The fan and count bins come from a pilot of the first trajectories, sampled by the
    # same program (each device returns the values of its first trajectories).
    pilot_n, heads = min(trajectories, PILOT_TRAJECTORIES), ([], [])  # type: tuple[int, tuple[list, list]]
    for c in range(math.ceil(pilot_n / chunk)):
        _, _, valid, pilot = call(_zeros(shapes, d, mesh), c, pilot_bins)
        for parts, values in zip(heads, pilot):
            parts += [h[:v] for h, v in zip(np.asarray(values), np.minimum(valid, values.shape[1]))]
    fan_bins = aggregate.fan_bins(np.concatenate(heads[0])[:pilot_n])
    count_pilot = np.concatenate(heads[1])[:pilot_n]
    count_bins = aggregate.count_bins(count_pilot)
    flag_pilot = count_pilot[:, :, None] >= np.asarray(layout.at_least, np.float32)
    bins = on_device(ev_bins, fan_bins, count_bins, flag_bins.with_hot(flag_pilot.reshape(len(count_pilot), -1)))

    n_chunks = math.ceil(trajectories / chunk)
    mine = range(me, n_chunks, processes)
    host = [np.zeros(s, np.int64) for s in shapes]
    done = 0
    state = None
    if checkpoint is not None:
        state = _Checkpointer(
            checkpoint,
            me,
            _fingerprint(scenario, trajectories, seed, chunk, processes, generator),
            (fan_bins, count_bins),
        )
        if checkpoint.resume:
            done, host = state.load(host)
            if progress is not None:
                progress(min(trajectories, sum(min(chunk, trajectories - c * chunk) for c in mine[:done])))

    t1 = time.perf_counter()
    dev, pending = _zeros(shapes, d, mesh), 0
    for i, c in enumerate(mine[done:], start=done):
        dev, kept, valid, _ = call(dev, c, bins)
        if on_chunk is not None:
            rows = np.concatenate([np.arange(v) + k * per_device for k, v in enumerate(valid)])
            flat = lambda x: np.asarray(x).reshape((x.shape[0] * x.shape[1],) + x.shape[2:])[rows]
            on_chunk(c * chunk, jax.tree.map(flat, kept))
        n_valid = int(valid.sum())
        pending += n_valid
        last = i == len(mine) - 1
        save = state is not None and checkpoint is not None and (i + 1) % checkpoint.every == 0 and not last
        if pending + chunk > _FLUSH_COUNT or last or save:
            for h, x in zip(host, dev):
                h += np.asarray(x).sum(axis=0)
            dev, pending = _zeros(shapes, d, mesh), 0
        if save and state is not None:
            state.save(i + 1, host)
        if progress is not None:
            progress(n_valid)
        if max_seconds is not None and i - done < 2 and len(mine) - done > 2:
            jax.block_until_ready(dev)
            if i == done:
                timed = time.perf_counter()
            else:  # the second chunk: the first may include one-time start-up costs
                _check_time(time.perf_counter() - timed, len(mine) - i - 1, chunk, max_seconds, devices)
    sample_seconds = time.perf_counter() - t1
    if processes > 1:
        host = [_sum_over_processes(h) for h in host]
    if state is not None:
        state.remove()
    ev, fan, cnt, flags, regimes = host
    return Aggregates(
        trajectories,
        model,
        ev.reshape(blocks, -1, ev_bins.nbins),
        ev_bins,
        fan.reshape(blocks, -1, fan_bins.nbins),
        fan_bins,
        cnt.reshape(blocks, -1, count_bins.nbins),
        count_bins,
        flags.reshape(blocks, -1, 2),
        regimes,
        chunk,
        d,
        processes,
        compile_seconds,
        sample_seconds,
    )


def _fit_chunk(model, n_event_vars, event_bins, chunk, d, device, may_shrink: bool) -> int:
    """The chunk size, shrunk (if it was not chosen by the user) until a device's share fits
    in its memory; ResourceError if even the smallest cannot."""
    free = available_memory(device)
    need = lambda c: memory_estimate(model, n_event_vars, event_bins, c // d)
    while need(chunk) > 0.7 * free and may_shrink and chunk // d > MIN_PER_DEVICE:
        chunk = max(MIN_PER_DEVICE * d, chunk // 2 // d * d)
    if need(chunk) > 0.7 * free:
        gib = need(chunk) / 2**30
        hint = (
            "use a smaller --chunk-size"
            if need(MIN_PER_DEVICE * d) <= 0.7 * free
            else "use fewer thresholds, actors, group ranks, access budgets or regimes, or fewer steps per year"
        )
        raise ResourceError(
            f"this run needs about {gib:.1f} GiB per device but {free / 2**30:.1f} GiB is free "
            f"({n_event_vars * (1 + model.regimes):,} output variables x {event_bins:,} bins); {hint}"
        )
    return chunk


def _check_time(chunk_seconds: float, chunks_left: int, chunk: int, max_seconds: float, devices) -> None:
    """ResourceError if ``chunks_left`` more chunks, at ``chunk_seconds`` each, would take
    longer than ``max_seconds``."""
    left = chunk_seconds * chunks_left
    if left <= max_seconds:
        return
    raise ResourceError(
        f"sampling would take about {_duration(left)} more ({chunk / chunk_seconds:,.0f} trajectories/s "
        f"on {len(devices)} {devices[0].platform} device(s) of this process), over the limit of "
        f"{_duration(max_seconds)}; use fewer trajectories or more devices, or raise the limit "
        "(--max-days, max_days=)"
    )


def _duration(seconds: float) -> str:
    """``42 s``, ``12 minutes``, ``5.5 hours``, ``74 days``."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.{1 if seconds < 20 * size else 0}f} {unit}"
    return f"{seconds:.0f} s"


def _sum_over_processes(x: np.ndarray) -> np.ndarray:
    """Exact sum of an int64 array over all processes (sent as two int32 halves)."""
    from jax.experimental import multihost_utils

    hi, lo = (x >> 31).astype(np.int32), (x & (2**31 - 1)).astype(np.int32)
    his, los = (np.asarray(multihost_utils.process_allgather(v)).astype(np.int64) for v in (hi, lo))
    return ((his << 31) + los).sum(axis=0)


def _fingerprint(scenario: Scenario, trajectories: int, seed: int, chunk: int, processes: int, generator: str) -> str:
    """What a checkpoint must match to be resumed: everything that decides the counts."""
    import mcengine

    key = json.dumps(
        [
            scenario.text,
            trajectories,
            seed,
            chunk,
            processes,
            random.PRNG_IMPL,
            generator,
            mcengine.__version__,
            jax.__version__,
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()


class _Checkpointer:
    """Writes and reads a process's aggregation state (atomically: temp file, rename)."""

    def __init__(self, cfg: Checkpoint, process: int, fingerprint: str, pilot_bins: tuple[aggregate.Bins, ...]):
        self.path = Path(cfg.path) if process == 0 else Path(f"{cfg.path}.{process}")
        self.fingerprint, self.pilot_bins = fingerprint, pilot_bins

    def save(self, chunks_done: int, host: list[np.ndarray]) -> None:
        # the folder is made only now, so that a run refused or failed before its first
        # checkpoint leaves no folders behind
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with io.atomic_files(self.path) as (tmp,), open(tmp, "wb") as f:  # interrupted: the old one stays whole
            bins = {f"{k}{i}": getattr(b, k) for i, b in enumerate(self.pilot_bins) for k in ("lo", "width")}
            arrays: dict[str, np.ndarray] = {
                "fingerprint": np.array(self.fingerprint),
                "chunks_done": np.array(chunks_done),
                **bins,
                **{f"counts{i}": h for i, h in enumerate(host)},
            }
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types allow_pickle as a keyword

    def load(self, host: list[np.ndarray]) -> tuple[int, list[np.ndarray]]:
        if not self.path.is_file():
            raise ResourceError(f"{self.path}: no checkpoint to resume from; run without --resume")
        try:
            with np.load(self.path) as z:
                if str(z["fingerprint"]) != self.fingerprint:
                    raise ResourceError(
                        f"{self.path}: the checkpoint is from a different run (scenario, "
                        "trajectories, seed, chunk size or versions differ); run without --resume"
                    )
                if not all(
                    np.array_equal(z[f"{k}{i}"], getattr(b, k))
                    for i, b in enumerate(self.pilot_bins)
                    for k in ("lo", "width")
                ):
                    raise ResourceError(
                        f"{self.path}: the checkpoint's fan-chart or count bins differ; run without --resume"
                    )
                return int(z["chunks_done"]), [z[f"counts{i}"].astype(np.int64) for i in range(len(host))]
        except (OSError, ValueError, KeyError) as e:
            if isinstance(e, ResourceError):
                raise
            raise ResourceError(
                f"{self.path}: unreadable checkpoint ({e.__class__.__name__}); run without --resume"
            ) from None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def sample_trajectories(
    scenario: Scenario, trajectories: int, seed: int, chunk_size: int | None = None, generator: str = DEFAULT_GENERATOR
) -> Trajectories:
    """Per-trajectory outputs as numpy arrays (years since start; NaN where censored),
    sampled by :func:`run`'s program (so a run and an analysis of the same scenario and
    number of trajectories compile once). Memory grows with ``trajectories``: for analysis
    of modest samples and for tests. One process (a distributed run samples its chunks only)."""
    if jax.process_count() > 1:
        raise ArgumentError("sample_trajectories runs in one process; use run for a distributed run")
    parts: list[Trajectories] = []

    def keep(first: int, out: Trajectories) -> None:
        if not parts:  # all of them are kept (twice, while concatenated): refuse what cannot fit
            need = 2 * sum(x.nbytes for x in out) / len(out.regime) * trajectories
            free = available_memory(jax.devices("cpu")[0])
            if need > 0.7 * free:
                raise ResourceError(
                    f"{trajectories:,} trajectories' outputs need about {need / 2**30:.1f} GiB of "
                    f"memory but {free / 2**30:.1f} GiB is free; use fewer trajectories"
                )
        parts.append(out)

    run(scenario, trajectories, seed, chunk_size, on_chunk=keep, generator=generator)
    return Trajectories(*(np.concatenate(xs) for xs in zip(*parts)))
