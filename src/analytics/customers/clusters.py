"""KMeans clusters on log-scaled, standardized RFM, named from their centroids.

Names come from what a centroid looks like (recent or lapsed, high or low value), never from the
cluster index, and the rows are put in customer-id order before fitting, so shuffling the input
changes neither the clusters nor their names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .config import ClustersConfig

FEATURES = ("recency_days", "frequency", "monetary")


@dataclass
class ClusterResult:
    labels: pd.Series            # cluster name per customer_id
    centroids: pd.DataFrame      # one row per cluster: name, size, z-centroids, centroids in units
    k: int
    silhouette: dict[int, float]  # k -> silhouette (only the k tried)


def _features(rfm: pd.DataFrame) -> np.ndarray:
    """(n, 3) log1p of recency days, frequency and (non-negative) monetary."""
    x = rfm[list(FEATURES)].to_numpy(dtype=float)
    x[:, 2] = np.clip(x[:, 2], 0, None)
    return np.log1p(x)


def _n_distinct_rows(a: np.ndarray) -> int:
    """``len(np.unique(a, axis=0))`` by one lexsort (np.unique on rows is ~10x slower)."""
    if len(a) == 0:
        return 0
    s = a[np.lexsort(a.T[::-1])]
    return 1 + int(np.count_nonzero((s[1:] != s[:-1]).any(axis=1)))


def _silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a square distance matrix (``silhouette_score(dist, labels,
    metric="precomputed")``): the per-cluster distance sums of every point come from one matrix
    product instead of sklearn's chunked bincounts (~5x faster on the 3 000-row sample; equal to
    ~1e-12, far below the 4 decimals the choice of k reads)."""
    return _silhouettes(dist, [labels])[0]


def _onehot(labels: np.ndarray) -> np.ndarray:
    onehot = np.zeros((len(labels), int(labels.max()) + 1))
    onehot[np.arange(len(labels)), labels] = 1.0
    return onehot


def _silhouettes(dist: np.ndarray, labellings: list[np.ndarray]) -> list[float]:
    """``_silhouette`` of each labelling, the distance sums of all of them from one matrix
    product: the 72 MB distance matrix of the sample is read once instead of once per k (the
    same floats: each column of the product is summed the same way; ~3x faster)."""
    onehots = [_onehot(lab) for lab in labellings]
    all_sums = dist @ np.concatenate(onehots, axis=1)
    bounds = np.cumsum([0] + [o.shape[1] for o in onehots])
    return [_silhouette_from(all_sums[:, bounds[i]:bounds[i + 1]], onehots[i], lab)
            for i, lab in enumerate(labellings)]


def _silhouette_from(sums: np.ndarray, onehot: np.ndarray, labels: np.ndarray) -> float:
    """The mean silhouette from ``sums`` = (distance of each point to each cluster, summed)."""
    sizes = onehot.sum(axis=0)
    own = sizes[labels]
    a = sums[np.arange(len(labels)), labels] / np.maximum(own - 1, 1)
    mean_other = sums / sizes[None, :]
    mean_other[np.arange(len(labels)), labels] = np.inf
    b = mean_other.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (b - a) / np.maximum(a, b)
    s = np.where(own > 1, np.nan_to_num(s), 0.0)           # a singleton's silhouette is 0
    return float(s.mean())


def name_clusters(z_centroids: np.ndarray) -> list[str]:
    """Names for centroids given in standardized (log) space, columns as ``FEATURES``.

    Recency: z <= -0.5 "Active", >= 0.5 "Lapsed", else "Cooling". Value (mean z of frequency and
    monetary): >= 0.5 "high-value", <= -0.5 "low-value", else "mid-value". Equal names get a rank
    suffix by value score (best first), which depends on the centroids only.
    """
    z = np.asarray(z_centroids, dtype=float)
    rec = np.where(z[:, 0] <= -0.5, "Active", np.where(z[:, 0] >= 0.5, "Lapsed", "Cooling"))
    value = (z[:, 1] + z[:, 2]) / 2
    val = np.where(value >= 0.5, "high-value", np.where(value <= -0.5, "low-value", "mid-value"))
    base = [f"{a} {b}" for a, b in zip(rec, val, strict=True)]
    score = value - z[:, 0]
    names = list(base)
    for b in set(base):
        idx = [i for i, n in enumerate(base) if n == b]
        if len(idx) > 1:
            # ties on the score are broken by the centroid coordinates, never by index
            order = sorted(idx, key=lambda i: (-score[i], tuple(z[i])))
            for rank, i in enumerate(order, start=1):
                names[i] = f"{b} {rank}"
    return names


