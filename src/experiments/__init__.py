"""Experiments: parameter sweeps across seeds, detectability curves and a multi-seed CI gate.

``config`` (experiment files) → ``grid`` (settings × seeds → cells) → ``runner`` (serial, local
process pool or Dask; resumable) running ``cell`` (generate, cached by ``cache`` → analyse) →
``results`` (results.parquet, leaderboard.csv) · ``detectability`` · ``gate`` · ``plots``.
``experiment.run`` ties them together; ``run_experiment.py`` is the CLI.
"""
