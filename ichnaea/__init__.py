"""Ichnaea: a geolocation service (successor of Mozilla Location Service)."""

__version__ = "0.1.0"
