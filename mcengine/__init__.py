"""mcengine: Monte Carlo forecasts of when AI capabilities are first reached and how
fast they spread (frontier dates, lead times, diffusion dates).

The public API, imported lazily (so ``mcengine --help`` does not start JAX):
``load_scenario``, ``parse_scenario``, ``builtin_names``, ``run``, ``read_results``,
``sample_trajectories``, ``Results``, ``Scenario``, ``ScenarioError``.
"""

__version__ = "0.1.0"

_API = {
    "Results": "api", "read_results": "api", "run": "api",
    "sample_trajectories": "engine",
    "Scenario": "scenario", "ScenarioError": "scenario", "builtin_names": "scenario",
    "load_scenario": "scenario", "parse_scenario": "scenario",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'mcengine' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
