"""Orchestration: scenario -> kernel inputs, chunks of trajectories, keys, devices, jit.

Trajectories are processed in fixed-shape chunks (the last one padded and masked, so one
compile serves a whole run). Each chunk is sampled and reduced to histogram counts on the
device in one jitted call; only the counts come back to the host, so memory does not grow
with the number of trajectories.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import aggregate, random
from .distributions import Dist, sample
from .kernels import Config, Outputs, Params, simulate
from .scenario import Scenario

PILOT_TRAJECTORIES = 4096  # fixed-size pilot that sets the fan-chart bins
_FLUSH_COUNT = 2**30  # move device counts (int32) to the host before they could overflow


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Kernel inputs of a scenario: the static config and the numeric spec (a pytree)."""

    config: Config
    spec: dict  # {"draws": {path: Dist}, "thresholds": f32[T], "access": f32[K]}
    actor_names: tuple[str, ...]
    frontier: int


def inputs(scenario: Scenario) -> Inputs:
    """Translate a validated scenario into kernel inputs."""
    spy = scenario.steps_per_year
    n_steps = scenario.n_steps
    hw = tuple(round(a.hw_lag * spy, 9) for a in scenario.actors)
    algo = tuple(round(a.algo_lag * spy, 9) for a in scenario.actors)
    config = Config(
        n_steps=n_steps,
        steps_per_year=spy,
        n_years=math.ceil(n_steps / spy),
        hw_lag_steps=hw,
        algo_lag_steps=algo,
        physical=tuple(t.kind == "physical" for t in scenario.thresholds),
        buffer=int(math.floor(max(hw + algo))) + 2,
    )
    spec = {
        "draws": dict(scenario.draws()),
        "thresholds": np.array([t.level for t in scenario.thresholds], np.float32),
        "access": np.array([math.log10(b) for b in scenario.access_budgets], np.float32),
    }
    return Inputs(config, spec, tuple(a.name for a in scenario.actors), scenario.frontier_index)


def _params(key, spec: dict, names: tuple[str, ...]) -> Params:
    """Sample the per-trajectory numbers of one trajectory (fixed ones stay constants)."""
    draws: dict[str, Dist] = spec["draws"]

    def value(path):
        d = draws[path]
        return sample(d, random.draw_normal(key, path) if d.is_random else None)

    def per_actor(field, default=None):
        return jnp.stack([value(f"actors.{n}.{field}") if f"actors.{n}.{field}" in draws
                          else jnp.float32(default) for n in names])

    return Params(
        h0=value("hardware.initial"), h_rate=value("hardware.rate"),
        h_vol=value("hardware.volatility"),
        a0=value("algorithms.initial"), a_rate=value("algorithms.rate"),
        a_vol=value("algorithms.volatility"),
        b0=per_actor("budget"), b_rate=per_actor("growth"), b_vol=per_actor("volatility"),
        cap=per_actor("cap", jnp.inf), penalty=per_actor("hw_penalty"),
        thresholds=jnp.asarray(spec["thresholds"]), access=jnp.asarray(spec["access"]),
    )


def _trajectory(key, spec, names, config) -> Outputs:
    return simulate(random.shock_key(key), _params(key, spec, names), config)


@partial(jax.jit, static_argnames=("count", "names", "config"))
def sample_chunk(seed_data, first_hi, first_lo, spec, *, count, names, config) -> Outputs:
    """Per-trajectory outputs of trajectories [first, first + count)."""
    keys = random.trajectory_keys(seed_data, first_hi, first_lo, count)
    return jax.vmap(lambda k: _trajectory(k, spec, names, config))(keys)


def event_values(out: Outputs, frontier: int) -> jax.Array:
    """[trajectories, vars]: t_first (actor-major), then diffusion dates, then lead times
    of every non-frontier actor; years (since start for dates), NaN where censored."""
    n = out.t_first.shape[0]
    lead = out.t_first - out.t_first[:, frontier : frontier + 1, :]
    lead = jnp.delete(lead, frontier, axis=1)
    return jnp.concatenate([out.t_first.reshape(n, -1), out.diffusion.reshape(n, -1), lead.reshape(n, -1)], axis=1)


