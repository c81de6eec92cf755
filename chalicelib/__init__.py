"""NanoGen: everything Chalice deploys beside ``app.py``."""
