"""mcengine: Monte Carlo forecasts of when AI capabilities are first reached and how
fast they spread (frontier dates, lead times, diffusion dates)."""

__version__ = "0.1.0"

from .api import Results as Results
from .api import read_results as read_results
from .api import run as run
from .engine import sample_trajectories as sample_trajectories
from .scenario import Scenario as Scenario
from .scenario import ScenarioError as ScenarioError
from .scenario import builtin_names as builtin_names
from .scenario import load_scenario as load_scenario
from .scenario import parse_scenario as parse_scenario