def fit_clusters(rfm: pd.DataFrame, cfg: ClustersConfig, random_state: int) -> ClusterResult:
    """Fit KMeans (k fixed or chosen by silhouette) and name the clusters from their centroids."""
    # KMeans on 3 features is tiny work; OpenMP threads on shared cores made it ~30x slower
    with threadpool_limits(limits=1):
        return _fit_clusters(rfm, cfg, random_state)


def _fit_clusters(rfm: pd.DataFrame, cfg: ClustersConfig, random_state: int) -> ClusterResult:
    if not rfm["customer_id"].is_monotonic_increasing:  # the stage's table already is sorted
        rfm = rfm.sort_values("customer_id", kind="stable")
    rfm = rfm.reset_index(drop=True)
    n = len(rfm)
    scaler = StandardScaler()
    x = scaler.fit_transform(_features(rfm))
    # the count matters only up to max(k_max, k): a prefix of the rows usually shows that many
    enough = max(cfg.k_max, cfg.k or 0)
    n_distinct = _n_distinct_rows(x[: 50 * (enough + 1)].round(9))
    if n_distinct <= enough:
        n_distinct = _n_distinct_rows(x.round(9))
    k_hi = min(cfg.k_max, n_distinct - 1, n - 1)
    if cfg.k is not None:
        candidates = [min(cfg.k, max(n_distinct, 1))]
    else:
        candidates = list(range(cfg.k_min, k_hi + 1)) or [max(1, min(cfg.k_min, n_distinct))]
    sil: dict[int, float] = {}
    if len(candidates) > 1:
        # choose k on a fixed sample (silhouette is O(n^2)); the final fit uses every customer
        sample = np.random.default_rng(random_state).permutation(n)[:cfg.silhouette_sample]
        xs = x[np.sort(sample)]
        xs_distinct = _n_distinct_rows(xs.round(9))
        dist = pairwise_distances(xs)   # once for every k (silhouette_score would redo it per k)
        fitted = [k for k in candidates if k < xs_distinct]
        labellings = [
            KMeans(n_clusters=k, n_init=cfg.n_init, random_state=random_state).fit_predict(xs)
            for k in fitted
        ]
        if fitted:
            sil = {k: round(v, 4) for k, v in zip(fitted, _silhouettes(dist, labellings),
                                                   strict=True)}
        k = max(sil, key=lambda kk: (sil[kk], -kk)) if sil else candidates[0]
    else:
        k = candidates[0]
    # the final fit sees at most fit_sample customers (every j-th in id order); all are labelled
    fit_rows = x[:: max(1, -(-n // cfg.fit_sample))]
    km = KMeans(n_clusters=k, n_init=cfg.n_init, random_state=random_state).fit(fit_rows)
    assigned = km.predict(x)
    names = name_clusters(km.cluster_centers_)
    units = np.expm1(scaler.inverse_transform(km.cluster_centers_))
    sizes = np.bincount(assigned, minlength=k)
    centroids = pd.DataFrame({
        "cluster": names,
        "customers": sizes,
        "z_recency": km.cluster_centers_[:, 0], "z_frequency": km.cluster_centers_[:, 1],
        "z_monetary": km.cluster_centers_[:, 2],
        "recency_days": units[:, 0], "frequency": units[:, 1], "monetary": units[:, 2],
    }).sort_values("cluster", kind="stable").reset_index(drop=True)
    labels = pd.Series(
        np.asarray(names, dtype=object)[assigned],
        index=rfm["customer_id"].to_numpy(),
        name="cluster",
    )
    return ClusterResult(labels=labels, centroids=centroids.round(4), k=k, silhouette=sil)
