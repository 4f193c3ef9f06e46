"""Segue's desktop app (PyQt6). Not built yet: see the open issue for the GUI."""
