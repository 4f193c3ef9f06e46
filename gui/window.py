"""The main window: a top bar (transport readout, DAW and engine lights), the panels, a message bar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QResizeEvent,
    QShortcut,
    QShowEvent,
)
from PyQt6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.adapters import QtTicker
from gui.core.models import ClockStateView, DawLinkState, EngineView, RegionState
from gui.core.session import Session
from gui.drawing import QtStatusLight
from gui.messages import QtMessageBar, QtMessageLog
from gui.panel_connections import QtConnectionsPanel
from gui.panel_generate import QtGeneratePanel
from gui.panel_history import QtHistoryPanel
from gui.panel_region import QtRegionPanel
from gui.panel_variants import QtVariantsPanel
from gui.widgets import QtElidedLabel, label, set_quietly

SHORTCUTS = (  # (keys, what they do): the shortcuts window lists these and File's
    ("Space", "play / stop the selected variant"),
    ("Ctrl+Return", "generate"),
    ("Ctrl+B", "switch between the A and B variants at the same position"),
    ("Ctrl+T", "tap the region's tempo (three taps or more)"),
)
WIDE_WINDOW = 1280  # narrower: the side columns shrink to what they need
NARROW_WINDOW = 1200  # narrower: the Connections column hides (the top bar's Connections button shows it)


def _elided(cap: int, text: str = "") -> QtElidedLabel:
    widget = QtElidedLabel(text, cap=cap)
    widget.setObjectName("dim")
    return widget


def _splitter(orientation: Qt.Orientation, panes: list[tuple[QWidget, int]], sizes: list[int]) -> QSplitter:
    """A splitter of ``panes`` (widget, stretch factor) with a 10-pixel handle, starting at ``sizes``."""
    split = QSplitter(orientation)
    for index, (pane, stretch) in enumerate(panes):
        split.addWidget(pane)
        split.setStretchFactor(index, stretch)
    split.setHandleWidth(10)
    split.setSizes(sizes)
    return split


class QtMainWindow(QMainWindow):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        models = session.models
        self.setWindowTitle("Segue")
        self.setAcceptDrops(True)
        self.resize(1440, 900)
        central = QWidget()
        central.setObjectName("central")
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self._top_bar())
        body = QVBoxLayout()
        body.setContentsMargins(12, 10, 12, 12)
        body.setSpacing(10)
        self.message_bar = QtMessageBar()
        body.addWidget(self.message_bar)
        self.connections = QtConnectionsPanel(models, session)
        self.region = QtRegionPanel(models, session)
        self.variants = QtVariantsPanel(models, session)
        self.generate = QtGeneratePanel(models, session)
        self.history = QtHistoryPanel(models, session)
        left = QScrollArea()
        left.setWidget(self.connections)
        left.setWidgetResizable(True)
        left.setFrameShape(QFrame.Shape.NoFrame)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll_bar = left.verticalScrollBar()
        bar_width = scroll_bar.sizeHint().width() if scroll_bar is not None else 12
        left.setMinimumWidth(self.connections.minimumSizeHint().width() + bar_width + 2)
        center = _splitter(Qt.Orientation.Vertical, [(self.region, 2), (self.variants, 3)], [330, 480])
        right = _splitter(Qt.Orientation.Vertical, [(self.generate, 0), (self.history, 1)], [430, 380])
        split = _splitter(Qt.Orientation.Horizontal, [(left, 0), (center, 1), (right, 0)], [260, 830, 330])
        self.right_split = right
        self.split = split
        self.left = left
        self._left_auto_hidden = False  # hidden because the window is narrow (not by the user)
        self._left_user_shown = False  # shown by the user in a narrow window
        right.installEventFilter(self)  # resized (the window, the message bar): fit the Generate form again
        self.generate.installEventFilter(self)  # its form grew (accompany's parts, a job row): the same
        body.addWidget(split, 1)
        outer.addLayout(body, 1)
        self.setCentralWidget(central)
        self._menu()
        self._shortcuts()
        models.message.subscribe(self.message_bar.show_message, now=False)
        models.messages.subscribe(self.message_bar.show_log_count)
        self.message_bar.log_button.clicked.connect(self.show_message_log)
        self.message_log: QtMessageLog | None = None
        models.clock.subscribe(self.show_transport)
        models.link.subscribe(self.show_link)
        models.engine.subscribe(self.show_engine)
        models.region.subscribe(self.show_region)
        self.ticker = QtTicker(session.tick, parent=self)

    def _top_bar(self) -> QFrame:
        bar = QFrame()
        bar.setObjectName("topbar")
        layout = QHBoxLayout(bar)
        layout.setContentsMargins(16, 8, 16, 8)
        layout.setSpacing(10)
        layout.addWidget(label("SEGUE", "logo"))
        layout.addSpacing(18)
        self.connections_button = QPushButton("Connections")
        self.connections_button.setCheckable(True)
        self.connections_button.setChecked(True)
        self.connections_button.setToolTip("Show or hide the DAW, MIDI clock and engine settings")
        self.connections_button.toggled.connect(self.toggle_connections)
        layout.addWidget(self.connections_button)
        self.tempo_readout = label("---.-- BPM", "readout", mono=True, size=12)
        self.meter_readout = label("4/4", "readout", mono=True, size=12)
        self.position_readout = label("001.1", "readout", mono=True, size=12)
        self.play_readout = label("■", "readout", mono=True, size=12)
        self.source_readout = _elided(160)  # cut in a narrow window, whole in its tooltip
        for widget in (self.tempo_readout, self.meter_readout, self.position_readout, self.play_readout):
            layout.addWidget(widget)
        layout.addWidget(self.source_readout)
        layout.addStretch(1)
        self.daw_light = QtStatusLight()
        self.daw_text = _elided(200, "DAW")
        self.engine_light = QtStatusLight()
        self.engine_text = _elided(220, "Engine")
        lights: tuple[QWidget, ...] = (self.daw_light, self.daw_text, self.engine_light, self.engine_text)
        for light in lights:
            layout.addWidget(light)
        return bar

    def _shortcuts(self) -> None:
        """The keys a producer reaches for: Space plays/stops, Ctrl+Enter generates, Ctrl+B switches A/B."""
        keys: list[tuple[str, Callable[[], object], QPushButton]] = [
            ("Space", self.session.toggle_play, self.variants.play_button),
            ("Ctrl+Return", self.session.generate, self.generate.generate_button),
            ("Ctrl+B", self.session.toggle_ab, self.variants.ab_button),
            ("Ctrl+T", self.session.tap_tempo, self.region.tap_button),
        ]
        self.shortcuts: list[QShortcut] = []
        for key, action, button in keys:
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(action)
            self.shortcuts.append(shortcut)
            shown = QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)
            button.setToolTip(f"{button.toolTip() or button.text().strip()} ({shown})")

    def show_message_log(self) -> None:
        """Every message of the session in a window of its own."""
        if self.message_log is not None:
            self.message_log.close()
        self.message_log = QtMessageLog(self.session.models.messages.value, self)
        self.message_log.show()

    def _menu(self) -> None:
        menu = self.menuBar()
        if menu is None:
            return
        file_menu = menu.addMenu("&File")
        if file_menu is None:
            return
        open_action = QAction("&Open region…", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self.region.choose_file)
        file_menu.addAction(open_action)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        edit_menu = menu.addMenu("&Edit")
        if edit_menu is not None:
            restore = QAction("&Restore the last deleted", self)
            restore.setShortcut(QKeySequence.StandardKey.Undo)
            restore.setToolTip("Bring back the variant or job deleted last (they go to the jobs folder's .trash)")
            restore.triggered.connect(self.session.restore_last)
            edit_menu.addAction(restore)
            delete = QAction("&Delete the selected variant", self)
            delete.setShortcut(QKeySequence.StandardKey.Delete)
            delete.triggered.connect(lambda: self.session.delete_variant(self.session.models.variants.value.selected))
            edit_menu.addAction(delete)
            self.edit_menu = edit_menu
        view_menu = menu.addMenu("&View")
        if view_menu is None:
            return
        for text, action in (
            ("&Messages…", self.show_message_log),
            ("&Keyboard shortcuts…", self.show_shortcuts),
        ):
            item = QAction(text, self)
            item.triggered.connect(action)
            view_menu.addAction(item)
        self.view_menu = view_menu

    def shortcut_list(self) -> list[tuple[str, str]]:
        """(keys, what they do), as the shortcuts window lists them."""
        native = QKeySequence.SequenceFormat.NativeText
        listed = [(QKeySequence(key).toString(native), what) for key, what in SHORTCUTS]
        listed.append((QKeySequence(QKeySequence.StandardKey.Open).toString(native), "open a region file"))
        listed.append((QKeySequence(QKeySequence.StandardKey.Quit).toString(native), "quit"))
        listed.append((QKeySequence(QKeySequence.StandardKey.Delete).toString(native), "delete the selected variant"))
        listed.append((QKeySequence(QKeySequence.StandardKey.Undo).toString(native), "restore the last deleted"))
        return listed

    def show_shortcuts(self) -> None:
        rows = "".join(
            f"<tr><td><b>{keys}</b>&nbsp;&nbsp;</td><td>{what}</td></tr>" for keys, what in self.shortcut_list()
        )
        box = QMessageBox(self)
        box.setWindowTitle("Segue: keyboard shortcuts")
        box.setText(f"<table>{rows}</table>")
        box.show()
        self.shortcuts_box = box

    # -- model -> widgets --------------------------------------------------------------------------------------

    def show_transport(self, clock: ClockStateView) -> None:
        self.tempo_readout.setText(f"{clock.tempo_bpm:6.2f} BPM" if clock.tempo_bpm else "---.-- BPM")
        self.position_readout.setText(f"{clock.bar:03d}.{clock.beat}")
        self.play_readout.setText("▶" if clock.playing else "■")
        self.play_readout.setStyleSheet(f"color: {theme.GOOD};" if clock.playing else "")
        self.source_readout.set_full_text(
            "tempo from the region" if clock.source == "none" and clock.tempo_bpm else clock.source.replace("none", "")
        )

    def show_region(self, state: RegionState) -> None:
        if state.region is not None:
            self.meter_readout.setText(str(state.region.meter))

    def show_link(self, link: DawLinkState) -> None:
        self.daw_light.set_status(link.status)
        words = {
            "connected": f"DAW {link.peer}",
            "listening": f"DAW: waiting on :{link.osc_port}",
            "error": "DAW: not listening",
            "off": "DAW: off",
        }
        self.daw_text.set_full_text(words.get(link.status, link.status))

    def show_engine(self, engine: EngineView) -> None:
        self.engine_light.set_status(engine.status)
        words = {"ready": f"Engine: {engine.name}", "opening": "Engine: starting…", "failed": "Engine: unavailable"}
        self.engine_text.set_full_text(words.get(engine.status, engine.status))

    # -- window events ---------------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if event is not None and (
            (watched is self.right_split and event.type() == QEvent.Type.Resize)
            or (watched is self.generate and event.type() == QEvent.Type.LayoutRequest)
        ):
            QTimer.singleShot(0, self.fit_generate)  # once the layouts have settled
        return super().eventFilter(watched, event)

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self.fit_columns()  # at once: the column hidden before the panels below wrap for a width they will not get
        QTimer.singleShot(0, self.fit_columns)  # and once the layouts have settled

    def toggle_connections(self, shown: bool) -> None:
        """The Connections button: show or hide the left column (the user's choice, kept until the window is made
        narrow or wide again)."""
        self._left_auto_hidden = False
        self._left_user_shown = shown and self.width() < NARROW_WINDOW
        self.left.setVisible(shown)
        set_quietly(self.connections_button, shown)

    def fit_columns(self) -> None:
        """A narrow window (a laptop beside the DAW) hides the Connections column (the top bar's button and lights
        still show it) and gives the side columns only what they need, so the region and the variants get the rest
        (fewer wrapped rows of buttons); a wide window shows it again and keeps the user's own split."""
        narrow = self.width() < NARROW_WINDOW
        if narrow and not self.left.isHidden() and not self._left_auto_hidden and not self._left_user_shown:
            self._left_auto_hidden = True
            self.left.hide()
        elif not narrow:
            self._left_user_shown = False
            if self._left_auto_hidden:
                self._left_auto_hidden = False
                self.left.show()
        set_quietly(self.connections_button, not self.left.isHidden())
        sizes = self.split.sizes()
        if len(sizes) != 3 or self.width() >= WIDE_WINDOW:
            return
        left, right = (self.split.widget(i) for i in (0, 2))
        if left is None or right is None:
            return
        want = [left.minimumSizeHint().width(), 0, right.minimumSizeHint().width()]
        want[1] = sum(sizes) - want[0] - want[2]
        if want[1] > sizes[1]:
            self.split.setSizes(want)

    def fit_generate(self) -> None:
        """Give the Generate form its whole height from the history below it when there is room (its form scrolls
        only in a short window; growing the window again brings it back)."""
        generate, history = self.right_split.sizes()
        missing = self.generate.sizeHint().height() - generate
        spare = history - self.history.minimumSizeHint().height()
        if missing > 0 and spare > 0:
            moved = min(missing, spare)
            self.right_split.setSizes([generate + moved, history - moved])

    def showEvent(self, event: QShowEvent | None) -> None:
        super().showEvent(event)
        self.ticker.start()

    def dragEnterEvent(self, event: QDragEnterEvent | None) -> None:
        mime = event.mimeData() if event is not None else None
        if event is not None and mime is not None and mime.hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent | None) -> None:
        mime = event.mimeData() if event is not None else None
        if event is None or mime is None:
            return
        paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.session.open_files(paths)

    def closeEvent(self, event: QCloseEvent | None) -> None:
        self.ticker.stop()
        self.session.close()
        super().closeEvent(event)
