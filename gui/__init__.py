"""Segue's desktop app (PyQt6): `segue gui`. Views and thin Qt adapters over the bridge's service (see docs/gui.md)."""
