"""Connections: the DAW (adapter, OSC ports, status light, last message), MIDI clock in, the engine, and what the
generated files say about where they came from."""

from __future__ import annotations

from PyQt6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget

from bridge.adapters import DAW_CHOICES
from gui import theme
from gui.core.models import ClockStateView, DawLinkState, EngineView, Models
from gui.core.session import Session
from gui.drawing import QtStatusLight
from gui.widgets import QtCard, field, label, row, set_quietly

_DAW_NAMES = {
    "generic": "Segue DAW script",
    "ardour": "Ardour",
    "reaper": "REAPER",
    "live": "Ableton Live (AbletonOSC)",
    "bitwig": "Bitwig (DrivenByMoss)",
    "link": "Segue Link plugin",
}


class QtConnectionsPanel(QWidget):
    def __init__(self, models: Models, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        layout.addWidget(self._daw_card())
        layout.addWidget(self._clock_card())
        layout.addWidget(self._engine_card())
        layout.addWidget(self._files_card())
        layout.addStretch(1)
        models.link.subscribe(self.show_link)
        models.clock.subscribe(self.show_clock)
        models.engine.subscribe(self.show_engine)

    # -- DAW ---------------------------------------------------------------------------------------------------

    def _daw_card(self) -> QtCard:
        card = QtCard("DAW")
        self.daw_light = QtStatusLight()
        self.daw_status = label("", "value")
        self.daw_status.setWordWrap(True)
        card.header.insertWidget(0, self.daw_light)
        self.daw_combo = QComboBox()
        for name in DAW_CHOICES:
            self.daw_combo.addItem(_DAW_NAMES[name], name)
        self.osc_port = QSpinBox()
        self.osc_port.setRange(0, 65535)
        self.osc_port.setFont(theme.mono_font())
        self.daw_host = QLineEdit()
        self.daw_host.setPlaceholderText("127.0.0.1")
        self.daw_port = QSpinBox()
        self.daw_port.setRange(0, 65535)
        self.daw_port.setSpecialValueText("default")
        self.daw_port.setFont(theme.mono_font())
        self.watch_dir = QLineEdit()
        self.watch_dir.setPlaceholderText("watched folder (REAPER): off")
        self.watch_dir.setToolTip(
            "For DAW scripts that cannot use the network (REAPER): they drop region requests into this folder and "
            "import what Segue places (daw_templates/)"
        )
        self.watch_detail = label("", "dim")
        self.watch_detail.setWordWrap(True)
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self._apply_link)
        self.last_message = label("nothing heard yet", "dim", mono=True, size=8.5)
        self.last_message.setWordWrap(True)
        card.body.addWidget(self.daw_status)
        card.body.addLayout(field("Talks to", self.daw_combo))
        ports = row(spacing=8)
        ports.addLayout(field("Listen on (UDP)", self.osc_port))
        ports.addLayout(field("DAW port", self.daw_port))
        card.body.addLayout(ports)
        card.body.addWidget(self.watch_dir)
        card.body.addWidget(self.watch_detail)
        card.body.addLayout(row(self.daw_host, self.apply_button))
        self.place_first = QCheckBox("Place variant 1 by itself")
        self.place_first.setToolTip(
            "On: when a job is done, its first variant goes into the DAW at once (as `segue bridge` does). Off (the "
            "default): you audition the variants and place the one you want (Place in DAW, or drag it)."
        )
        self.place_first.setChecked(self.session.settings.place_first)
        self.place_first.toggled.connect(self.session.set_place_first)
        card.body.addWidget(self.place_first)
        self.plugins = label("", "dim")  # the Segue Link plugins (connected or not)
        self.plugins.setWordWrap(True)
        self.plugins.setVisible(False)
        card.body.addWidget(self.plugins)
        card.body.addWidget(label("Last message", "sectionTitle"))
        card.body.addWidget(self.last_message)
        return card

    def show_link(self, state: DawLinkState) -> None:
        self.daw_light.set_status(state.status)
        self.daw_status.setText(state.detail or state.status)
        set_quietly(self.daw_combo, state.daw)
        set_quietly(self.osc_port, state.osc_port)
        set_quietly(self.daw_host, state.daw_host)
        set_quietly(self.daw_port, state.daw_port)
        set_quietly(self.watch_dir, state.watch_dir)
        self.watch_detail.setText(state.watch_detail)
        self.watch_detail.setVisible(bool(state.watch_detail))
        self.plugins.setText(_plugins_text(state))
        self.plugins.setVisible(bool(state.plugins))
        if state.last_message:
            self.last_message.setText(f"{state.last_message_time}  {state.last_message}\nfrom {state.peer}")

    def _apply_link(self) -> None:
        folder = self.watch_dir.text().strip()
        if folder != self.session.settings.watch_dir:
            self.session.set_watch_dir(folder)
        self.session.apply_link(
            daw=str(self.daw_combo.currentData()),
            osc_port=self.osc_port.value(),
            daw_host=self.daw_host.text().strip(),
            daw_port=self.daw_port.value(),
        )

    # -- MIDI clock --------------------------------------------------------------------------------------------

    def _clock_card(self) -> QtCard:
        card = QtCard("MIDI clock in")
        self.clock_light = QtStatusLight()
        card.header.insertWidget(0, self.clock_light)
        self.port_combo = QComboBox()
        self.port_combo.currentIndexChanged.connect(self._port_chosen)
        self.refresh_button = QPushButton("Rescan")
        self.refresh_button.clicked.connect(self.session.refresh_ports)
        self.ports_message = label("", "dim")
        self.ports_message.setWordWrap(True)
        self.tempo = label("---.-- BPM", "value", mono=True, size=11)
        self.play_state = label("■ stopped", "dim")
        self.position = label("001.1", "value", mono=True, size=11)
        self.source = label("", "dim")
        card.body.addLayout(row(self.port_combo, self.refresh_button))
        card.body.addWidget(self.ports_message)
        card.body.addLayout(row(self.tempo, 1, self.position))
        card.body.addLayout(row(self.play_state, 1, self.source))
        return card

    def show_clock(self, state: ClockStateView) -> None:
        wanted = ["", *state.ports]
        if state.port and state.port not in wanted:
            wanted.append(state.port)
        current = [str(self.port_combo.itemData(i)) for i in range(self.port_combo.count())]
        if current != wanted:
            blocked = self.port_combo.blockSignals(True)
            self.port_combo.clear()
            for name in wanted:
                self.port_combo.addItem(name or "Off", name)
            self.port_combo.blockSignals(blocked)
        set_quietly(self.port_combo, state.port)
        short = state.ports_message.split(":", 1)[0] if len(state.ports_message) > 60 else state.ports_message
        self.ports_message.setText(short)
        self.ports_message.setToolTip(state.ports_message)
        self.ports_message.setVisible(bool(state.ports_message))
        self.clock_light.set_status("connected" if state.connected else "listening" if state.port else "off")
        self.tempo.setText(f"{state.tempo_bpm:6.2f} BPM" if state.tempo_bpm else "---.-- BPM")
        self.play_state.setText("▶ playing" if state.playing else "■ stopped")
        self.position.setText(f"{state.bar:03d}.{state.beat}")
        self.source.setText(state.source if state.source != "none" else "")

    def _port_chosen(self, index: int) -> None:
        self.session.set_clock_port(str(self.port_combo.itemData(index) or ""))

    # -- engine ------------------------------------------------------------------------------------------------

    def _engine_card(self) -> QtCard:
        card = QtCard("Engine")
        self.engine_light = QtStatusLight()
        card.header.insertWidget(0, self.engine_light)
        self.engine_kind = QComboBox()
        self.engine_kind.addItem("This computer", "local")
        self.engine_kind.addItem("GPU server (URL)", "remote")
        self.engine_kind.currentIndexChanged.connect(self._kind_changed)
        self.engine_url = QLineEdit()
        self.engine_url.setPlaceholderText("http://gpu-box:8750")
        self.engine_token = QLineEdit()
        self.engine_token.setPlaceholderText("token")
        self.engine_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self._connect)
        self.engine_name = label("", "value")
        self.engine_name.setWordWrap(True)  # a long engine name wraps, never widens the column
        self.engine_message = label("", "dim")
        self.engine_message.setWordWrap(True)
        self.model_list = label("", "dim", mono=True, size=8.5)
        self.model_list.setWordWrap(True)
        card.body.addLayout(row(self.engine_kind, self.connect_button))
        card.body.addWidget(self.engine_url)
        card.body.addWidget(self.engine_token)
        card.body.addWidget(self.engine_name)
        card.body.addWidget(self.engine_message)
        card.body.addWidget(label("Models", "sectionTitle"))
        card.body.addWidget(self.model_list)
        return card

    def show_engine(self, state: EngineView) -> None:
        remote = state.spec != "local"
        set_quietly(self.engine_kind, "remote" if remote else "local")
        if remote:
            set_quietly(self.engine_url, state.spec)
        set_quietly(self.engine_token, state.token)
        self.engine_url.setVisible(remote)
        self.engine_token.setVisible(remote)
        self.engine_light.set_status(state.status)
        words = {"ready": state.name, "opening": "starting..."}
        device = words.get(state.status, "unavailable")
        self.engine_name.setText(device)
        self.engine_message.setText(state.message)
        self.engine_message.setVisible(bool(state.message))
        lines = []
        for m in state.models:  # what a model does: an accompany model writes MIDI parts, it does not continue
            role = "accompany" if "accompany" in m.modes and "continue" not in m.modes else m.kind
            size = f", {m.parameters / 1e6:.1f}M parameters" if m.parameters else ""
            lines.append(f"{m.name}\n   {role}{size}")  # two lines: long names do not wrap mid-entry
        self.model_list.setText("\n".join(lines) or ("loading..." if state.status == "opening" else "none"))

    # -- files ---------------------------------------------------------------------------------------------------

    def _files_card(self) -> QtCard:
        """Provenance in the files: every file always says it was generated, by which model and seed."""
        card = QtCard("Files")
        settings = self.session.settings
        self.region_name_check = QCheckBox("Name the region")
        self.region_name_check.setChecked(settings.provenance_region_name)
        self.sign_check = QCheckBox("Sign WAVs (C2PA)")
        self.sign_check.setChecked(settings.provenance_sign)
        for check in (self.region_name_check, self.sign_check):
            check.toggled.connect(self._provenance_changed)
        note = label("Files always say they were generated, by which model and seed.", "dim")
        note.setWordWrap(True)
        card.body.addWidget(self.region_name_check)
        card.body.addWidget(self.sign_check)
        card.body.addWidget(note)
        return card

    def _provenance_changed(self, _checked: bool) -> None:
        self.session.set_provenance(self.region_name_check.isChecked(), self.sign_check.isChecked())

    def _kind_changed(self, index: int) -> None:
        remote = self.engine_kind.itemData(index) == "remote"
        self.engine_url.setVisible(remote)
        self.engine_token.setVisible(remote)

    def _connect(self) -> None:
        remote = self.engine_kind.currentData() == "remote"
        spec = self.engine_url.text().strip() if remote else "local"
        self.session.set_engine(spec, self.engine_token.text().strip() if remote else "")


def _plugins_text(state: DawLinkState) -> str:
    """``Segue Link: ● Bass connected · ○ Keys not connected``."""
    rows = []
    for plugin in state.plugins:
        name = plugin.track or plugin.instance_id
        rows.append(f"● {name} connected" if plugin.connected else f"○ {name} not connected")
    return "Segue Link: " + " · ".join(rows) if rows else ""
