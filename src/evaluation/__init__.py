"""Evaluation: everything that knows the injected truth.

Scoring of incidents (``scoring``), of insights (``insight_scoring``), the typed truth and the
oracle's access to it (``truth``), and the evaluation stages added to the analysis run
(``pipeline``). The wall: modules under ``src/analytics`` never import this package — the
dependency points one way, evaluation → analytics (enforced by tests/test_truth_wall.py).
"""
