"""Reliability: bit-identical results across devices, threads and processes; safe
interruption and resume; extreme but valid inputs; requests too large for memory."""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import mcengine
from mcengine import engine
from mcengine.cli import main

from .conftest import PEER, scenario_toml
from .test_keywords import BASE as KEYWORDS_BASE

pytestmark = pytest.mark.slow  # long statistical or multi-process checks: `pytest -m "not slow"` skips them

SMALL_PEER = ["--set", "scenario.horizon=2035.0"]  # the peer scenario over 10 years: quicker


def cli(args, env=None, **kw) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(["mcengine", *args], capture_output=True, text=True, env=full_env, timeout=600, **kw)


def tables(folder: Path) -> dict:
    return {n: pq.read_table(folder / f"{n}.parquet") for n in ("events", "access", "paths")}


def assert_same_results(a: Path, b: Path):
    ta, tb = tables(a), tables(b)
    for name in ta:
        assert ta[name].equals(tb[name]), name  # contents; metadata (timings) may differ


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "one-device"
    r = cli(
        ["run", str(PEER), *SMALL_PEER, "-n", "6000", "--seed", "3", "--out", str(out), "-q"],
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=1"},
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize(
    "label,flags,extra",
    [
        ("4 devices", "--xla_force_host_platform_device_count=4", []),
        ("3 devices, odd chunk", "--xla_force_host_platform_device_count=3", ["--chunk-size", "1000"]),
        (
            "1 thread",
            "--xla_force_host_platform_device_count=1 --xla_cpu_multi_thread_eigen=false "
            "intra_op_parallelism_threads=1",
            ["--chunk-size", "777"],
        ),
    ],
)
def test_devices_threads_and_chunks_do_not_change_results(label, flags, extra, reference, tmp_path):
    out = tmp_path / "run"
    r = cli(
        ["run", str(PEER), *SMALL_PEER, "-n", "6000", "--seed", "3", "--out", str(out), "-q", *extra],
        env={"XLA_FLAGS": flags},
    )
    assert r.returncode == 0, r.stderr
    assert_same_results(reference, out)


def test_tiny_chunks_and_samples_give_the_same_bits():
    """Every trajectory's numbers are the same in a run of 3, in chunks of 5 and 17 and in
    a run of 256 (the size tests/test_commands.py runs), on a scenario with groups, jumps,
    decay, catch-up, releases and access budgets (XLA compiles arrays of a few elements
    differently: the engine pads them)."""
    s = mcengine.load_scenario("diffusion-channels")
    whole = mcengine.sample_trajectories(s, trajectories=256, seed=4)
    for n, chunk in ((3, None), (200, 5), (130, 17)):
        part = mcengine.sample_trajectories(s, trajectories=n, seed=4, chunk_size=chunk)
        for a, b in zip(whole, part):
            assert np.array_equal(a[:n], b, equal_nan=True), (n, chunk)


def test_engine_compiler_options_change_speed_not_results(monkeypatch):
    """The engine's CPU compiler options are a speed choice only: the run's program of a
    scenario with groups, jumps, decay, catch-up, releases and access budgets gives the same
    bits compiled with XLA's defaults; and options the installed jaxlib does not know fall
    back to those."""
    s = mcengine.load_scenario("diffusion-channels")
    tuned = mcengine.sample_trajectories(s, trajectories=256, seed=4)
    with monkeypatch.context() as m:
        m.setattr(engine, "compiler_options", lambda platform: None)
        m.setattr(engine, "_COMPILED", {})
        default = mcengine.sample_trajectories(s, trajectories=256, seed=4)
    for a, b in zip(tuned, default):
        assert np.array_equal(a, b, equal_nan=True)
    monkeypatch.setattr(engine, "CPU_COMPILER_OPTIONS", {"xla_cpu_no_such_option": 1})
    engine.compiler_options.cache_clear()
    try:
        assert engine.compiler_options("cpu") is None
    finally:
        monkeypatch.undo()
        engine.compiler_options.cache_clear()
    assert engine.compiler_options("gpu") is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_localhost_match_one(reference, tmp_path):
    out = tmp_path / "two"
    port = free_port()
    procs = [
        subprocess.Popen(
            [
                "mcengine",
                "run",
                str(PEER),
                *SMALL_PEER,
                "-n",
                "6000",
                "--seed",
                "3",
                "--out",
                str(out),
                "-q",
                "--distributed",
            ],
            env={
                **os.environ,
                "MCENGINE_COORDINATOR": f"127.0.0.1:{port}",
                "MCENGINE_NUM_PROCESSES": "2",
                "MCENGINE_PROCESS_ID": str(i),
                "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert_same_results(reference, out)
    assert pq.read_table(out / "events.parquet").schema.metadata  # written once, by process 0


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_then_resume_gives_the_uninterrupted_results(sig, tmp_path):
    """A real signal to a real run: it stops promptly, writes no results (only its
    checkpoint), and --resume finishes with exactly the uninterrupted results."""
    args = ["run", str(PEER), *SMALL_PEER, "-n", "40000", "--seed", "9", "--chunk-size", "1000", "-q"]
    out = tmp_path / "res"
    proc = subprocess.Popen(
        ["mcengine", *args, "--out", str(out), "--checkpoint-every", "2"],
        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoint = tmp_path / ".res.checkpoint.npz"
    wait_for(checkpoint, proc)
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 30
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: interrupted; no results were written") and "--resume" in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".res.checkpoint.npz"]  # no partial output

    r = cli([*args, "--out", str(out), "--checkpoint-every", "2", "--resume"])
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]  # checkpoint removed when done
    whole = cli([*args, "--out", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr
    assert_same_results(out, tmp_path / "whole")


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    args = ["run", str(PEER), *SMALL_PEER, "-n", "4000", "--chunk-size", "1000", "-q", "--out", str(tmp_path / "o")]
    ck = engine.Checkpoint(tmp_path / ".o.checkpoint.npz", every=1)
    s = mcengine.load_scenario(PEER, SMALL_PEER[1:])
    with pytest.raises(KeyboardInterrupt):
        mcengine.run(
            s,
            trajectories=4000,
            seed=1,
            chunk_size=1000,
            checkpoint=ck,
            progress=lambda n: (_ for _ in ()).throw(KeyboardInterrupt),
        )  # stop after one chunk
    r = cli([*args, "--seed", "2", "--resume"])
    assert r.returncode == 2 and "different run" in r.stderr and r.stderr.count("\n") == 1
    r = cli(["run", str(PEER), "-n", "10", "-q", "--resume", "--out", str(tmp_path / "none")])
    assert r.returncode == 2 and "no checkpoint" in r.stderr


def test_a_program_from_the_cache_loads_without_a_word_on_stderr(tmp_path):
    """On some CPUs (AMD Zen among them) XLA logs two false alarms at error level for every
    program it loads from the persistent cache. A quiet run stays silent, also when started
    by a process that loaded JAX first (which exports JAX's default TF_CPP_MIN_LOG_LEVEL=1),
    and so does the Python API."""
    args = ["run", str(PEER), *SMALL_PEER, "-n", "500", "-q"]
    env = {"TF_CPP_MIN_LOG_LEVEL": "1"}
    first = cli([*args, "--out", str(tmp_path / "a")], env=env)
    assert first.returncode == 0, first.stderr
    again = cli([*args, "--out", str(tmp_path / "b")], env=env)  # its program comes from the cache
    assert again.returncode == 0 and again.stderr == ""
    scenario = f"mcengine.load_scenario({str(PEER)!r}, {SMALL_PEER[1:]!r})"
    code = f"import jax, mcengine; mcengine.run({scenario}, trajectories=500)"
    api = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert api.returncode == 0 and api.stderr == "", api.stderr


def test_extreme_but_valid_inputs_give_finite_correct_results():
    """1e40 FLOP thresholds, $0.001 budgets, zero volatility, 365 steps a year, 100 years."""
    s = mcengine.parse_scenario(
        scenario_toml(
            scenario={"name": "extreme", "start": 2000.0, "horizon": 2100.0, "steps_per_year": 365},
            hardware={"initial": 1e18, "rate": 0.12, "volatility": 0.0},
            algorithms={"initial": 1.0, "rate": 0.3, "volatility": 0.0},
            actors=[
                {"name": "frontier", "budget": 1e-3, "growth": 0.5, "cap": 1e15},
                {"name": "tiny", "budget": 1e-3, "growth": 0.0, "hw_lag": 3.0},
            ],
            thresholds=[
                {"name": "1e40", "flop": 1e40, "kind": "effective"},
                {"name": "1e20", "flop": 1e20, "kind": "physical"},
                {"name": "1e90", "flop": 1e90, "kind": "effective"},
            ],
            access={"budgets": [1e-3]},
        )
    )
    out = mcengine.sample_trajectories(s, trajectories=2, seed=0)
    assert np.abs(out.t_first[:, 0, 0] - (40 - 15) / 0.92).max() < 1e-3  # 1e-3 $ * 1e18 FLOP/$ = 1e15
    assert np.abs(out.t_first[:, 1, 0] - (40 - 15 + 0.36) / 0.42).max() < 1e-2  # lagged hardware
    assert np.abs(out.t_first[:, 0, 1] - (20 - 15) / 0.62).max() < 1e-3
    assert np.isnan(out.t_first[:, :, 2]).all()  # 1e90 is out of reach (cap): censored, not a sentinel
    assert np.isfinite(out.fan).all()
    res = mcengine.run(s, trajectories=64, seed=0)
    for table in (res.events, res.access, res.paths):
        for col in table.column_names:
            values = table.column(col).to_pylist()
            assert all(v is None or not isinstance(v, float) or np.isfinite(v) for v in values), col


def test_a_run_too_large_for_memory_is_refused_before_sampling():
    thresholds = [{"name": f"t{i}", "flop": 10.0 ** (26 + i / 1000), "kind": "effective"} for i in range(10_000)]
    groups = [
        {
            "name": "orgs",
            "count": 10_000,
            "ranks": list(range(1, 201)),
            "budget": {"lognormal": [1e5, 1e8]},
            "growth": 0.3,
        }
    ]
    s = mcengine.parse_scenario(scenario_toml(thresholds=thresholds, groups=groups))
    with pytest.raises(engine.ResourceError, match="GiB.*use fewer thresholds"):
        mcengine.run(s, trajectories=10, seed=0)


def test_a_group_with_entrants_and_high_ranks_is_refused_before_compiling(tmp_path, capsys):
    """Ranks up to 1000 with entrants sample the 1000 largest initial members one by one
    (and 201 listed ranks without entrants, 201 members):
    refused at once (before tracing or compiling), where it once grew to 21 GB, and by
    ``mcengine validate``; the memory estimate counts the members the kernel dates, not the
    rows reported."""
    group = {"name": "orgs", "count": 1_000_000, "budget": {"lognormal": [1e5, 1e8]}, "growth": 0.3}
    entry = {"entry": {"per_year": 10.0, "budget": {"lognormal": [1e5, 1e7]}}}
    s = mcengine.parse_scenario(scenario_toml(groups=[{**group, "ranks": [1, 1000], **entry}]))
    with pytest.raises(engine.ResourceError, match=r"groups.orgs: .*largest rank \(1,000\).*ranks up to 200"):
        mcengine.run(s, trajectories=10, seed=0)
    with pytest.raises(engine.ResourceError, match="ranks up to 200"):
        engine.sample_trajectories(s, 10, seed=0)
    listed_text = scenario_toml(groups=[{**group, "ranks": list(range(1, 202))}])
    listed = mcengine.parse_scenario(listed_text)
    with pytest.raises(engine.ResourceError, match=r"groups.orgs: .*\(201 listed\).*at most 200 ranks"):
        mcengine.run(listed, trajectories=10, seed=0)  # without entrants: each listed rank is sampled
    path = tmp_path / "many-ranks.toml"
    path.write_text(listed_text)
    with pytest.raises(SystemExit) as e:
        main(["validate", str(path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"error: {path}: groups.orgs: " in err and "at most 200 ranks" in err, err
    estimate = {}
    for extra in ({}, entry):
        model, _ = engine.build_for(
            mcengine.parse_scenario(scenario_toml(groups=[{**group, "ranks": [1, 150], **extra}]))
        )
        estimate[bool(extra)] = engine.memory_estimate(model, model.layout.n_event_vars, 256, 1000)
    assert estimate[True] > estimate[False] + 1000 * 148 * 4 * 12  # 148 more members, a block of 12 steps


PEAK_MEMORY = """
import resource, sys
import mcengine
s = mcengine.load_scenario(sys.argv[1])
mcengine.run(s, trajectories=int(sys.argv[2]), seed=0, chunk_size=1000)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def test_memory_does_not_grow_with_trajectories():
    """Peak memory of a whole run, each in a fresh process, at 2,000 and at 200,000
    trajectories in chunks of 1,000: it differs by less than half of what keeping a single
    float32 per event variable of every trajectory would add. Both compile (no cache), so
    that both peaks include the compiler's."""
    env = {**os.environ, "MCENGINE_CACHE": "0", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    peak = {}
    for n in (2_000, 200_000):
        r = subprocess.run(
            [sys.executable, "-c", PEAK_MEMORY, str(PEER), str(n)], capture_output=True, text=True, env=env, timeout=600
        )
        assert r.returncode == 0, r.stderr
        peak[n] = int(r.stdout.split()[-1])
    model, _ = engine.build(mcengine.load_scenario(PEER))
    kept = model.layout.n_event_vars * 4 * (200_000 - 2_000)
    assert peak[200_000] - peak[2_000] < kept / 2, (peak, kept)


def _invariant_scenario() -> dict:
    """The keyword tests' rich scenario (regimes, jumps, decay, catch-up, a correlation, an
    open-weights release, caps and lags) with a publication delay and a group with entrants."""
    parts = copy.deepcopy(KEYWORDS_BASE)
    parts["scenario"]["name"] = "invariant"
    next(a for a in parts["actors"] if a["name"] == "ow")["publication_delay"] = {"uniform": [0.1, 0.5]}
    parts["groups"][0]["entry"] = {"per_year": {"uniform": [2.0, 6.0]}, "budget": {"lognormal": [1e5, 1e7]}}
    return parts


INVARIANT = _invariant_scenario()


def _by_name(s, n=64):
    """Every per-trajectory output of scenario parts ``s``, keyed by what it is about."""
    scenario = mcengine.parse_scenario(scenario_toml(**s))
    model, _ = engine.build(scenario)
    out = mcengine.sample_trajectories(scenario, trajectories=n, seed=5)
    lay, got = model.layout, {"regime": out.regime}
    for name in ("t_first", "trained", "released", "t_public"):
        for r, row in enumerate(lay.rows):
            for t, thr in enumerate(lay.thresholds):
                got[name, row, thr] = getattr(out, name)[:, r, t]
    for k, b in enumerate(lay.access_budgets):
        for t, thr in enumerate(lay.thresholds):
            got["diffusion", b, thr] = out.diffusion[:, k, t]
    for i, series in enumerate(lay.stored_fan):
        got["fan", series] = out.fan[:, :, i]
    for i, name in enumerate(model.inputs):
        got["input", name] = out.inputs[:, i]
    for name in ("counts", "public_counts"):
        for t, thr in enumerate(lay.thresholds):
            got[name, thr] = getattr(out, name)[:, :, t]
    return got


@pytest.mark.parametrize("added", ["threshold", "access budget", "actor", "group"])
def test_adding_a_threshold_budget_actor_or_group_leaves_every_other_output_bit_identical(added):
    """On a scenario with regimes, jumps, correlations, releases, a delay and a group with
    entrants: each output that exists in both runs is the same bits. (Counts change when an
    actor or a group joins: they are more organisations.) The added group's rank gap is
    wider than any of the first group's, so the order statistics drawn together change
    shape."""
    parts = copy.deepcopy(INVARIANT)
    if added == "threshold":
        parts["thresholds"].insert(1, {"name": "e27", "flop": 1e27, "kind": "effective"})
    elif added == "access budget":
        parts["access"]["budgets"].insert(1, 1e7)
    elif added == "actor":
        parts["actors"].insert(2, {"name": "startup", "budget": {"lognormal": [1e7, 1e8]}, "growth": 0.4})
    else:
        labs = {"name": "labs", "count": 50, "ranks": [1, 12], "budget": {"lognormal": [1e6, 1e9]}, "growth": 0.2}
        parts["groups"].insert(0, labs)
    before, after = _by_name(INVARIANT), _by_name(parts)
    assert len(after) > len(before)
    for key, value in before.items():
        if added in ("actor", "group") and key[0] in ("counts", "public_counts"):
            continue
        assert np.array_equal(value, after[key], equal_nan=True), key
