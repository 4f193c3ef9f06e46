"""The producer's controls in the Generate panel: a Similarity slider (close <-> free), MIDI density, hold notes and
end on the tonic, and (beside "Audio region as") keep the opening bar. Each has an "auto" state, the engine's
measured default (``None`` in :class:`engine.api.GenerationParams`), which is where they start.

Widgets only: the form (:class:`gui.core.models.GenerateForm`) holds the values, :meth:`Session.update_form` changes
them, :class:`engine.api.GenerationParams` checks them when a job is made.
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QCheckBox, QDoubleSpinBox, QGridLayout, QPushButton, QSlider, QVBoxLayout, QWidget

from engine.api import MAX_DENSITY
from gui.core.models import GenerateForm
from gui.widgets import field, label, row, set_quietly

SLIDER_STEPS = 100  # the slider's positions: 0 = close (similarity 1.0) ... 100 = free (similarity 0.0)
AUTO = "auto"
_DENSITY_STEP = 0.25


def similarity_of(position: int) -> float:
    """The slider's position (close on the left) as a similarity (1 = close)."""
    return round(1.0 - position / SLIDER_STEPS, 2)


def position_of(similarity: float) -> int:
    return round((1.0 - similarity) * SLIDER_STEPS)


class QtTriCheck(QCheckBox):
    """A check box with three states: auto (partly checked: the engine's default), on, off; a click goes
    auto -> on -> off -> auto. :attr:`value` is None, True or False."""

    def __init__(self, text: str, what: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.what = what
        self.setTristate(True)
        self.set_value(None)

    @property
    def value(self) -> bool | None:
        state = self.checkState()
        return None if state == Qt.CheckState.PartiallyChecked else state == Qt.CheckState.Checked

    def set_value(self, value: bool | None) -> None:
        states = {None: Qt.CheckState.PartiallyChecked, True: Qt.CheckState.Checked, False: Qt.CheckState.Unchecked}
        self.setCheckState(states[value])
        shown = {None: "auto (the engine's measured default)", True: "on", False: "off"}[value]
        self.setToolTip(f"{self.what}\nNow: {shown}. A click goes auto → on → off → auto.")

    def nextCheckState(self) -> None:
        following = {None: True, True: False, False: None}[self.value]
        self.set_value(following)


class QtControls:
    """Builds the widgets, lays out the similarity and MIDI rows (:attr:`box`) and keeps :attr:`keep_opening`
    for the panel to place beside "Audio region as"."""

    def __init__(self, update: Callable[..., None]) -> None:
        self.update = update
        self.box = QWidget()
        self.similarity = QSlider(Qt.Orientation.Horizontal)
        self.similarity.setRange(0, SLIDER_STEPS)
        self.similarity.setPageStep(10)
        self.similarity.setValue(SLIDER_STEPS // 2)  # where auto leaves it until the producer moves it
        self.similarity.setToolTip(
            "How close the variants stay to the region: left = close (its own material, little change), right = "
            "free (recombined, new ideas). Auto: the engine's measured default. Audio and MIDI."
        )
        self.similarity_value = label(AUTO, "dim", mono=True, size=8.5)
        self.similarity_auto = QPushButton("Auto")
        self.similarity_auto.setCheckable(True)
        self.similarity_auto.setObjectName("small")
        self.similarity_auto.setToolTip("Let the engine choose (its measured default); move the slider to choose")
        self.density = QDoubleSpinBox()
        self.density.setRange(0.0, MAX_DENSITY)  # 0.0 shows "auto"; GenerationParams refuses 0 < x < 0.25
        self.density.setSingleStep(_DENSITY_STEP)
        self.density.setDecimals(2)
        self.density.setSpecialValueText(AUTO)
        self.density.setSuffix(" ×")
        self.density.setToolTip(
            "MIDI: notes per bar as a factor of the region's own (1 = as dense as the region, 0.25..4); "
            "auto: the engine's measured default"
        )
        self.hold_notes = QtTriCheck("Hold notes", "MIDI: keep the region's note lengths per part (held chords stay)")
        self.end_on_tonic = QtTriCheck("End on tonic", "MIDI: end on the region's tonic (a cadence in the last bar)")
        self.keep_opening = QtTriCheck("Keep opening", "Audio: open the continuation with the region's first bar")
        layout = QGridLayout(self.box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setHorizontalSpacing(10)
        layout.setVerticalSpacing(3)
        layout.addLayout(row(label("Similarity", "dim"), 1, self.similarity_value), 0, 0, 1, 2)
        close, free = label("close", "dim"), label("free", "dim")
        layout.addLayout(row(close, self.similarity, free, self.similarity_auto, spacing=6), 1, 0, 1, 2)
        checks = QVBoxLayout()
        checks.setSpacing(2)
        checks.addStretch(1)
        checks.addWidget(self.hold_notes)
        checks.addWidget(self.end_on_tonic)
        layout.addLayout(field("Density (MIDI)", self.density), 2, 0)
        layout.addLayout(checks, 2, 1)
        layout.setColumnStretch(0, 1)
        layout.setColumnStretch(1, 1)
        layout.setContentsMargins(0, 2, 0, 0)
        # widgets -> model
        self.similarity.valueChanged.connect(lambda v: update(similarity=similarity_of(v)))
        self.similarity_auto.toggled.connect(self._auto_toggled)
        self.density.valueChanged.connect(lambda v: update(density=round(v, 2) if v > 0 else None))
        self.hold_notes.stateChanged.connect(lambda _: update(hold_notes=self.hold_notes.value))
        self.end_on_tonic.stateChanged.connect(lambda _: update(end_on_tonic=self.end_on_tonic.value))
        self.keep_opening.stateChanged.connect(lambda _: update(keep_opening=self.keep_opening.value))

    def show_form(self, form: GenerateForm) -> None:
        """Model -> widgets, without firing their signals."""
        auto = form.similarity is None
        if not auto:  # auto leaves the slider where it was
            blocked = self.similarity.blockSignals(True)
            self.similarity.setValue(position_of(form.similarity))  # type: ignore[arg-type]
            self.similarity.blockSignals(blocked)
        set_quietly(self.similarity_auto, auto)
        if self.similarity.objectName() != ("auto" if auto else ""):  # auto: a grey handle (theme.py)
            self.similarity.setObjectName("auto" if auto else "")
            style = self.similarity.style()
            if style is not None:
                style.unpolish(self.similarity)
                style.polish(self.similarity)
        self.similarity_value.setText(AUTO if auto else f"{form.similarity:.2f}")
        set_quietly(self.density, 0.0 if form.density is None else form.density)
        for check, value in (
            (self.hold_notes, form.hold_notes),
            (self.end_on_tonic, form.end_on_tonic),
            (self.keep_opening, form.keep_opening),
        ):
            blocked = check.blockSignals(True)
            check.set_value(value)
            check.blockSignals(blocked)

    def _auto_toggled(self, checked: bool) -> None:
        if checked:
            self.update(similarity=None)
        else:
            self.update(similarity=similarity_of(self.similarity.value()))
