"""Audio capture of a DAW's output on its bar grid, started and timed by the DAW's MIDI clock.

- :mod:`~bridge.capture.session`: the timing model, the stamps of clock and audio, the cut to whole bars;
- :mod:`~bridge.capture.tempo`: the tempo map fitted to the clock's frames (numpy, no threads);
- :mod:`~bridge.capture.options`: a take's options and result, the clock and audio it reads, where its WAV goes;
- :mod:`~bridge.capture.take`: one take, end to end (``segue capture``);
- :mod:`~bridge.capture.controller`: takes on a thread for the bridge (``/segue/capture/arm``).
"""