@partial(jax.jit, static_argnames=("count", "names", "config", "frontier"), donate_argnums=(0, 1))
def aggregate_chunk(event_counts, fan_counts, seed_data, first_hi, first_lo, n_valid, spec, bins,
                    *, count, names, config, frontier):
    """Sample one chunk and add it to the histogram counts (on the device)."""
    out = sample_chunk(seed_data, first_hi, first_lo, spec, count=count, names=names, config=config)
    mask = jnp.arange(count) < n_valid
    (ev_lo, ev_w), (fan_lo, fan_w) = bins
    event_counts = aggregate.fill(event_counts, event_values(out, frontier), mask, ev_lo, ev_w)
    fan_counts = aggregate.fill(fan_counts, out.fan.reshape(count, -1), mask, fan_lo, fan_w)
    return event_counts, fan_counts


@dataclasses.dataclass
class Aggregates:
    """Host-side totals of a run: int64 histogram counts and their bins."""

    trajectories: int
    event_counts: np.ndarray
    event_bins: aggregate.Bins
    fan_counts: np.ndarray
    fan_bins: aggregate.Bins
    compile_seconds: float
    sample_seconds: float


def default_chunk_size(trajectories: int) -> int:
    """A chunk size for the default device: large enough to keep it busy."""
    platform = jax.devices()[0].platform
    target = 2**20 if platform in ("gpu", "cuda", "rocm") else 2**14
    return max(1, min(target, trajectories))


def run(scenario: Scenario, trajectories: int, seed: int, chunk_size: int | None = None,
        progress: Callable[[int], None] | None = None) -> Aggregates:
    """Sample ``trajectories`` trajectories in chunks and aggregate them."""
    inp = inputs(scenario)
    chunk = chunk_size or default_chunk_size(trajectories)
    seed_data = random.seed_key(seed)
    names, config = inp.actor_names, inp.config
    n_first = len(names) * len(scenario.thresholds) + len(scenario.access_budgets) * len(scenario.thresholds)
    n_lead = (len(names) - 1) * len(scenario.thresholds)
    ev_bins = aggregate.event_bins(scenario.horizon - scenario.start, config.n_steps, n_first, n_lead)

    t0 = time.perf_counter()
    pilot_n = min(trajectories, PILOT_TRAJECTORIES)
    pilot = sample_chunk(seed_data, np.uint32(0), np.uint32(0), inp.spec, count=pilot_n, names=names, config=config)
    fan_bins = aggregate.fan_bins(np.asarray(pilot.fan).reshape(pilot_n, -1))
    bins = tuple((jnp.asarray(b.lo, jnp.float32), jnp.asarray(b.width, jnp.float32)) for b in (ev_bins, fan_bins))

    def zeros():
        return (jnp.zeros((n_first + n_lead, ev_bins.nbins), jnp.int32),
                jnp.zeros((fan_bins.lo.size, fan_bins.nbins), jnp.int32))

    host_ev = np.zeros((n_first + n_lead, ev_bins.nbins), np.int64)
    host_fan = np.zeros((fan_bins.lo.size, fan_bins.nbins), np.int64)
    static = dict(count=chunk, names=names, config=config, frontier=inp.frontier)
    hi0, lo0 = random.split_index(0)
    step = aggregate_chunk.lower(*zeros(), seed_data, hi0, lo0, np.int32(chunk), inp.spec, bins, **static).compile()
    compile_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    dev, pending = zeros(), 0
    for first in range(0, trajectories, chunk):
        n_valid = min(chunk, trajectories - first)
        hi, lo = random.split_index(first)
        dev = step(*dev, seed_data, hi, lo, np.int32(n_valid), inp.spec, bins)
        pending += n_valid
        if pending + chunk > _FLUSH_COUNT or first + chunk >= trajectories:
            host_ev += np.asarray(dev[0])
            host_fan += np.asarray(dev[1])
            dev, pending = zeros(), 0
        if progress is not None:
            progress(n_valid)
    sample_seconds = time.perf_counter() - t1
    return Aggregates(trajectories, host_ev, ev_bins, host_fan, fan_bins, compile_seconds, sample_seconds)


def sample_trajectories(scenario: Scenario, trajectories: int, seed: int, chunk_size: int | None = None) -> Outputs:
    """Per-trajectory outputs as numpy arrays (years since start; NaN where censored).
    Memory grows with ``trajectories``: for analysis of modest samples and for tests."""
    inp = inputs(scenario)
    chunk = chunk_size or default_chunk_size(trajectories)
    seed_data = random.seed_key(seed)
    parts = []
    for first in range(0, trajectories, chunk):
        hi, lo = random.split_index(first)
        out = sample_chunk(seed_data, hi, lo, inp.spec, count=chunk, names=inp.actor_names, config=inp.config)
        parts.append(jax.tree.map(lambda x: np.asarray(x)[: trajectories - first], out))
    return Outputs(*(np.concatenate(xs) for xs in zip(*parts)))
