"""Customer intelligence: RFM, clusters, churn, cohorts, CLV, At-Risk monitoring, actions."""
