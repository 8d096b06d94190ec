"""Pure JAX kernels of mcengine, imported as ``mcengine.kernels``.

Each kernel is written for one trajectory and imports only JAX; the engine
(``mcengine.engine``) vmaps, jits, chunks and seeds them.
"""

from .trajectory import MAX_BLOCK_STEPS as MAX_BLOCK_STEPS
from .trajectory import Config as Config
from .trajectory import Outputs as Outputs
from .trajectory import Params as Params
from .trajectory import combine_releases as combine_releases
from .trajectory import jump_draws as jump_draws
from .trajectory import simulate as simulate
from .trajectory import soft_cap as soft_cap
from .normals import DEFAULT_GENERATOR as DEFAULT_GENERATOR
from .normals import GENERATORS as GENERATORS
