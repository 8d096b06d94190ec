"""Per-trajectory uncertain numbers: distribution specs (no JAX here; the samplers,
``model.sample`` and ``model.sample_upper``, follow these formulas).

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
