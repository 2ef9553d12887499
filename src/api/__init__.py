"""HTTP API over run and experiment directories (FastAPI); see ``api.app.create_app``."""
