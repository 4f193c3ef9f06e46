"""Generate: mode, bars, variants, the producer's controls (gui/panel_controls.py: similarity, density, hold notes,
end on the tonic, keep the opening), temperature, top-p, seed, model, the parts to accompany with and what an audio
region becomes; Generate and Cancel; a progress bar per job."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QIntValidator
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLineEdit,
    QListView,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.api import MAX_BARS, MAX_VARIANTS
from gui import theme
from gui.core.models import EngineView, GenerateForm, JobRow, JobsState, Models, known_parts
from gui.core.session import Session
from gui.panel_controls import QtControls
from gui.widgets import QtCard, QtElidedLabel, QtFormScroll, QtRangeSpinBox, field, label, row, set_quietly

_MODES = {"continue": "Continue", "accompany": "Accompany"}
_OUTPUTS = {"auto": "Auto", "audio": "Audio", "midi": "MIDI", "both": "Audio + MIDI"}
_PART_COLUMNS = 3
JOB_ROWS_SHOWN = 3  # the latest jobs with their progress; the History lists them all
_STATUS_TEXT = {"running": "", "done": "done", "failed": "failed", "cancelled": "cancelled", "queued": "queued"}


class QtJobRow(QWidget):
    """One job: name, status and a progress bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setSpacing(3)
        self.name = QtElidedLabel()  # a long job name is cut, never widens the window
        self.name.setObjectName("value")
        self.status = label("", "dim", mono=True, size=8.5)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setFixedHeight(8)
        self.message = QtElidedLabel()
        self.message.setObjectName("dim")
        top = row(self.name, self.status)
        top.setStretchFactor(self.name, 1)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)

    def show_row(self, job: JobRow) -> None:
        self.name.set_full_text(_short_job(job.job_id))
        self.name.setToolTip(job.job_id)
        percent = f"{job.fraction * 100:3.0f}%"
        self.status.setText(percent if job.status == "running" else _STATUS_TEXT.get(job.status, job.status))
        self.bar.setValue(int(job.fraction * 1000))
        failed = job.status in ("failed", "cancelled")
        self.message.set_full_text(job.message if failed or job.status == "running" else "")
        self.message.setStyleSheet(f"color: {theme.BAD};" if job.status == "failed" else "")


def _short_job(job_id: str) -> str:
    """``20261122-015119-pop-100bpm-4-4-continue-4e33`` -> ``01:51:19 pop-100bpm-4-4``."""
    parts = job_id.split("-")
    if len(parts) >= 4 and len(parts[1]) == 6:
        when = f"{parts[1][:2]}:{parts[1][2:4]}:{parts[1][4:]}"
        return f"{when}  {'-'.join(parts[2:-2])}"
    return job_id


