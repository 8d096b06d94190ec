"""mcengine: Monte Carlo forecasts of when AI capabilities are first reached and how
fast they spread (frontier dates, lead times, diffusion dates, counts of organisations).

The public API is what this module exports. Reading results needs neither the engine nor
JAX (``mcengine.read_results``), nor does reading and validating scenarios
(``load_scenario``); the functions that sample (``run``, ``sample_trajectories``) load the
engine, and JAX, on first use, so that ``mcengine --help`` and result readers start fast.
"""

from importlib import metadata as _metadata

from .errors import ArgumentError as ArgumentError
from .errors import DataError as DataError
from .errors import OutputError as OutputError
from .errors import ResourceError as ResourceError
from .errors import ScenarioError as ScenarioError
from .errors import UserError as UserError
from .results import Results as Results
from .results import Row as Row
from .results import read_results as read_results
from .scenario import Scenario as Scenario
from .scenario import builtin_names as builtin_names
from .scenario import load_scenario as load_scenario
from .scenario import parse_scenario as parse_scenario

try:
    __version__ = _metadata.version("mcengine")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

# Loaded on first use (they import JAX): name -> module.
_LAZY = {"run": "api", "sample_trajectories": "api"}
__all__ = sorted(
    [
        "ArgumentError",
        "DataError",
        "OutputError",
        "ResourceError",
        "ScenarioError",
        "UserError",
        "Results",
        "Row",
        "read_results",
        "Scenario",
        "builtin_names",
        "load_scenario",
        "parse_scenario",
        "__version__",
        *_LAZY,
    ]
)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'mcengine' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
