"""Inspecting a latent space: exact nearest neighbours among a split's codes, and attribute directions.

Neighbours (`LatentIndex`): exact k-nearest-neighbour search over N codes, either Euclidean on the
posterior means μ or the symmetric KL divergence between the diagonal Gaussians q(z|x) (nats:
KL(q_a || q_b) + KL(q_b || q_a), which counts a difference in μ in units of both posteriors' σ, so two
images whose codes the encoder is unsure about are nearer than their means say). Exact search, no
approximate index: each metric is one matrix product over the codes (in chunks, so memory stays flat),
a top-k, and the candidates' distances recomputed directly in float64 (the product form loses digits
to cancellation). 100,000 codes answer in a few milliseconds on a laptop CPU
(`python -m benchmarks --only inspect`), far under what an approximate index would save.

Directions (`class_direction`, `attribute_directions`): vectors in z along which an attribute grows,
from labels or ground-truth factors, as class-mean differences (White 2016, "Sampling Generative
Networks", section 3.3: the mean code of the images with the attribute minus the mean of those
without). When labels correlate (a confounding label goes with the attribute), the mean difference
also carries the confounder; the bias-corrected vector of the same paper balances the two sides by
replicating data so that the confounding labels occur in the same proportions among the images with
and without the attribute. `class_direction(..., confounders=...)` does this by weighting, which is
the replication's exact limit: within each confounder stratum the two sides' means are taken, and the
strata are averaged with the same weights on both sides (their share of all the codes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vae_core.errors import VAEError

METRICS = {
    "euclidean": "Euclidean distance between the posterior means μ",
    "symmetric-kl": "symmetric KL between the posteriors q(z|x), nats",
}
CHUNK_ROWS = 32768  # codes scored at once per query batch
QUERY_BATCH = 256  # queries scored at once


def _as_codes(name: str, values, dims: int | None = None) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(values, dtype=np.float32))
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or (dims is not None and t.shape[1] != dims):
        want = f"(N, {dims})" if dims is not None else "(N, D)"
        raise VAEError(f"{name} must be {want} codes (got shape {tuple(t.shape)})")
    if not torch.isfinite(t).all():
        raise VAEError(f"{name} contain NaN or infinite values")
    return t.contiguous()


class LatentIndex:
    """Exact nearest neighbours among N codes: posterior means `mu` (N, D) and, for the symmetric KL,
    their log-variances `logvar` (N, D). Built once per split (a few milliseconds), queried many times."""

    def __init__(self, mu, logvar=None):
        self.mu = _as_codes("codes", mu)
        self.n, self.dims = self.mu.shape
        if self.n == 0:
            raise VAEError("no codes to search")
        self.logvar = None if logvar is None else _as_codes("log-variances", logvar, self.dims)
        if self.logvar is not None and len(self.logvar) != self.n:
            raise VAEError(f"{len(self.logvar)} log-variances for {self.n} codes")
        self._sq = (self.mu * self.mu).sum(1)  # |μ|² per code, for the Euclidean product form
        self._kl = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics this index answers (the symmetric KL needs the log-variances)."""
        return tuple(m for m in METRICS if m == "euclidean" or self.logvar is not None)

    def _kl_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per code x: features X (N, 4D) and a constant c (N,) such that, for a query q with features
        Q (`_kl_query`), sum_d [v_q/v_x + v_x/v_q + (μ_q − μ_x)²(1/v_q + 1/v_x)] = Q·X + c_q + c_x;
        the symmetric KL is half of it minus D."""
        if self._kl is None:
            mu, var, prec = self.mu, self.logvar.exp(), (-self.logvar).exp()
            self._kl = (torch.cat([prec, var + mu**2, mu, mu * prec], 1), (mu**2 * prec).sum(1))
        return self._kl

    @staticmethod
    def _kl_query(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        var, prec = logvar.exp(), (-logvar).exp()
        return torch.cat([var + mu**2, prec, -2 * mu * prec, -2 * mu], 1), (mu**2 * prec).sum(1)

    def query(self, mu, k: int = 10, *, logvar=None, metric: str = "euclidean",
              exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes to each query code (Q, D) (or one code (D,)): indices (Q, k) int64 and
        distances (Q, k) float64, nearest first (Euclidean distance, or symmetric KL in nats).
        `logvar`: the queries' log-variances, for the symmetric KL (a z with no posterior, say a
        slider's, can pass zeros: σ = 1). `exclude`: one index per query left out of its answer (the
        query's own code). k larger than the codes available gives them all."""
        if metric not in METRICS:
            raise VAEError(f"unknown distance {metric!r}; choose one of: {', '.join(METRICS)}")
        if metric == "symmetric-kl" and self.logvar is None:
            raise VAEError("the symmetric KL needs the codes' log-variances")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise VAEError(f"k must be a whole number >= 1 (got {k!r})")
        q = _as_codes("query codes", mu, self.dims)
        if metric == "symmetric-kl":
            q_logvar = torch.zeros_like(q) if logvar is None else _as_codes("query log-variances", logvar, self.dims)
            if q_logvar.shape != q.shape:
                raise VAEError(f"{len(q_logvar)} query log-variances for {len(q)} query codes")
        skip = None
        if exclude is not None:
            skip = torch.as_tensor(np.asarray(exclude, dtype=np.int64).reshape(-1))
            if len(skip) != len(q):
                raise VAEError(f"{len(skip)} indices to exclude for {len(q)} queries")
        k_out = min(int(k), self.n - (skip is not None))
        if k_out < 1:
            return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0))
        k_cand = min(self.n, 2 * k_out + 8 + (skip is not None))  # extra candidates: the product form's rounding
        out_i, out_d = [], []
        for start in range(0, len(q), QUERY_BATCH):
            qb = q[start:start + QUERY_BATCH]
            if metric == "euclidean":
                cand = self._candidates(qb, self.mu.T, self._sq, None, k_cand)
                exact = ((self.mu[cand].double() - qb[:, None].double()) ** 2).sum(-1).sqrt()
            else:
                lb = q_logvar[start:start + QUERY_BATCH]
                feats, const = self._kl_features()
                qf, qc = self._kl_query(qb, lb)
                cand = self._candidates(qf, feats.T, const, qc, k_cand, euclid=False)
                exact = _symmetric_kl(qb[:, None].double(), lb[:, None].double(),
                                      self.mu[cand].double(), self.logvar[cand].double())
            if skip is not None:
                exact[cand == skip[start:start + QUERY_BATCH, None]] = float("inf")
            order = torch.sort(exact, dim=1, stable=True).indices[:, :k_out]
            out_i.append(torch.gather(cand, 1, order))
            out_d.append(torch.gather(exact, 1, order))
        return torch.cat(out_i).numpy(), torch.cat(out_d).numpy()

    def _candidates(self, qf: torch.Tensor, xt: torch.Tensor, x_const: torch.Tensor, q_const, k: int,
                    euclid: bool = True) -> torch.Tensor:
        """The k smallest scores per query over every code, chunk by chunk: Euclidean |x|² − 2 q·x (the
        query's |q|² does not change the order), or the symmetric KL's Q·X + c_x."""
        best_s = best_i = None
        for lo in range(0, self.n, CHUNK_ROWS):
            hi = min(self.n, lo + CHUNK_ROWS)
            prod = qf @ xt[:, lo:hi]
            scores = x_const[lo:hi] - 2 * prod if euclid else prod + x_const[lo:hi]
            s, i = torch.topk(scores, min(k, hi - lo), dim=1, largest=False)
            i = i + lo
            if best_s is not None:
                s, i = torch.cat([best_s, s], 1), torch.cat([best_i, i], 1)
                s, pick = torch.topk(s, min(k, s.shape[1]), dim=1, largest=False)
                i = torch.gather(i, 1, pick)
            best_s, best_i = s, i
        return best_i


