"""Analytics layer: reads a data directory (never the simulator), computes KPIs, runs detectors,
votes, explains and scores. Only ``scoring`` (and the oracle detector) read ``truth/``."""
