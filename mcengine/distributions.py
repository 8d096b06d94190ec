"""Per-trajectory uncertain numbers: distribution specs and their samplers.

A scenario number is either fixed or a distribution. Every distribution is sampled
from one standard-normal draw ``z`` (so a Gaussian copula can correlate draws later),
then mapped through its inverse CDF and an optional unit conversion:

* ``normal``    — ``a + b*z``                      (a = mean, b = sd)
* ``lognormal`` — ``10**(a + b*z)``                (a, b = mean and sd of log10)
* ``uniform``   — ``a + (b - a)*Phi(z)``           (a = low, b = high)
* ``fixed``     — ``a``, no draw at all (stays a constant under ``vmap``)

Conversions (``transform``) turn the number the user wrote into the engine's unit:
``log10`` (a level such as $ or FLOP/$ into OOM) and ``log2_over`` (a doubling or
halving time in years into a rate, ``log10(2)/x`` OOM/yr). A lognormal level under
``log10`` is simplified to a normal in log space at parse time, so a budget is never
exponentiated.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp

Z_P95 = 1.6448536269514722  # standard-normal 95th percentile; p5..p95 spans 2*Z_P95 sd

FAMILIES = ("fixed", "normal", "lognormal", "uniform")
TRANSFORMS = ("identity", "log10", "log2_over")


@dataclasses.dataclass(frozen=True)
class Dist:
    """One uncertain number. ``family`` and ``transform`` are static; ``a``, ``b`` are
    the parameters described in the module docstring."""

    family: str
    a: float
    b: float = 0.0
    transform: str = "identity"

    @property
    def is_random(self) -> bool:
        return self.family != "fixed"

    def with_transform(self, transform: str) -> "Dist":
        """The same draw expressed in another unit, simplified where exact."""
        if transform == "identity":
            return self
        if self.family == "fixed":
            return Dist("fixed", _apply_transform_py(self.a, transform))
        if self.family == "lognormal" and transform == "log10":
            return Dist("normal", self.a, self.b)
        if self.family == "lognormal" and transform == "log2_over":
            # log10(2) / 10**(a + b z) = 10**(log10(log10 2) - a - b z): lognormal again.
            return Dist("lognormal", math.log10(math.log10(2.0)) - self.a, self.b)
        return dataclasses.replace(self, transform=transform)

    def quantile(self, p: float) -> float:
        """The p-quantile in engine units (``log2_over`` is decreasing, so it flips p)."""
        if self.transform == "log2_over":
            p = 1.0 - p
        return _apply_transform_py(_base_py(self, NormalDist().inv_cdf(p)), self.transform)


jax.tree_util.register_dataclass(Dist, data_fields=["a", "b"], meta_fields=["family", "transform"])


def sample(dist: Dist, z):
    """Map a standard-normal draw ``z`` (float32 array) to the number, in engine units.
    The number increases with ``z`` (so copula correlations keep their sign); a fixed
    number ignores ``z`` and returns a constant."""
    if dist.family == "fixed":
        return jnp.asarray(dist.a, jnp.float32)
    a = jnp.asarray(dist.a, jnp.float32)
    b = jnp.asarray(dist.b, jnp.float32)
    if dist.transform == "log2_over":
        z = -z  # the conversion is decreasing: keep every number increasing in its draw
    if dist.family == "normal":
        x = a + b * z
    elif dist.family == "lognormal":
        x = 10.0 ** (a + b * z)
    elif dist.family == "uniform":
        x = a + (b - a) * jsp.ndtr(z)
    else:  # pragma: no cover - guarded by the parser
        raise ValueError(dist.family)
    if dist.transform == "log10":
        return jnp.log10(x)
    if dist.transform == "log2_over":
        return math.log10(2.0) / x
    return x


def _base_py(dist: Dist, z: float) -> float:
    if dist.family == "fixed":
        return dist.a
    if dist.family == "normal":
        return dist.a + dist.b * z
    if dist.family == "lognormal":
        return 10.0 ** (dist.a + dist.b * z)
    return dist.a + (dist.b - dist.a) * NormalDist().cdf(z)


def _apply_transform_py(x: float, transform: str) -> float:
    if transform == "log10":
        return math.log10(x)
    if transform == "log2_over":
        return math.log10(2.0) / x
    return x


def sample_upper(dist: Dist, s):
    """The number whose upper-tail probability is ``s`` (float32 array in (0, 1)), i.e.
    the inverse CDF at ``1 - s`` computed without losing precision for tiny ``s``: the
    k-th largest of n draws is ``sample_upper(dist, S)`` with S ~ Beta(k, n - k + 1).
    For increasing conversions only (identity, log10): used for budgets."""
    if dist.family == "fixed":
        return jnp.asarray(dist.a, jnp.float32)
    if dist.family == "uniform":
        a = jnp.asarray(dist.a, jnp.float32)
        x = a + (jnp.asarray(dist.b, jnp.float32) - a) * (1.0 - s)
        return jnp.log10(x) if dist.transform == "log10" else x
    return sample(dist, -jsp.ndtri(s))
