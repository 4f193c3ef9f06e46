"""Messages: the bar above the panels with the latest message, and the log of every message of the session (a
window opened from the bar or the View menu), so that several errors in a row are all reachable."""

from __future__ import annotations

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import QDialog, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from gui import theme
from gui.core.models import Message

_LEVEL_COLORS = {"info": theme.WAVE, "warning": theme.WARN, "error": theme.BAD}
INFO_SHOWN_MS = 10_000
MAX_LINES = 3  # a longer message is cut here (whole in its tooltip and in All messages)


class QtMessageBar(QFrame):
    """The latest message for the user: errors and warnings stay until closed, information fades out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log_button = QPushButton("All messages")
        self.log_button.setObjectName("small")
        self.log_button.setToolTip("Every message of this session, errors and warnings included (the latest last)")
        self.log_button.hide()
        self.close_button = QPushButton("✕")
        self.close_button.setToolTip("Close this message")
        self.close_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.log_button)
        layout.addWidget(self.close_button)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, message: Message | None) -> None:
        if message is None:
            self.hide()
            return
        color = _LEVEL_COLORS.get(message.level, theme.DIM)
        self.setStyleSheet(
            f"QtMessageBar {{ background: {theme.PANEL}; border: 1px solid {color}; border-left: 4px solid {color};"
            f" border-radius: 6px; }}"
        )
        self.text.setText(message.text)
        self.show()
        self._fit()
        if message.level == "info":
            self.timer.start(INFO_SHOWN_MS)
        else:
            self.timer.stop()

    def show_log_count(self, messages: tuple[Message, ...]) -> None:
        """With more than one message, the button to read them all (an earlier error is never lost)."""
        self.log_button.setText(f"All messages ({len(messages)})")
        self.log_button.setVisible(len(messages) > 1)

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        """A word-wrapped label in nested layouts does not grow by itself: make room for its lines, up to
        :data:`MAX_LINES` (a longer message must not push the window taller: all of it is in the tooltip and in
        All messages)."""
        width = max(100, self.text.width())
        most = self.text.fontMetrics().lineSpacing() * MAX_LINES + 4
        height = min(self.text.heightForWidth(width), most)
        self.text.setMinimumHeight(height)
        self.text.setMaximumHeight(most)
        self.text.setToolTip(self.text.text() if self.text.heightForWidth(width) > most else "")


def log_text(messages: tuple[Message, ...]) -> str:
    """One line per message, oldest first: ``12:03:22  error  Generation failed: ...``."""
    return "\n".join(f"{m.when}  {m.level:<7}  {m.text}" for m in messages)


class QtMessageLog(QDialog):
    """Every message of the session, selectable and copyable, the latest at the bottom."""

    def __init__(self, messages: tuple[Message, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Segue: messages")
        self.resize(720, 360)
        self.text = QPlainTextEdit(log_text(messages) or "No messages yet.")
        self.text.setReadOnly(True)
        self.text.setFont(theme.mono_font(9))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(close)
        layout.addLayout(row)
        bar = self.text.verticalScrollBar()
        if bar is not None:
            bar.setValue(bar.maximum())
