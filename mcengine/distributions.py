"""Per-trajectory uncertain numbers: distribution specs (no JAX here; the samplers,
``model.sample`` and ``model.sample_upper``, follow these formulas).

A scenario number is either fixed or a distribution. Every distribution is sampled
from one standard-normal draw ``z`` (so a Gaussian copula can correlate draws later),
then mapped through its inverse CDF at ``u = Phi(z)`` (so the number increases with
``z``) and an optional unit conversion:

* ``normal``     — ``a + b*z``                      (a = mean, b = sd)
* ``lognormal``  — ``10**(a + b*z)``                (a, b = mean and sd of log10)
* ``uniform``    — ``a + (b - a)*Phi(z)``           (a = low, b = high)
* ``triangular`` — the inverse triangular CDF       (a = min, b = max, c = mode)
* ``beta``       — ``a + (b - a)*I^-1(Phi(z); c, d)`` (c, d = alpha, beta; I the
  regularized incomplete beta function; PERT is a beta with
  ``c = 1 + 4 (mode - min) / (max - min)``, ``d = 1 + 4 (max - mode) / (max - min)``)
* ``mixture``    — ``parts`` with ``weights`` (summing to 1): the inverse of the
  mixture's CDF ``sum_k w_k F_k(x)`` at ``Phi(z)``, found numerically (the samplers
  bisect over float32 values, bracketed by the parts' own quantiles at ``z``)
* ``fixed``      — ``a``, no draw at all (stays a constant under ``vmap``)

A truncated distribution (``truncated``) keeps the base family's values in [``lower``,
``upper``] (its own units, before any conversion): ``u`` is restricted to the CDF range
``[cut_lo, 1 - cut_hi]`` (``cut_lo = F(lower)``, ``cut_hi = 1 - F(upper)``, computed in
double precision at parse time) and the result is clipped into the bounds against
rounding. Upper tails are computed from the upper-tail probability ``1 - u`` directly,
so neither tail loses precision.

Conversions (``transform``) turn the number the user wrote into the engine's unit:
``log10`` (a level such as $ or FLOP/$ into OOM) and ``log2_over`` (a doubling or
halving time in years into a rate, ``log10(2)/x`` OOM/yr). A lognormal level under
``log10`` is simplified to a normal in log space at parse time, so a budget is never
exponentiated. A mixture's conversion is applied to each of its parts.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

Z_P95 = 1.6448536269514722  # standard-normal 95th percentile; p5..p95 spans 2*Z_P95 sd
LOG10_2 = math.log10(2.0)

FAMILIES = ("fixed", "normal", "lognormal", "uniform", "triangular", "beta", "mixture")
TRANSFORMS = ("identity", "log10", "log2_over")
CLOSED_FORM_FAMILIES = ("fixed", "normal", "lognormal", "uniform")  # with an upper tail in the kernels

_N = NormalDist()


@dataclasses.dataclass(frozen=True)
class Dist:
    """One uncertain number. ``family``, ``transform`` and ``truncated`` are static; the
    other fields are the parameters described in the module docstring (``c``, ``d``:
    triangular mode, beta shapes; ``cut_lo``, ``cut_hi``, ``lower``, ``upper``: the
    truncation; ``weights``, ``parts``: a mixture)."""

    family: str
    a: float
    b: float = 0.0
    transform: str = "identity"
    c: float = 0.0
    d: float = 0.0
    truncated: bool = False
    cut_lo: float = 0.0
    cut_hi: float = 0.0
    lower: float = -math.inf
    upper: float = math.inf
    weights: tuple[float, ...] = ()
    parts: tuple[Dist, ...] = ()

    @property
    def is_random(self) -> bool:
        return self.family != "fixed"

    def truncate(self, lower: float, upper: float) -> Dist:
        """This (untruncated, not a mixture) distribution restricted to [lower, upper] (its own units; +-inf: no bound).
        Raises ValueError if the bounds keep under 0.1% of it."""
        base = self._untruncated()
        cut_lo, cut_hi = _cdf_py(base, lower), _sf_py(base, upper)
        if 1.0 - cut_lo - cut_hi < 1e-3:
            raise ValueError(f"the bounds keep {max(0.0, 1.0 - cut_lo - cut_hi):.2g} of the distribution")
        return dataclasses.replace(
            self, truncated=True, cut_lo=cut_lo, cut_hi=cut_hi, lower=float(lower), upper=float(upper)
        )

    def _untruncated(self) -> Dist:
        return dataclasses.replace(self, truncated=False, cut_lo=0.0, cut_hi=0.0, lower=-math.inf, upper=math.inf)

    def with_transform(self, transform: str) -> Dist:
        """The same draw expressed in another unit, simplified where exact."""
        if transform == "identity":
            return self
        if self.family == "fixed":
            return Dist("fixed", _apply_transform_py(self.a, transform))
        if self.family == "mixture":
            return dataclasses.replace(self, parts=tuple(p.with_transform(transform) for p in self.parts))
        if self.family == "lognormal" and transform == "log10":
            return dataclasses.replace(
                self, family="normal", lower=_log10_or_inf(self.lower), upper=_log10_or_inf(self.upper)
            )
        if self.family == "lognormal" and transform == "log2_over":
            # log10(2) / 10**(a + b z) = 10**(log10(log10 2) - a - b z): lognormal again,
            # drawn at -z, so the cut tails and the bounds swap.
            return dataclasses.replace(
                self,
                a=math.log10(LOG10_2) - self.a,
                cut_lo=self.cut_hi,
                cut_hi=self.cut_lo,
                lower=LOG10_2 / self.upper if self.upper < math.inf else 0.0,
                upper=LOG10_2 / self.lower if self.lower > 0 else math.inf,
            )
        return dataclasses.replace(self, transform=transform)

    def quantile(self, p: float) -> float:
        """The p-quantile in engine units (``log2_over`` is decreasing, so it flips p)."""
        if self.family == "mixture":
            return _mixture_quantile_py(self, p)
        if self.transform == "log2_over":
            p = 1.0 - p
        if self.family in ("fixed", "normal", "lognormal") and not self.truncated:
            x = _base_py(self, _N.inv_cdf(p))
        else:
            u = self.cut_lo + (1.0 - self.cut_lo - self.cut_hi) * p
            x = min(max(_base_quantile_py(self, u), self.lower), self.upper)
        return _apply_transform_py(x, self.transform)

    def cdf(self, y: float) -> float:
        """P(X <= y), y in engine units."""
        if self.family == "mixture":
            return math.fsum(w * p.cdf(y) for w, p in zip(self.weights, self.parts))
        if self.transform == "log10":
            return _cdf_py(self, _pow10(y))
        if self.transform == "log2_over":
            return 0.0 if y <= 0 else _sf_py(self, LOG10_2 / y)
        return _cdf_py(self, y)


def _log10_or_inf(x: float) -> float:
    return math.log10(x) if 0 < x < math.inf else (math.inf if x == math.inf else -math.inf)


def _base_py(dist: Dist, z: float) -> float:
    if dist.family == "fixed":
        return dist.a
    if dist.family == "normal":
        return dist.a + dist.b * z
    if dist.family == "lognormal":
        return _pow10(dist.a + dist.b * z)
    return dist.a + (dist.b - dist.a) * _N.cdf(z)


def _pow10(w: float) -> float:
    return 10.0**w if w < 308 else math.inf


def _base_quantile_py(dist: Dist, u: float) -> float:
    """The untruncated family's u-quantile in its own units (before any conversion)."""
    u = min(max(u, 1e-300), 1.0 - 1e-16)
    f, a, b = dist.family, dist.a, dist.b
    if f == "fixed":
        return a
    if f == "normal":
        return a + b * _N.inv_cdf(u)
    if f == "lognormal":
        return _pow10(a + b * _N.inv_cdf(u))
    if f == "uniform":
        return a + (b - a) * u
    if f == "triangular":
        m = dist.c
        if u < (m - a) / (b - a):
            return a + math.sqrt(u * (b - a) * (m - a))
        return b - math.sqrt((1.0 - u) * (b - a) * (b - m))
    if f == "beta":
        return a + (b - a) * _betaincinv_py(dist.c, dist.d, u)
    raise ValueError(f)  # pragma: no cover - guarded by the parser


