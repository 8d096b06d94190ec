"""Pure JAX kernels of mcengine, imported as ``mcengine.kernels``.

The kernels import only JAX and NumPy and work on many trajectories at once, with the
trajectories on the last axis of every array; the engine (``mcengine.engine``) jits,
chunks, shards and seeds them.
"""

from .normals import DEFAULT_GENERATOR as DEFAULT_GENERATOR
from .normals import GENERATORS as GENERATORS
from .population import Members as Members
from .population import Population as Population
from .trajectory import MAX_BLOCK_STEPS as MAX_BLOCK_STEPS
from .trajectory import Config as Config
from .trajectory import Fan as Fan
from .trajectory import Outputs as Outputs
from .trajectory import Params as Params
from .trajectory import combine_releases as combine_releases
from .trajectory import inverse_soft_cap as inverse_soft_cap
from .trajectory import jump_draws as jump_draws
from .trajectory import simulate as simulate
from .trajectory import soft_cap as soft_cap