def _symmetric_kl(mu_a, logvar_a, mu_b, logvar_b) -> torch.Tensor:
    """KL(N_a || N_b) + KL(N_b || N_a) between diagonal Gaussians, summed over the last dimension."""
    va, vb = logvar_a.exp(), logvar_b.exp()
    d2 = (mu_a - mu_b) ** 2
    return 0.5 * (va / vb + vb / va + d2 * (1 / va + 1 / vb) - 2).sum(-1)


def symmetric_kl(mu_a, logvar_a, mu_b, logvar_b) -> np.ndarray:
    """The symmetric KL (nats) between diagonal Gaussians N(mu_a, exp(logvar_a)) and N(mu_b, ·),
    broadcast over leading dimensions: the distance `LatentIndex` ranks by with metric "symmetric-kl"."""
    t = [torch.as_tensor(np.asarray(v, dtype=np.float64)) for v in (mu_a, logvar_a, mu_b, logvar_b)]
    return _symmetric_kl(*t).numpy()


def nearest_neighbours(mu, query, k: int = 10, *, logvar=None, query_logvar=None, metric: str = "euclidean",
                       exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of codes `mu` (N, D) (log-variances `logvar` for the symmetric KL) to `query`, in
    one call: `LatentIndex(mu, logvar).query(...)` (build the index once to ask many times)."""
    return LatentIndex(mu, logvar).query(query, k, logvar=query_logvar, metric=metric, exclude=exclude)


# --- attribute directions


@dataclass(frozen=True)
class Direction:
    """A named direction in z: moving a code by t·vector makes the image more like `name` for t > 0."""

    name: str  # "more like an 8", "larger"
    vector: np.ndarray  # (D,) float32: the mean code with the attribute minus the mean without
    note: str  # how it was computed, in words


def _strata(confounders: np.ndarray) -> np.ndarray:
    c = np.asarray(confounders)
    if c.ndim == 1:
        c = c[:, None]
    return np.unique(c, axis=0, return_inverse=True)[1].reshape(-1)


def class_direction(codes, positive, negative=None, *, confounders=None) -> np.ndarray:
    """Mean code of the `positive` images minus the mean of the `negative` ones (boolean masks (N,);
    negative defaults to every image not positive): White 2016's attribute vector, (D,) float32.

    `confounders` (N,) or (N, K) labels that go along with the attribute (gender with smiling, shape
    with size): the bias-corrected vector, each side's codes weighted as if replicated until every
    combination of confounding labels has the same share on both sides (its share of the codes of both
    sides together); combinations found on one side only are left out."""
    codes = np.asarray(codes, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool).reshape(-1)
    neg = ~pos if negative is None else np.asarray(negative, dtype=bool).reshape(-1)
    if codes.ndim != 2 or len(pos) != len(codes) or len(neg) != len(codes):
        raise VAEError(f"labels must give one value per code ({len(codes)} codes, {len(pos)} labels)")
    if not pos.any() or not neg.any():
        raise VAEError("a direction needs codes on both sides (with and without the attribute)")
    if confounders is None:
        return (codes[pos].mean(0) - codes[neg].mean(0)).astype(np.float32)
    strata = _strata(confounders)
    if len(strata) != len(codes):
        raise VAEError(f"confounders must give one value per code ({len(codes)} codes, {len(strata)} given)")
    diff, total = np.zeros(codes.shape[1]), 0
    for s in np.unique(strata):
        p, n = pos & (strata == s), neg & (strata == s)
        if p.any() and n.any():
            weight = int(p.sum() + n.sum())
            diff += weight * (codes[p].mean(0) - codes[n].mean(0))
            total += weight
    if total == 0:
        raise VAEError("no confounder value occurs on both sides: the bias-corrected direction is undefined")
    return (diff / total).astype(np.float32)


FACTOR_WORDS = {"scale": "larger", "orientation": "more rotated", "pos_x": "further right", "pos_y": "further down"}
# what a higher value of a sprites factor looks like (pos_y counts from the top edge)
MAX_CONFOUNDER_VALUES = 8  # a factor with at most this many values is corrected for in the others' directions


def _article(name: str) -> str:
    return "an" if name[:1].lower() in "aeiou8" or name in ("11", "18") else "a"


def attribute_directions(codes, *, labels=None, class_names=(), factors=None, factor_names=(),
                         factor_values=()) -> list[Direction]:
    """Named directions from a split's codes (N, D) and what is known about its images: one per class
    of `labels` ("more like an 8": the class against the rest), one per value of a categorical factor,
    and one per numeric factor (its upper half of values against its lower half: "larger"). A factor's
    direction is bias-corrected for the other factors with at most MAX_CONFOUNDER_VALUES values
    (`class_direction`'s confounders), which changes nothing where factors vary independently."""
    codes = np.asarray(codes, dtype=np.float32)
    out: list[Direction] = []
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        for c in np.unique(labels):
            name = class_names[c] if c < len(class_names) else str(c)
            pos = labels == c
            if pos.all():
                continue
            out.append(Direction(f"more like {_article(name)} {name}", class_direction(codes, pos),
                                 f"mean code of the {int(pos.sum()):,} {name} images minus that of the other "
                                 f"{int((~pos).sum()):,}"))
    if factors is not None:
        factors = np.asarray(factors).reshape(len(codes), -1)
        small = [f for f in range(factors.shape[1]) if len(np.unique(factors[:, f])) <= MAX_CONFOUNDER_VALUES]
        for f, fname in enumerate(factor_names):
            values = factor_values[f] if f < len(factor_values) else ()
            column = factors[:, f]
            others = [g for g in small if g != f]
            confounders = factors[:, others] if others else None
            corrected = f" (bias-corrected for {', '.join(factor_names[g] for g in others)})" if others else ""
            if values and isinstance(values[0], str):
                if labels is not None and class_names and tuple(class_names) == tuple(values):
                    continue  # the labels are this factor (sprites' shape): already offered
                for v in np.unique(column):
                    pos = column == v
                    if pos.all():
                        continue
                    vector = class_direction(codes, pos, confounders=confounders)
                    out.append(Direction(f"more {values[v]}", vector, f"{fname} = {values[v]} against the "
                                         f"other values{corrected}"))
                continue
            present = np.unique(column)
            if len(present) < 2:
                continue
            mid = np.median(column)
            low, high = column < mid, column > mid
            if not low.any() or not high.any():
                low, high = column <= mid, column > mid
            if not low.any() or not high.any():
                continue
            vector = class_direction(codes, high, low, confounders=confounders)
            out.append(Direction(FACTOR_WORDS.get(fname, f"more {fname}"), vector,
                                 f"{fname} above its median against below it{corrected}"))
    return out


def move_along(z, direction, amount: float) -> np.ndarray:
    """z + amount·direction: a code moved along an attribute direction (amount 1 adds the whole
    class-mean difference once)."""
    z = np.asarray(z, dtype=np.float32)
    d = np.asarray(direction, dtype=np.float32)
    if z.shape[-1] != d.shape[-1]:
        raise VAEError(f"the direction has {d.shape[-1]} dimensions, z has {z.shape[-1]}")
    return z + np.float32(amount) * d
