"""Seeding: every component gets its own stream from the master seed and a stable name.

Streams are derived with ``numpy.random.SeedSequence`` from ``(master_seed, crc32(name))`` so
adding a component or an event never shifts the stream of another, and a parallel run equals a
serial one. No global random state is used anywhere.
"""

from __future__ import annotations

import zlib

import numpy as np


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def seed_sequence(master_seed: int, name: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(master_seed), _name_key(name)])


def rng(master_seed: int, name: str) -> np.random.Generator:
    """A fresh Generator for component ``name`` (e.g. ``"traffic.noise"``)."""
    return np.random.Generator(np.random.PCG64(seed_sequence(master_seed, name)))


def derive_int_seed(master_seed: int, name: str) -> int:
    """A 31-bit integer for libraries that take ``random_state`` (scikit-learn)."""
    return int(seed_sequence(master_seed, name).generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)
