"""Variants: a list with waveform and piano-roll thumbnails; play/stop, loop, region then variant, A/B, star;
regenerate with the same seed, continue from a variant, Place in DAW; drag a variant, its MIDI or a stem out as
file URLs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import (
    QModelIndex,
    QPoint,
    Qt,
    QUrl,
)
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QInputDialog,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QWidget,
)

from gui.core.models import Models, VariantItem, VariantsState, plays_together
from gui.core.session import Session
from gui.flow import QtFlowRow
from gui.variant_list import ROW_HEIGHT, QtVariantDelegate, QtVariantListModel
from gui.variant_list import playhead_fraction as playhead_fraction  # where the tests look for it
from gui.widgets import QtCard, QtDragChip, QtElidedLabel, label, row, set_quietly


class QtVariantsPanel(QtCard):
    def __init__(self, models: Models, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Variants", parent)
        self.session = session
        self._make_list(session)
        self._make_transport(session)
        self._make_actions(session)
        self._make_bottom_row()
        models.variants.subscribe(self.show_variants)
        models.link.subscribe(lambda _: self._show_place())
        models.playhead.subscribe(self.show_playhead)

    def _make_list(self, session: Session) -> None:
        """The job's name in the header, and the list of its variants (drag, double-click, context menu)."""
        self.job_label = QtElidedLabel()  # a long job name is cut, never widens the window; all of it in the tooltip
        self.job_label.setObjectName("dim")
        self.header.insertWidget(1, self.job_label, 10)
        self.list_model = QtVariantListModel(session, self)  # owned by the panel: deleted after the view
        self.list = QListView()
        self.list.setModel(self.list_model)
        self.list.setItemDelegate(QtVariantDelegate(self.list_model, self))
        self.list.setDragEnabled(True)
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.list.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setSpacing(2)
        self.list.setMinimumHeight(ROW_HEIGHT + 10)  # one row in a 640 px high window; more as it grows
        selection = self.list.selectionModel()
        if selection is not None:
            selection.currentChanged.connect(self._current_changed)
        self.list.doubleClicked.connect(lambda index: session.play(self._id_at(index)))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._show_row_menu)
        self.empty = QtElidedLabel("Generated variants appear here.", cap=260)
        self.empty.setObjectName("dim")
        self.header.insertWidget(2, self.empty)
        self.body.addWidget(self.list, 1)

    def _make_transport(self, session: Session) -> None:
        """Play, Stop, Loop, Region first, the A/B slots and Star."""
        self.play_button = QPushButton("▶ Play")
        self.stop_button = QPushButton("■ Stop")
        self.loop_button = _toggle("⟲ Loop")
        self.region_first_button = _toggle("Region first")
        self.region_first_button.setToolTip("Play the region, then the variant (full.wav)")
        self.slot_a = QComboBox()
        self.slot_b = QComboBox()
        self.ab_button = QPushButton("A ⇄ B")
        self.star_button = QPushButton("☆ Star")
        self.play_button.clicked.connect(lambda: session.play())
        self.stop_button.clicked.connect(session.stop)
        self.loop_button.toggled.connect(session.set_loop)
        self.region_first_button.toggled.connect(session.set_region_first)
        self.slot_a.currentIndexChanged.connect(lambda _: self._slot_changed("a", self.slot_a))
        self.slot_b.currentIndexChanged.connect(lambda _: self._slot_changed("b", self.slot_b))
        self.ab_button.clicked.connect(session.toggle_ab)
        self.star_button.clicked.connect(lambda: session.toggle_star(self._selected()))
        for combo in (self.slot_a, self.slot_b):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # "V1".."V16"
        self.transport_row = QtFlowRow()
        self.transport_row.add_group(self.play_button, self.stop_button)
        self.transport_row.add_group(self.loop_button, self.region_first_button)
        self.transport_row.add_group(label("A", "dim"), self.slot_a, label("B", "dim"), self.slot_b, self.ab_button)
        self.transport_row.add_group(self.star_button)
        self.body.addWidget(self.transport_row)

    def _make_actions(self, session: Session) -> None:
        """Drag chips, Same seed, Continue it, Play in DAW and Place in DAW."""
        self.regenerate_button = QPushButton("↻ Same seed")
        self.regenerate_button.setToolTip("Generate this variant again: its region, settings and seed")
        self.continue_button = QPushButton("Continue it")
        self.continue_button.setToolTip(
            "Continue from this variant: the region followed by it becomes the region, and is continued"
        )
        self.place_button = QPushButton("Place in DAW")
        self.place_button.setObjectName("primary")
        self.regenerate_button.clicked.connect(lambda: session.regenerate(self._selected()))
        self.continue_button.clicked.connect(lambda: session.continue_from(self._selected()))
        self.place_button.clicked.connect(lambda: session.place(self._selected()))
        self.play_daw_button = QPushButton("Play in DAW")  # shown while a Segue Link plugin is connected
        self.play_daw_button.setToolTip(
            "Play the variant through the Segue Link plugin on the region's track, in sync with the DAW, from where "
            "it belongs (mixed through the track's effects and fader); then drag it onto the track to keep it"
        )
        self.play_daw_button.clicked.connect(lambda: session.play_in_daw(self._selected()))
        self.play_daw_button.setVisible(False)
        self.drag_audio = QtDragChip("⇱ Audio", lambda: session.drag_paths(self._selected(), "audio"))
        self.drag_midi = QtDragChip("⇱ MIDI", lambda: session.drag_paths(self._selected(), "midi"))
        self.drag_stems = QtDragChip("⇱ All stems", lambda: session.drag_paths(self._selected(), "stems"))
        self.stem_chips: list[QtDragChip] = []
        self.stem_mutes: dict[str, QPushButton] = {}
        self.stem_solos: dict[str, QPushButton] = {}
        self.actions_row = QtFlowRow()
        self.actions_row.add_group(_drag_caption(), self.drag_audio, self.drag_midi, self.drag_stems)
        self.actions_row.add_group(self.regenerate_button, self.continue_button)
        self.actions_row.add_group(self.play_daw_button, self.place_button)
        self.body.addWidget(self.actions_row)

    def _make_bottom_row(self) -> None:
        """The stems' chips, the audition message and the clock."""
        self.stems_label = label("One stem", "dim")
        self.stems_row = QtFlowRow(spread=False, group_spacing=6)
        self.stems_row.add_group(self.stems_label)
        self.audition = QtElidedLabel()  # a long message must not widen the window; the whole text is its tooltip
        self.audition.setObjectName("dim")
        self.audition.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.clock = label("", "value", mono=True)
        bottom = row(self.stems_row, self.audition, self.clock, spacing=8)
        bottom.setStretchFactor(self.audition, 1)
        self.body.addLayout(bottom)

    def show_variants(self, state: VariantsState) -> None:
        self.list_model.show(state)
        has = bool(state.items)
        self.empty.setVisible(not has)
        job = state.job
        if job is not None:
            info = job.region
            tempo = f"{info.tempo_bpm:.2f} BPM" if info.tempo_bpm else ""
            if job.mode == "accompany":
                parts = list(dict.fromkeys(p for v in job.variants for p in v.parts)) or list(job.params.parts)
                what = f"accompany {', '.join(parts) or ''} · {info.length_bars or '?'} bars".replace("  ", " ")
            else:
                what = f"{job.mode} · {job.params.bars} bars"
            self.job_label.set_full_text(f"{what} · {tempo} {info.meter or ''} · {job.model} · {job.id}")
        else:
            self.job_label.set_full_text("")
        together = plays_together(state)
        self.region_first_button.setText("With region" if together else "Region first")
        self.region_first_button.setToolTip(
            "Play the region and the accompaniment together (full.wav)"
            if together
            else "Play the region, then the variant (full.wav)"
        )
        for combo, value in ((self.slot_a, state.slot_a), (self.slot_b, state.slot_b)):
            wanted = [i.variant_id for i in state.items]
            if [combo.itemData(i) for i in range(combo.count())] != wanted:
                blocked = combo.blockSignals(True)
                combo.clear()
                for item in state.items:
                    combo.addItem(f"V{item.number}", item.variant_id)
                combo.blockSignals(blocked)
            set_quietly(combo, value)
        set_quietly(self.loop_button, state.loop)
        set_quietly(self.region_first_button, state.region_first)
        selected = state.item(state.selected)
        index = next((n for n, i in enumerate(state.items) if i.variant_id == state.selected), -1)
        if index >= 0 and self.list.currentIndex().row() != index:
            self.list.setCurrentIndex(self.list_model.index(index))
        for widget in (
            self.play_button,
            self.star_button,
            self.regenerate_button,
            self.continue_button,
            self.place_button,
            self.play_daw_button,
            self.drag_audio,
            self.drag_midi,
            self.ab_button,
        ):
            widget.setEnabled(selected is not None)
        self.stop_button.setEnabled(bool(state.playing))
        self.star_button.setText("★ Starred" if selected is not None and selected.starred else "☆ Star")
        self.drag_stems.setEnabled(selected is not None and bool(selected.stems))
        self.drag_midi.setVisible(selected is None or "midi" in selected.files)  # an audio-only variant has no .mid
        self._show_place()
        self._show_stems(selected, state)
        self.audition.set_full_text(state.audition_message)
        self.show_playhead(self.list_model.playhead_seconds)

    def _show_place(self) -> None:
        """Place in DAW is the primary action only when a placement has somewhere to go; else it says why."""
        self.play_daw_button.setVisible(self.session.can_play_in_daw())
        ready = self.session.can_place()
        if (self.place_button.objectName() == "primary") != ready:
            self.place_button.setObjectName("primary" if ready else "")
            style = self.place_button.style()
            if style is not None:
                style.unpolish(self.place_button)
                style.polish(self.place_button)
        self.place_button.setToolTip(
            "Insert the variant on new tracks at the right position in the DAW"
            if ready
            else "No DAW has talked to Segue yet: send a region from your DAW's Segue script (or drag the files)"
        )

    def show_playhead(self, seconds: float) -> None:
        self.list_model.playhead_seconds = seconds
        state = self.list_model.state
        self.clock.setText(f"{_clock(seconds)} / {_clock(state.take_seconds)}" if state.playing else "")
        viewport = self.list.viewport()
        if viewport is not None:
            viewport.update()

    def _show_stems(self, item: VariantItem | None, state: VariantsState) -> None:
        """A drag chip per stem, with Mute and Solo for audition."""
        parts = sorted(item.stems) if item is not None else []
        self.stems_label.setVisible(bool(parts))
        if [c.text() for c in self.stem_chips] != [f"⇱ {_part_name(p)}" for p in parts]:
            for widget in [*self.stem_chips, *self.stem_mutes.values(), *self.stem_solos.values()]:
                self.stems_row.remove(widget)
                widget.deleteLater()
            self.stem_chips, self.stem_mutes, self.stem_solos = [], {}, {}
            for part in parts:
                chip = QtDragChip(f"⇱ {_part_name(part)}", self._stem_paths(part), slack=8)
                chip.setToolTip(f"Drag the {part} stem onto a DAW track")
                mute, solo = (
                    _stem_toggle("M", f"Mute the {part} stem in audition"),
                    _stem_toggle("S", f"Solo the {part} stem in audition (only soloed stems play)"),
                )
                mute.toggled.connect(lambda _, p=part: self.session.toggle_stem(p, "mute"))
                solo.toggled.connect(lambda _, p=part: self.session.toggle_stem(p, "solo"))
                self.stems_row.add_group(chip, mute, solo)
                self.stem_chips.append(chip)
                self.stem_mutes[part], self.stem_solos[part] = mute, solo
        for part in parts:
            set_quietly(self.stem_mutes[part], part in state.muted)
            set_quietly(self.stem_solos[part], part in state.soloed)

    def _stem_paths(self, part: str) -> Callable[[], list[Path]]:
        return lambda: self.session.drag_paths(self._selected(), f"stem:{part}")

    def row_menu(self, variant_id: str) -> QMenu:
        """The right-click menu of a variant's row: what the buttons do, for that row."""
        s = self.session
        state = s.models.variants.value
        item = state.item(variant_id)
        menu = QMenu(self)
        if item is None:
            return menu
        entries: list[tuple[str, Callable[[], object]]] = [
            ("Play", lambda: s.play(variant_id)),
            ("Set as A", lambda: s.set_slot("a", variant_id)),
            ("Set as B", lambda: s.set_slot("b", variant_id)),
            ("Unstar" if item.starred else "Star", lambda: s.toggle_star(variant_id)),
            ("Make again with the same seed", lambda: s.regenerate(variant_id)),
            ("Continue from this variant", lambda: s.continue_from(variant_id)),
            ("Place in DAW", lambda: s.place(variant_id)),
            *([("Play in DAW (Segue Link)", lambda: s.play_in_daw(variant_id))] if s.can_play_in_daw() else []),
            ("Show the files", lambda: self._reveal(item)),
            ("Rename…", lambda: self._ask(variant_id, "name")),
            ("Notes…", lambda: self._ask(variant_id, "notes")),
            ("Delete (to the trash)", lambda: s.delete_variant(variant_id)),
        ]
        for text, action in entries:
            menu.addAction(text).triggered.connect(lambda _checked=False, act=action: act())  # type: ignore[union-attr]
        return menu

    def _ask(self, variant_id: str, what: str) -> None:
        """Ask for a variant's name or notes (a small dialog) and keep them."""
        item = self.session.models.variants.value.item(variant_id)
        if item is None:
            return
        if what == "name":
            text, ok = QInputDialog.getText(self, "Rename", f"A name for V{item.number}:", text=item.name)
        else:
            text, ok = QInputDialog.getMultiLineText(self, "Notes", f"Notes on V{item.number}:", item.notes)
        if ok:
            self.session.annotate(variant_id, **{what: text})

    def _show_row_menu(self, point: QPoint) -> None:
        variant_id = self._id_at(self.list.indexAt(point))
        if variant_id:
            self.session.select(variant_id)
            viewport = self.list.viewport()
            self.row_menu(variant_id).popup(viewport.mapToGlobal(point) if viewport is not None else point)

    def _reveal(self, item: VariantItem) -> None:
        """Open the variant's folder in the file manager, and always say where it is (copied to the clipboard):
        with no file manager registered, opening it fails without a word from the system."""
        folder = next(iter(item.files.values())).parent if item.files else None
        if folder is None:
            self.session.say("info", f"{item.variant_id} has no files.")
            return
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(str(folder))
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        how = "opening it in the file manager" if opened else "no file manager answered"
        self.session.say("info", f"{item.variant_id}'s files are in {folder} (copied to the clipboard; {how}).")

    def _selected(self) -> str:
        return self.session.models.variants.value.selected

    def _id_at(self, index: QModelIndex) -> str:
        return self.list_model.items[index.row()].variant_id if index.isValid() else ""

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        variant_id = self._id_at(current)
        if variant_id and variant_id != self._selected():
            self.session.select(variant_id)

    def _slot_changed(self, slot: str, combo: QComboBox) -> None:
        value = combo.currentData()
        if value:
            self.session.set_slot(slot, str(value))


def _clock(seconds: float) -> str:
    """``3.25`` -> ``0:03.2``."""
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def _drag_caption() -> QLabel:
    caption = label("Drag:", "dim")
    caption.setToolTip("Drag these onto a DAW track: they carry the variant's files")
    return caption


def _stem_toggle(text: str, tip: str) -> QPushButton:
    button = _toggle(text)
    button.setObjectName("small")
    button.setToolTip(tip)
    return button


def _toggle(text: str) -> QPushButton:
    button = QPushButton(text)
    button.setCheckable(True)
    return button


def _part_name(part: str) -> str:
    return part.replace("_", " ")
