"""Analytics layer: reads a data directory's observable tables (never the simulator, never
``truth/``), computes KPIs, runs detectors, votes, explains; ``outputs`` writes the run directory.
Scoring against the truth is ``evaluation``'s (tests/test_truth_wall.py)."""