class QtGeneratePanel(QtCard):
    def __init__(self, models: Models, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Generate", parent)
        self.session = session
        self._make_inputs()
        self._lay_out_form(session)
        self._add_buttons_and_jobs(session)
        self._connect(models, session)

    def _make_inputs(self) -> None:
        """The form's inputs: mode, bars, variants, temperature, top-p, seed, model, output, parts."""
        self.mode = QComboBox()
        for mode, text in _MODES.items():
            self.mode.addItem(text, mode)
        self.bars = QtRangeSpinBox(1, MAX_BARS, lambda typed, kept: self._clamped("Bars", typed, kept))
        self.bars.setToolTip(f"How many bars to continue by: 1 to {MAX_BARS}")
        self.variants = QtRangeSpinBox(1, MAX_VARIANTS, lambda typed, kept: self._clamped("Variants", typed, kept))
        self.variants.setToolTip(f"How many variants to make at once: 1 to {MAX_VARIANTS}")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.05, 3.0)
        self.temperature.setSingleStep(0.05)
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.01, 1.0)
        self.top_p.setSingleStep(0.01)
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("random")
        self.seed.setValidator(QIntValidator(0, 2**31 - 1))
        self.dice = QPushButton("New")
        self.dice.setToolTip("Pick a new seed (empty: a random one per job)")
        self.seed.setToolTip("Variants get seed, seed+1, ...: the same seed makes the same variants again")
        self.model = QComboBox()
        self.model.setToolTip("default: the engine picks the model that fits the region")
        self.output = QComboBox()
        for output, text in _OUTPUTS.items():
            self.output.addItem(text, output)
        self.output.setToolTip(
            "What an audio region becomes: Audio (the audio engine continues the sound), MIDI (transcribed, then "
            "notes, stems and a rendered mix), both, or Auto (audio when an audio model is installed). "
            "MIDI regions are always MIDI jobs."
        )
        self.parts_box = QWidget()
        parts_layout = QVBoxLayout(self.parts_box)
        parts_layout.setContentsMargins(0, 0, 0, 0)
        parts_layout.setSpacing(3)
        self.parts_label = label("Parts to write (none = the model's default)", "dim")
        parts_layout.addWidget(self.parts_label)
        self.parts_grid = QGridLayout()
        self.parts_grid.setHorizontalSpacing(4)
        self.parts_grid.setVerticalSpacing(4)
        parts_layout.addLayout(self.parts_grid)
        self.part_buttons: dict[str, QPushButton] = {}
        for widget in (self.bars, self.variants, self.temperature, self.top_p, self.seed):
            widget.setFont(theme.mono_font(10.5))

    def _lay_out_form(self, session: Session) -> None:
        """The inputs and the producer's controls in a two-column grid that scrolls in a short window."""
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        grid.addLayout(field("Mode", self.mode), 0, 0)
        grid.addLayout(field("Model", self.model), 0, 1)
        grid.addLayout(field(f"Bars (1–{MAX_BARS})", self.bars), 1, 0)
        grid.addLayout(field(f"Variants (1–{MAX_VARIANTS})", self.variants), 1, 1)
        self.controls = QtControls(session.update_form)
        grid.addWidget(self.controls.box, 2, 0, 1, 2)
        grid.addLayout(field("Temperature", self.temperature), 3, 0)
        grid.addLayout(field("Top-p", self.top_p), 3, 1)
        seed_row = row(self.seed, self.dice, spacing=4)
        seed_box = QVBoxLayout()
        seed_box.setSpacing(3)
        seed_box.addWidget(label("Seed (empty = random)", "dim"))
        seed_box.addLayout(seed_row)
        grid.addLayout(seed_box, 4, 0, 1, 2)
        grid.addWidget(self.parts_box, 5, 0, 1, 2)
        grid.addLayout(field("Audio region as", self.output), 6, 0)
        grid.addWidget(self.controls.keep_opening, 6, 1, Qt.AlignmentFlag.AlignBottom)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        grid.setContentsMargins(0, 0, 0, 0)
        form = QWidget()
        form.setLayout(grid)
        self.form_scroll = QtFormScroll(form)  # scrolls only in a short window; Generate stays in view
        self.body.addWidget(self.form_scroll)

    def _add_buttons_and_jobs(self, session: Session) -> None:
        """Generate and Cancel, the waiting line, and the list of this session's jobs."""
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("danger")
        self.body.addSpacing(4)
        self.body.addLayout(row(self.generate_button, self.cancel_button))
        self.waiting = label("", "dim")
        self.body.addWidget(self.waiting)
        self.job_box = QVBoxLayout()
        self.job_box.setSpacing(6)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("small")
        self.clear_button.clicked.connect(session.clear_jobs)
        self.clear_button.hide()
        self.jobs_caption = label("Jobs", "dim")
        self.jobs_caption.hide()
        self.body.addLayout(row(self.jobs_caption, 1, self.clear_button))
        self.body.addLayout(self.job_box)
        self.body.addStretch(1)
        self.job_rows: list[QtJobRow] = []

    def _connect(self, models: Models, session: Session) -> None:
        """The widgets' edits to the session, the models' changes to the widgets."""
        # widgets -> model
        self.mode.currentIndexChanged.connect(lambda _: session.update_form(mode=str(self.mode.currentData())))
        self.bars.valueChanged.connect(lambda v: session.update_form(bars=v))
        self.variants.valueChanged.connect(lambda v: session.update_form(variants=v))
        self.temperature.valueChanged.connect(lambda v: session.update_form(temperature=round(v, 3)))
        self.top_p.valueChanged.connect(lambda v: session.update_form(top_p=round(v, 3)))
        self.seed.textEdited.connect(self._seed_edited)
        self.dice.clicked.connect(session.new_seed)
        self.model.currentIndexChanged.connect(self._model_chosen)
        self.output.currentIndexChanged.connect(lambda _: session.update_form(output=str(self.output.currentData())))
        self.generate_button.clicked.connect(lambda: session.generate())
        self.cancel_button.clicked.connect(lambda: session.cancel())
        # model -> widgets
        models.engine.subscribe(self.show_engine)
        models.form.subscribe(self.show_form)
        models.jobs.subscribe(self.show_jobs)

    def show_form(self, form: GenerateForm) -> None:
        set_quietly(self.mode, form.mode)
        set_quietly(self.bars, form.bars)
        set_quietly(self.variants, form.variants)
        set_quietly(self.temperature, form.temperature)
        set_quietly(self.top_p, form.top_p)
        set_quietly(self.seed, "" if form.seed is None else str(form.seed))
        if self.model.findData(form.model) < 0:
            self.model.addItem(form.model, form.model)
        set_quietly(self.model, form.model)
        set_quietly(self.output, form.output)
        self.controls.show_form(form)
        accompany = form.mode == "accompany"
        self.bars.setEnabled(not accompany)
        self.bars.setToolTip("Accompany writes under the region's own bars" if accompany else "")
        self._show_parts(form, self.session.models.engine.value)

    def show_engine(self, engine: EngineView) -> None:
        names = ["default", *[m.name for m in engine.models]]
        current = self.session.models.form.value.model
        if current not in names:
            names.append(current)
        blocked = self.model.blockSignals(True)
        self.model.clear()
        for name in names:
            self.model.addItem(name, name)
        self.model.blockSignals(blocked)
        set_quietly(self.model, current)
        self._update_modes(engine)
        self._show_parts(self.session.models.form.value, engine)

    def _show_parts(self, form: GenerateForm, engine: EngineView) -> None:
        """A checkable button per part the model writes (and any asked for that it does not list), shown when
        accompanying."""
        self.parts_box.setVisible(form.mode == "accompany")
        offered = known_parts(engine.models, form.model)
        names = [*offered, *[p for p in form.parts if p not in offered]]
        if list(self.part_buttons) != names:
            for button in self.part_buttons.values():
                self.parts_grid.removeWidget(button)
                button.deleteLater()
            self.part_buttons = {}
            for index, name in enumerate(names):
                button = QPushButton(name)
                button.setCheckable(True)
                button.toggled.connect(lambda _, part=name: self._part_toggled(part))
                self.parts_grid.addWidget(button, index // _PART_COLUMNS, index % _PART_COLUMNS)
                self.part_buttons[name] = button
        listed = any("accompany" in m.modes and m.parts for m in engine.models)
        for name, button in self.part_buttons.items():
            set_quietly(button, name in form.parts)
            known = name in offered
            button.setToolTip(
                f"Write a {name} part under the region"
                if known
                else f"{form.model} does not list {name}; generating will say which parts it knows"
            )
        self.parts_label.setToolTip(
            "" if listed else "The engine has not said which parts its models write; these are the usual ones"
        )

    def _part_toggled(self, part: str) -> None:
        """The form's parts in the order the buttons show them (a part unchecked goes, one checked comes)."""
        chosen = tuple(name for name, button in self.part_buttons.items() if button.isChecked())
        self.session.update_form(parts=chosen)

    def _update_modes(self, engine: EngineView) -> None:
        """Accompany only when a model offers it."""
        offered = {mode for m in engine.models for mode in m.modes} or {"continue"}
        index = self.mode.findData("accompany")
        view = self.mode.view()
        if index >= 0 and isinstance(view, QListView):
            view.setRowHidden(index, "accompany" not in offered)

    def show_jobs(self, jobs: JobsState) -> None:
        """The latest :data:`JOB_ROWS_SHOWN` jobs, newest first (the History has them all); Clear drops the finished
        ones."""
        shown = tuple(reversed(jobs.rows))[:JOB_ROWS_SHOWN]
        while len(self.job_rows) < len(shown):
            widget = QtJobRow()
            self.job_rows.append(widget)
            self.job_box.addWidget(widget)
        for widget, job in zip(self.job_rows, shown, strict=False):
            widget.show_row(job)
            widget.setVisible(True)
        for widget in self.job_rows[len(shown) :]:
            widget.setVisible(False)
        self.jobs_caption.setVisible(bool(jobs.rows))
        finished = sum(1 for r in jobs.rows if r.status != "running")
        self.clear_button.setVisible(finished > 0)
        self.clear_button.setToolTip(f"Clear the {finished} finished job(s) from this list (the History keeps them)")
        self.waiting.setText(f"{jobs.waiting} job(s) waiting to start" if jobs.waiting else "")
        self.waiting.setVisible(bool(jobs.waiting))
        self.cancel_button.setEnabled(bool(jobs.running) or jobs.waiting > 0)

    def _clamped(self, what: str, typed: int, kept: int) -> None:
        high = MAX_BARS if what == "Bars" else MAX_VARIANTS
        self.session.say("info", f"{what} go from 1 to {high}: {typed} became {kept}.")

    def _seed_edited(self, text: str) -> None:
        self.session.update_form(seed=int(text) if text.strip().isdigit() else None)

    def _model_chosen(self, index: int) -> None:
        name = self.model.itemData(index)
        if name:
            self.session.update_form(model=str(name))
