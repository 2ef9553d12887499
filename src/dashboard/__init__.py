"""Streamlit dashboard over run directories and experiments (``streamlit run app.py``)."""
