"""Handlers of the simulator's API, one module per concern; each exposes ``routes``."""
