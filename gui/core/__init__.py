"""The Qt-free half of the desktop app: the Session (the bridge service, the OSC link, the MIDI clock, the engine
and the player behind the window), the panel models it updates, audition, settings, job catalog and library.
Nothing here imports Qt (pyproject.toml's import contracts check it); the views in :mod:`gui` observe these models
through :mod:`gui.adapters`."""
