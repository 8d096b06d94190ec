"""Shared test helpers: small scenario files written from Python values."""

from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# One persistent compilation cache for the whole test session, in a fresh folder (never the
# user's), inherited by the command lines the tests start: a program compiled by one test
# (the same scenario shape) is read back by the others. Tests of a cold start say so.
# (Made by the first process, pytest's own; its test worker processes inherit it.)
TEST_CACHE = os.environ.get("MCENGINE_TEST_CACHE", "")
if not TEST_CACHE:
    TEST_CACHE = os.environ["MCENGINE_TEST_CACHE"] = tempfile.mkdtemp(prefix="mcengine-test-jax-cache-")
    atexit.register(shutil.rmtree, TEST_CACHE, ignore_errors=True)
os.environ.pop("MCENGINE_CACHE", None)
os.environ["JAX_COMPILATION_CACHE_DIR"] = TEST_CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / "peer.toml"


def toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else f'"{k}"'


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float) and not math.isfinite(v):
        return ("-" if v < 0 else "") + ("nan" if math.isnan(v) else "inf")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return repr(v)


def scenario_toml(
    scenario=None,
    hardware=None,
    algorithms=None,
    actors=None,
    thresholds=None,
    access=None,
    groups=(),
    regimes=(),
    correlations=None,
) -> str:
    """TOML text of a small scenario; each argument replaces its section (dict, or list
    of dicts for actors/thresholds/groups/regimes). ``None`` keeps a deterministic default."""
    scenario = scenario or {"name": "test", "start": 2025.0, "horizon": 2045.0, "steps_per_year": 12}
    hardware = hardware or {"initial": 1e18, "rate": 0.12, "volatility": 0.0}
    algorithms = algorithms or {"initial": 1.0, "rate": 0.4, "volatility": 0.0}
    actors = actors or [{"name": "frontier", "budget": 1e9, "growth": 0.3}]
    thresholds = thresholds or [{"name": "1e28", "flop": 1e28, "kind": "effective"}]
    lines = []
    for name, table in (("scenario", scenario), ("hardware", hardware), ("algorithms", algorithms)):
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    for name, tables in (("actors", actors), ("thresholds", thresholds), ("groups", groups)):
        for t in tables:
            lines.append(f"[[{name}]]")
            lines += [f"{k} = {toml_value(v)}" for k, v in t.items()]
    for name, table in (("access", access), ("correlations", correlations)):
        if table is not None:
            lines.append(f"[{name}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    for r in regimes:
        lines.append("[[regimes]]")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in r.items()]
    return "\n".join(lines) + "\n"


def exit_code(args) -> int:
    """Run the CLI in-process; its exit status."""
    from mcengine.cli import main

    try:
        main(args)
    except SystemExit as e:
        return e.code
    return 0


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs():
    """After each test module, drop the compiled programs it made (JAX's caches and the
    engine's compiled chunk steps), so that the memory of one long test process stays
    that of its largest module rather than growing with every scenario shape compiled."""
    yield
    import sys

    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    engine = sys.modules.get("mcengine.engine")
    if engine is not None:
        engine._COMPILED.clear()


@pytest.fixture
def cold_compiles():
    """No persistent compilation cache during the test: every program it runs is compiled."""
    import jax
    from jax._src import compilation_cache  # JAX reads the cache setting once per process

    enabled = jax.config.jax_enable_compilation_cache  # type: ignore[attr-defined]
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    yield
    jax.config.update("jax_enable_compilation_cache", enabled)
    compilation_cache.reset_cache()


@pytest.fixture
def write_scenario(tmp_path):
    """Write scenario TOML text to a file and return its path."""

    def write(text: str, name: str = "scenario.toml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return write
