"""Streaming aggregation: fixed-bin histograms filled on the device, quantiles on the host.

Each output variable (a first-crossing time, a lead time, a diffusion date, a fan-chart
value at one year) gets ``nbins`` equal bins over a range fixed before sampling starts.
Every chunk adds its counts (integers, so the sum is exact and independent of the chunk
layout); censored trajectories (NaN) are counted in the total but in no bin, and neither
they nor padded trajectories make an update. A variable with no spread in the pilot (a
deterministic series, a count that is 0 everywhere) has a ``hot`` bin: where the engine
asks for it (GPUs), its values that fall there are counted by a sum over the trajectories,
not scattered one by one into the same address. A quantile is read off the cumulative
counts with the values inside a bin spread evenly across it, so it is within one bin width
of the numpy quantile of the same samples. For times the bin width
is a small fraction of a step (recorded as ``resolution_years`` in every output).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .io import FAN_QUANTILES, QUANTILES, quantile_column

MAX_HISTOGRAM_BYTES = 64 * 2**20  # per histogram family, on the device
FAN_BINS = 2048  # bins per fan-chart variable
COUNT_EXACT = 1024  # counts [organisations] below this have a bin each: their quantiles are exact
COUNT_RATIO = 1.01  # above it, each bin is 1% wider than the last: a quantile is within 0.5%
COUNT_BINS = 4096  # COUNT_EXACT whole numbers, then 3,072 bins of 1% reaching about 1.9e16


@dataclasses.dataclass(frozen=True)
class Bins:
    """Equal-width bins per variable: ``lo[v] + width[v] * [0, nbins]``."""

    lo: np.ndarray  # float64 [vars]
    width: np.ndarray  # float64 [vars]
    nbins: int
    hot: np.ndarray | None = None  # int32 [vars]: the bin of a variable with no spread (nbins: none)

    def on_device(self, hot: bool = True) -> tuple:
        """(lo, width) as float32 arrays for :func:`fill` and, with ``hot``, the hot bins
        (int32; nbins where there is none)."""
        lo, width = jnp.asarray(self.lo, jnp.float32), jnp.asarray(self.width, jnp.float32)
        if not hot:
            return lo, width
        none = np.full(self.lo.shape, self.nbins, np.int32)
        return lo, width, jnp.asarray(none if self.hot is None else self.hot, jnp.int32)

    def with_hot(self, pilot: np.ndarray) -> Bins:
        """These bins with the hot bin of every variable whose values in ``pilot``
        [trajectories, vars] are all one number: the bin :func:`fill` puts that number in
        (computed as it does, in float32)."""
        if pilot.shape[0] == 0:
            return self
        lo, width = self.lo.astype(np.float32), self.width.astype(np.float32)
        with np.errstate(invalid="ignore"):
            b = np.clip(np.floor((pilot[0].astype(np.float32) - lo) / width), 0, self.nbins - 1)
        constant = (pilot.min(axis=0) == pilot.max(axis=0)) & np.isfinite(b)
        return dataclasses.replace(self, hot=np.where(constant, b, self.nbins).astype(np.int32))


def fill(counts, values, mask, block, lo, width, hot=None):
    """Add ``values`` [vars, trajectories] (NaN = censored) of the trajectories where
    ``mask`` is True into block ``block`` [trajectories] of ``counts`` [blocks * vars,
    nbins] (int32); ``lo`` and ``width`` [vars] are the bins of each variable (as
    :meth:`Bins.on_device` gives them). One scatter of one flat index per value; censored
    and masked values make no update (their index is out of range and dropped). With
    ``hot`` [vars] (int32; nbins: none), the values that fall into their variable's hot bin
    are counted by a sum over the trajectories per block and added once. Runs on the
    device."""
    nbins = counts.shape[1]
    n_vars = values.shape[0]
    valid = mask[None, :] & ~jnp.isnan(values)
    b = jnp.clip(jnp.floor((values - lo[:, None]) / width[:, None]), 0, nbins - 1)
    b = jnp.where(valid, b, nbins).astype(jnp.int32)
    var = block[None, :] * n_vars + jnp.arange(n_vars, dtype=jnp.int32)[:, None]
    if hot is not None:
        in_hot = b == hot[:, None]
        n_blocks = counts.shape[0] // n_vars
        per_block = jnp.stack(
            [jnp.sum((in_hot & (block == k)[None, :]).astype(jnp.int32), axis=1) for k in range(n_blocks)], axis=1
        )  # [vars, blocks]
        at = jnp.arange(n_blocks, dtype=jnp.int32)[None, :] * n_vars + jnp.arange(n_vars, dtype=jnp.int32)[:, None]
        counts = counts.at[at, hot[:, None]].add(per_block, mode="drop")
        b = jnp.where(in_hot, nbins, b)
    flat = jnp.where(b < nbins, var * nbins + b, counts.size)  # one index per update; out of range: dropped
    return counts.reshape(-1).at[flat].add(1, mode="drop").reshape(counts.shape)


def summarise(counts: np.ndarray, n: int, bins: Bins, quantiles=QUANTILES) -> dict[str, np.ndarray]:
    """Per variable: ``p_reached``, ``mean`` over reached, and the quantiles of the
    unconditional distribution (censored = later than every reached value). A quantile
    that falls among censored trajectories, like every statistic of an empty variable, is
    NaN here and null in the outputs. ``counts`` is int64 [vars, nbins], ``n`` the number
    of trajectories."""
    counts = np.asarray(counts, np.int64)
    n_vars = counts.shape[0]
    reached = counts.sum(axis=1)
    centres = bins.lo[:, None] + bins.width[:, None] * (np.arange(bins.nbins) + 0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(reached > 0, (counts * centres).sum(axis=1) / reached, np.nan)
    out = {"p_reached": reached / n if n else np.full(n_vars, np.nan), "mean": mean}
    cum = np.cumsum(counts, axis=1)
    for q in quantiles:
        col = np.full(n_vars, np.nan)
        pos = q * (n - 1)
        r0 = int(np.floor(pos))
        frac = pos - r0
        r1 = r0 + 1 if frac > 0 else r0
        for v in range(n_vars):
            if n == 0 or r1 >= reached[v]:
                continue
            v0 = _value_at_rank(counts[v], cum[v], r0, bins.lo[v], bins.width[v])
            v1 = _value_at_rank(counts[v], cum[v], r1, bins.lo[v], bins.width[v])
            col[v] = v0 + frac * (v1 - v0)
        out[quantile_column(q)] = col
    return out


def _value_at_rank(counts, cum, r, lo, width):
    """The r-th smallest value (0-based), with a bin's values spread evenly across it."""
    b = int(np.searchsorted(cum, r, side="right"))
    before = cum[b] - counts[b]
    return lo + width * (b + (r - before + 0.5) / counts[b])


