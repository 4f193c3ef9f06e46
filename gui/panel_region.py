"""Region: what will be continued, from the DAW or a file: piano roll and/or waveform, tempo, meter, bars, key."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QComboBox, QDoubleSpinBox, QFileDialog, QPushButton, QWidget

from engine.api import Meter
from gui import theme
from gui.core.models import Models, RegionState
from gui.core.session import Session
from gui.drawing import QtRegionView
from gui.flow import QtFlowRow
from gui.widgets import QtCard, QtElidedLabel, label, set_quietly

METERS = ("4/4", "3/4", "2/4", "6/8", "12/8", "5/4", "7/8", "9/8")
_ORIGINS = {"daw": "FROM DAW", "file": "FILE", "variant": "FROM VARIANT", "job": "FROM HISTORY"}
_TEMPO_SOURCES = {"daw": "DAW", "user": "yours", "name": "file name", "estimate": "estimated", "assumed": "assumed"}
_TEMPO_TIPS = {
    "daw": "the DAW's",
    "user": "yours (typed or tapped)",
    "name": "from the file's name",
    "file": "from the MIDI file",
    "job": "the one its job used",
    "estimate": "estimated from the audio's beat; type or tap yours if the DAW says otherwise",
    "assumed": "assumed (audio files carry no tempo); type or tap yours",
}
FILE_FILTER = "Regions (*.mid *.midi *.wav *.flac *.aif *.aiff);;MIDI (*.mid *.midi);;Audio (*.wav *.flac *.aif *.aiff)"


class QtRegionPanel(QtCard):
    def __init__(self, models: Models, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Region", parent)
        self.session = session
        self.name = QtElidedLabel("No region yet", cap=480)  # a long region name is cut, never widens the window
        self.name.setObjectName("big")
        self.origin = label("", "badge")
        self.open_button = QPushButton("Open file…")
        self.open_button.clicked.connect(self.choose_file)
        self.header.insertWidget(1, self.name)
        self.header.insertWidget(2, self.origin)
        self.play_button = QPushButton("▶ Region")
        self.play_button.setToolTip("Hear the region alone (its audio, or a plain sketch of its notes); Space stops")
        self.play_button.clicked.connect(session.play_region)
        self.header.addWidget(self.open_button)
        self.view = QtRegionView()
        self.body.addWidget(self.view, 1)
        self.tempo = QDoubleSpinBox()
        self.tempo.setRange(10.0, 400.0)
        self.tempo.setDecimals(2)
        self.tempo.setSuffix(" BPM")
        self.tempo.setSpecialValueText("--")  # shown at the minimum: no region yet
        self.tempo.setFont(theme.mono_font(10.5))
        self.tempo.setMinimumWidth(110)
        self.tempo.editingFinished.connect(self._tempo_changed)
        self.tap_button = QPushButton("Tap")
        self.tap_button.setObjectName("small")
        self.tap_button.setToolTip("Tap the beat (three taps or more) to set the region's tempo")
        self.tap_button.clicked.connect(session.tap_tempo)
        self.tempo_source = label("", "dim")
        self.meter = QComboBox()
        for text in METERS:
            self.meter.addItem(text, text)
        self.meter.setFont(theme.mono_font(10.5))
        self.meter.currentIndexChanged.connect(self._meter_changed)
        self.bars = label("--", "value", mono=True, size=10.5)
        self.key = label("--", "value", mono=True, size=10.5)
        self.position = label("--", "value", mono=True, size=10.5)
        self.files = QtElidedLabel()  # a long file name is cut, never widens the window
        self.files.setObjectName("dim")
        self.strip = QtFlowRow(spacing=8, group_spacing=14, spread=False)
        self.strip.add_group(label("Tempo", "dim"), self.tempo, self.tap_button, self.tempo_source)
        for caption, widget in (("Meter", self.meter), ("Bars", self.bars), ("Key", self.key)):
            self.strip.add_group(label(caption, "dim"), widget)
        self.position_caption = label("Starts", "dim")
        self.strip.add_group(self.position_caption, self.position)  # shown for a region from the DAW
        self.strip.add_group(self.play_button)
        self.body.addWidget(self.strip)
        self.header.insertWidget(3, self.files, 1)  # beside the name: the files it was read from
        self._set_enabled(False)
        models.region.subscribe(self.show_region)

    def show_region(self, state: RegionState) -> None:
        region = state.region
        self._set_enabled(region is not None)
        if region is None:
            self.name.set_full_text("No region yet")
            self.origin.setVisible(False)
            self.tempo_source.setVisible(False)
            set_quietly(self.tempo, self.tempo.minimum())
            for text in (self.bars, self.key, self.position):
                text.setText("--")
            self.files.set_full_text("")
            self.view.show_media((), (), 0.0, Meter())
            return
        self.name.set_full_text(state.name)
        self.origin.setText(_ORIGINS.get(state.origin, state.origin.upper()))
        self.origin.setVisible(bool(state.origin))
        set_quietly(self.tempo, region.tempo_bpm)
        source = _TEMPO_SOURCES.get(state.tempo_source, "")
        self.tempo_source.setText(source)
        self.tempo_source.setVisible(bool(source))
        estimate = f" The audio's beat says {state.tempo_estimate:.1f} BPM." if state.tempo_estimate else ""
        self.tempo.setToolTip(f"The region's tempo: {_TEMPO_TIPS.get(state.tempo_source, '')}.{estimate}")
        meter = str(region.meter)
        if self.meter.findData(meter) < 0:
            self.meter.addItem(meter, meter)
        set_quietly(self.meter, meter)
        self.bars.setText(f"{state.bars:g}" if state.bars == int(state.bars) else f"{state.bars:.2f}")
        self.key.setText(state.key or "--")
        bar = region.start_beats / region.meter.quarters_per_bar + 1
        self.position.setText(f"bar {bar:g}" if state.origin == "daw" else "--")
        for widget in (self.position_caption, self.position):
            widget.setVisible(state.origin == "daw")
        names = [p.name for p in (region.midi_path, region.audio_path) if p is not None]
        self.files.set_full_text("  +  ".join(names))
        notes = state.midi.notes if state.midi is not None else ()
        peaks = state.audio.peaks if state.audio is not None else ()
        first_bar = int(round(region.start_beats / region.meter.quarters_per_bar)) + 1
        self.view.show_media(notes, peaks, _display_length(state), region.meter, first_bar)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.tempo, self.meter, self.tap_button, self.play_button):
            widget.setEnabled(enabled)

    def _tempo_changed(self) -> None:
        state = self.session.models.region.value
        if state.region is not None and abs(self.tempo.value() - state.region.tempo_bpm) > 1e-6:
            self.session.set_region_timing(tempo_bpm=self.tempo.value())

    def _meter_changed(self, index: int) -> None:
        text = self.meter.itemData(index)
        if text:
            self.session.set_region_timing(meter=Meter.parse(str(text)))

    def choose_file(self) -> None:
        start = self.session.settings.last_open_dir or str(Path.home())
        names, _ = QFileDialog.getOpenFileNames(self, "Open a region (MIDI and/or audio)", start, FILE_FILTER)
        if names:
            self.session.open_files([Path(n) for n in names])


def _display_length(state: RegionState) -> float:
    """The region's length in quarter notes, rounded up to whole bars for the grid."""
    region = state.region
    if region is None:
        return 0.0
    bar = region.meter.quarters_per_bar
    bars = max(1, -int(-(region.length_beats - 1e-6) // bar))
    return bars * bar