def _cdf_py(dist: Dist, x: float) -> float:
    """P(X <= x) of a non-mixture in its own units (before any conversion), truncation included."""
    if dist.truncated:
        base = dist._untruncated()
        if x < dist.lower:
            return 0.0
        if x >= dist.upper:
            return 1.0
        return min(max((_cdf_py(base, x) - dist.cut_lo) / (1.0 - dist.cut_lo - dist.cut_hi), 0.0), 1.0)
    f, a, b = dist.family, dist.a, dist.b
    if f == "fixed" or (f in ("normal", "lognormal") and b == 0) or (f in ("uniform", "triangular", "beta") and a == b):
        return float(x >= (a if f != "lognormal" else _pow10(a)))
    if f == "normal":
        return _N.cdf((x - a) / b)
    if f == "lognormal":
        return 0.0 if x <= 0 else (1.0 if x == math.inf else _N.cdf((math.log10(x) - a) / b))
    if x <= a:
        return 0.0
    if x >= b:
        return 1.0
    if f == "uniform":
        return (x - a) / (b - a)
    if f == "triangular":
        m = dist.c
        if x <= m:
            return (x - a) ** 2 / ((b - a) * (m - a))
        return 1.0 - (b - x) ** 2 / ((b - a) * (b - m))
    if f == "beta":
        return _betainc_py(dist.c, dist.d, (x - a) / (b - a))
    raise ValueError(f)  # pragma: no cover - guarded by the parser


