"""How mcengine sets JAX up, the same for the command line and the Python API: one CPU
device per core (chunks are split over them) and JAX's persistent compilation cache in the
user's cache folder, so that a repeated run of an unchanged scenario shape starts sampling
in about a second. Settings the user made are kept: an XLA_FLAGS device count, a
compilation cache folder already configured, or MCENGINE_CACHE=0 (no cache, even one
configured for JAX)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
from collections.abc import Iterator


def host_id() -> str:
    """A short id of this host's CPU, so that a cache folder shared between machines (a
    cluster's home directory) never hands one CPU code compiled for another."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return hashlib.sha256(f"{platform.machine()} {flags}".encode()).hexdigest()[:12]


def configure() -> None:
    """Set the CPU device count (takes effect if JAX's backends are not started yet) and the
    persistent compilation cache, unless the user set them."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}".strip()
    import jax

    if os.environ.get("MCENGINE_CACHE", "1") == "0":
        jax.config.update("jax_enable_compilation_cache", False)
        return

    # config.read refuses flags that have a context manager (jax 0.10); the attribute is untyped
    if jax.config.jax_compilation_cache_dir:  # type: ignore[attr-defined]
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    jax.config.update("jax_compilation_cache_dir", os.path.join(base, "mcengine", "jax", host_id()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def debugging() -> bool:
    """Whether the user asked for mcengine's debugging output (``MCENGINE_DEBUG`` set, not 0):
    tracebacks of internal errors and XLA's own log."""
    return os.environ.get("MCENGINE_DEBUG", "0") not in ("", "0")


@contextlib.contextmanager
def quiet_cache_loads() -> Iterator[None]:
    """XLA's C++ log limited to fatal messages inside the block (``MCENGINE_DEBUG=1``: left
    as it is). Loading a program from the persistent cache makes XLA:CPU log two false alarms
    at error level on CPUs whose LLVM tuning flags (+prefer-no-gather, +prefer-no-scatter: AMD
    Zen among them) it mistakes for missing instruction sets; the program loads and runs. The
    log level is read once when JAX loads, so setting TF_CPP_MIN_LOG_LEVEL here would be too
    late. Afterwards the level is that of TF_CPP_MIN_LOG_LEVEL (JAX's default: 1)."""
    try:
        from jax._src.lib import utils  # no public setter of the C++ log level (jax 0.10)

        set_level = utils.absl_set_min_log_level
    except (ImportError, AttributeError):
        set_level = None
    if set_level is None or debugging():
        yield
        return
    set_level(3)
    try:
        yield
    finally:
        level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1")
        set_level(int(level) if level in ("0", "1", "2", "3") else 1)
