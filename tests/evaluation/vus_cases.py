"""VUS-PR test cases shared by test_ts_metrics.py (labels, scores, largest buffer)."""

import numpy as np


def CASES() -> dict[str, tuple[np.ndarray, np.ndarray, int]]:  # noqa: N802
    rng = np.random.default_rng(0)
    n = 300
    lab = np.zeros(n)
    lab[100:110] = 1
    lab[200:203] = 1
    edges = np.zeros(n)
    edges[0:5] = 1
    edges[290:300] = 1
    close = np.zeros(n)
    close[50:52] = 1
    close[60:62] = 1
    early = np.zeros(n)
    early[95:100] = 1
    return {
        "noisy_separable": (lab, rng.random(n) + 2 * lab, 20),
        "random": (lab, rng.random(n), 20),
        "binary_before_range": (lab, early, 20),
        "ties": (lab, np.round(rng.random(n) * 4) / 4 + lab, 10),
        "ranges_at_edges": (edges, rng.random(n) + 0.5 * edges, 30),
        "ranges_merge": (close, rng.random(n) + close, 20),
        "weak_signal": (lab, rng.random(n) + 0.3 * lab, 40),
        "no_buffer": (lab, rng.random(n) + 0.3 * lab, 0),
    }