def _sf_py(dist: Dist, x: float) -> float:
    """P(X > x) of a non-mixture in its own units, without cancellation in the upper tail."""
    if dist.truncated:
        base = dist._untruncated()
        if x < dist.lower:
            return 1.0
        if x >= dist.upper:
            return 0.0
        return min(max((_sf_py(base, x) - dist.cut_hi) / (1.0 - dist.cut_lo - dist.cut_hi), 0.0), 1.0)
    f, a, b = dist.family, dist.a, dist.b
    if f == "normal" and b > 0:
        return _N.cdf((a - x) / b)
    if f == "lognormal" and b > 0:
        return 1.0 if x <= 0 else (0.0 if x == math.inf else _N.cdf((a - math.log10(x)) / b))
    if f == "beta" and a < x < b:
        return _betainc_py(dist.d, dist.c, (b - x) / (b - a))
    if f == "triangular" and dist.c < x < b:
        return (b - x) ** 2 / ((b - a) * (b - dist.c))
    return 1.0 - _cdf_py(dist, x)


def _betainc_py(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (a continued fraction, modified
    Lentz; double precision)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc_py(b, a, 1.0 - x)
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return math.exp(ln_front) * h / a


def _betaincinv_py(a: float, b: float, u: float) -> float:
    """x with I_x(a, b) = u, by bisection (double precision)."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _betainc_py(a, b, mid) >= u:
            hi = mid
        else:
            lo = mid
    return hi


def _mixture_quantile_py(dist: Dist, p: float) -> float:
    """The p-quantile of a mixture in engine units: bisection on its CDF, bracketed by the
    parts' own p-quantiles."""
    qs = [part.quantile(p) for part in dist.parts]
    lo, hi = min(qs), max(qs)
    if dist.cdf(lo) >= p:
        return lo
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if dist.cdf(mid) >= p:
            hi = mid
        else:
            lo = mid
    return hi


def _apply_transform_py(x: float, transform: str) -> float:
    if transform == "log10":
        return math.log10(x) if x > 0 else -math.inf
    if transform == "log2_over":
        return LOG10_2 / x if x != 0 else math.inf
    return x