def event_bins(span: float, steps: int, n_first: int, n_lead: int, blocks: int = 1) -> Bins:
    """Bins for ``n_first`` times in [0, span] years (first crossings, diffusion dates) and
    ``n_lead`` lead times in [-span, span]: 256 bins per step, fewer if the histogram would
    exceed MAX_HISTOGRAM_BYTES."""
    n_vars = max(1, (n_first + n_lead) * blocks)
    nbins = int(max(256, min(256 * steps, MAX_HISTOGRAM_BYTES // (4 * n_vars))))
    lo = np.concatenate([np.zeros(n_first), np.full(n_lead, -span)])
    width = np.concatenate([np.full(n_first, span / nbins), np.full(n_lead, 2 * span / nbins)])
    return Bins(lo, width, nbins)


def fan_bins(pilot: np.ndarray, nbins: int = FAN_BINS) -> Bins:
    """Bins for fan-chart variables from a pilot sample [trajectories, vars]: each
    variable's pilot range, widened by half of it on both sides. Values outside fall into
    the edge bins (they lie far beyond the fan's p5..p95)."""
    lo, hi = pilot.min(axis=0).astype(np.float64), pilot.max(axis=0).astype(np.float64)
    pad = 0.5 * (hi - lo) + 1e-3
    return Bins(lo - pad, (hi - lo + 2 * pad) / nbins, nbins).with_hot(pilot)


def count_scale(counts):
    """Where counts [organisations] (any array; NaN stays NaN) fall on the axis of the count
    bins, whose bins are one unit wide: a count itself below COUNT_EXACT, and above it
    COUNT_EXACT plus the number of COUNT_RATIO steps beyond COUNT_EXACT. So small counts are
    exact and large ones, which can spread over many orders of magnitude between
    trajectories, keep the same relative resolution. Runs on the device."""
    k = float(COUNT_EXACT)
    return jnp.where(counts < k, counts, k + jnp.log(jnp.maximum(counts, k) / k) / math.log(COUNT_RATIO))


def count_bins(pilot: np.ndarray, nbins: int = COUNT_BINS) -> Bins:
    """Bins for count variables on the axis of :func:`count_scale`, for a pilot sample
    [trajectories, vars] of counts: bin i holds the count i below COUNT_EXACT, and counts
    within half a COUNT_RATIO step of :func:`count_value` (i) above it. The same for every
    variable and run (but for the hot bins of variables with no spread in the pilot);
    larger counts than the last bin's fall into it."""
    n_vars = pilot.shape[1]
    bins = Bins(np.full(n_vars, -0.5), np.ones(n_vars), nbins)
    return bins.with_hot(np.asarray(_count_scale_compiled(jnp.asarray(pilot, jnp.float32))))


# The pilot's counts go through the same ops as on the device, compiled once (six eager
# ops would each compile a program of their own, for every pilot shape).
_count_scale_compiled = jax.jit(count_scale)


def count_value(index: np.ndarray) -> np.ndarray:
    """The count [organisations] a count bin stands for (its whole number below
    COUNT_EXACT, the geometric centre rounded to a whole number above)."""
    index = np.asarray(index, np.float64)
    above = np.round(COUNT_EXACT * COUNT_RATIO ** np.maximum(index - COUNT_EXACT, 0.0))
    return np.where(index < COUNT_EXACT, index, above)


def summarise_counts(counts: np.ndarray, n: int, bins: Bins, quantiles=FAN_QUANTILES) -> dict[str, np.ndarray]:
    """Per count variable: ``mean`` and the quantiles (the smallest count whose cumulative
    share reaches q: numpy's ``inverted_cdf``), exact below COUNT_EXACT and within half a
    COUNT_RATIO step above (see :func:`count_scale`). ``counts`` is int64 [vars, nbins]."""
    counts = np.asarray(counts, np.int64)
    centres = np.broadcast_to(count_value(np.arange(bins.nbins)), counts.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"mean": (counts * centres).sum(axis=1) / n if n else np.full(len(counts), np.nan)}
    cum = np.cumsum(counts, axis=1)
    for q in quantiles:
        at = (
            np.array([np.searchsorted(c, q * n - 1e-9 * n, side="left") for c in cum])
            if n
            else np.zeros(len(cum), np.int64)
        )
        out[quantile_column(q)] = (
            np.take_along_axis(centres, np.minimum(at, bins.nbins - 1)[:, None], 1)[:, 0]
            if n
            else np.full(len(counts), np.nan)
        )
    return out
