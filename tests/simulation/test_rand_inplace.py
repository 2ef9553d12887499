"""rand.mix64 / uniforms / child_keys computed in place give the bits of the plain formulas
(arrays and scalars): every per-order draw of every world depends on them."""

from __future__ import annotations

import numpy as np

from simulation import rand

G, M1, M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(
    0x94D049BB133111EB)


def _mix64(x):
    with np.errstate(over="ignore"):
        z = np.asarray(x, np.uint64) + G
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
        return z ^ (z >> np.uint64(31))


def test_in_place_mixing_equals_the_formula():
    x = np.random.default_rng(3).integers(0, 2**63, 50_000, dtype=np.int64).astype(np.uint64)
    x[:4] = [0, 2**64 - 1, 1, 2**63]
    assert np.array_equal(rand.mix64(x), _mix64(x))
    for v in (np.uint64(0), np.uint64(2**64 - 1), 12345):
        assert rand.mix64(v) == _mix64(v)
    with np.errstate(over="ignore"):
        for stream in (0, 1, 20, 2**40):
            bits = _mix64(x + np.uint64(stream) * G) >> np.uint64(11)
            expected = (bits.astype(np.float64) + 0.5) * (1.0 / float(1 << 53))
            assert np.array_equal(rand.uniforms(x, stream), expected)
        assert np.array_equal(rand.child_keys(x, np.arange(x.size), 0x11E),
                              _mix64(x ^ _mix64(np.arange(x.size, dtype=np.uint64) * G
                                                + np.uint64(0x11E))))
