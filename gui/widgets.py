"""Small building blocks shared by the panels: cards, labels, drag chips, signal-quiet setters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QEvent, QMimeData, QObject, QPoint, QSize, Qt, QUrl
from PyQt6.QtGui import QDrag, QMouseEvent, QResizeEvent, QValidator
from PyQt6.QtWidgets import (
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui import theme


class QtCard(QFrame):
    """A titled panel: ``card.body`` is its layout; ``card.header`` takes widgets at the title's right."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(14, 10, 14, 12)
        outer.setSpacing(8)
        self.header = QHBoxLayout()
        self.header.setSpacing(8)
        self.title = QLabel(title.upper())
        self.title.setObjectName("cardTitle")
        self.header.addWidget(self.title)
        self.header.addStretch(1)
        outer.addLayout(self.header)
        self.body = QVBoxLayout()
        self.body.setSpacing(8)
        outer.addLayout(self.body)


class QtFormScroll(QScrollArea):
    """A form that scrolls vertically only when its panel is shorter than the form: it asks for the form's full
    height, but can shrink to :attr:`MIN_HEIGHT`, so a longer form never raises the window's minimum height."""

    MIN_HEIGHT = 120

    def __init__(self, form: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidget(form)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setObjectName("formScrollArea")
        self.viewport().setAutoFillBackground(False)  # type: ignore[union-attr]
        form.setObjectName("formScroll")
        form.installEventFilter(self)

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if watched is self.widget() and event is not None and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the form's height changed (a row shown or hidden): ask the panel again
        return super().eventFilter(watched, event)

    def sizeHint(self) -> QSize:
        form = self.widget()
        if form is None:
            return super().sizeHint()
        hint = form.sizeHint()
        bar = self.verticalScrollBar()
        return QSize(hint.width() + (bar.sizeHint().width() if bar is not None else 0), hint.height())

    def minimumSizeHint(self) -> QSize:
        form = self.widget()
        bar = self.verticalScrollBar()  # when it scrolls, the bar takes its width from the form's
        width = (form.minimumSizeHint().width() if form is not None else 0) + (
            bar.sizeHint().width() if bar is not None else 0
        )
        return QSize(width, min(self.MIN_HEIGHT, self.sizeHint().height()))


class QtRangeSpinBox(QSpinBox):
    """A whole-number box that keeps every digit typed, even past its range ("100" in a 1-64 box stays "100" while
    typed, where QSpinBox silently drops the last digit), and brings an out-of-range number into range when the
    typing ends, saying so through ``on_clamped(typed, kept)``."""

    def __init__(self, low: int, high: int, on_clamped: Callable[[int, int], None] | None = None) -> None:
        super().__init__()
        self.setRange(low, high)
        self.on_clamped = on_clamped

    def validate(self, text: str | None, pos: int) -> tuple[QValidator.State, str, int]:
        typed = (text or "").strip()
        if typed == "":
            return QValidator.State.Intermediate, text or "", pos
        if not typed.isdigit() or len(typed) > 9:
            return QValidator.State.Invalid, text or "", pos
        inside = self.minimum() <= int(typed) <= self.maximum()
        return QValidator.State.Acceptable if inside else QValidator.State.Intermediate, text or "", pos

    def fixup(self, text: str | None) -> str:
        typed = (text or "").strip()
        if not typed.isdigit():
            return str(self.value())
        kept = min(self.maximum(), max(self.minimum(), int(typed)))
        if kept != int(typed) and self.on_clamped is not None:
            self.on_clamped(int(typed), kept)
        return str(kept)


class QtElidedLabel(QLabel):
    """One line of text, cut with "…" to fit; the whole text is its tooltip."""

    def __init__(
        self,
        text: str = "",
        parent: QWidget | None = None,
        cap: int = 0,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
    ) -> None:
        """``cap``: the widest it asks to be (its whole text up to that many pixels); 0: no wish. ``mode``: where
        the "…" goes (the middle keeps a path's both ends)."""
        super().__init__(parent)
        self.full_text = ""
        self.cap = cap
        self.mode = mode
        self.setMinimumWidth(40)
        # with a cap it asks for its text (up to the cap) and gives way when room is short; without, it takes what
        # it is given
        horizontal = QSizePolicy.Policy.Preferred if cap else QSizePolicy.Policy.Ignored
        self.setSizePolicy(horizontal, QSizePolicy.Policy.Preferred)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text if text else "")
        if self.cap:
            self.updateGeometry()
        self._elide()

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._elide()

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        if self.cap:
            hint.setWidth(min(self.cap, self.fontMetrics().horizontalAdvance(self.full_text) + 4))
        return hint

    def _elide(self) -> None:
        width = max(10, self.width())
        self.setText(self.fontMetrics().elidedText(self.full_text, self.mode, width))


def label(text: str = "", name: str = "", mono: bool = False, size: float = 0.0) -> QLabel:
    widget = QLabel(text)
    if name:
        widget.setObjectName(name)
    if mono:
        widget.setFont(theme.mono_font(size))
    return widget


def section(text: str) -> QLabel:
    return label(text.upper(), "sectionTitle")


def row(*widgets: QWidget | int, spacing: int = 8) -> QHBoxLayout:
    """A horizontal row; an int adds that much stretch."""
    layout = QHBoxLayout()
    layout.setSpacing(spacing)
    for widget in widgets:
        if isinstance(widget, int):
            layout.addStretch(widget)
        else:
            layout.addWidget(widget)
    return layout


def field(caption: str, widget: QWidget) -> QVBoxLayout:
    """A small caption above an input."""
    layout = QVBoxLayout()
    layout.setSpacing(3)
    layout.addWidget(label(caption, "dim"))
    layout.addWidget(widget)
    return layout


def set_quietly(widget: QWidget, value: object) -> None:
    """Show a model value in a widget without firing its change signals (model -> widget)."""
    blocked = widget.blockSignals(True)
    try:
        if isinstance(widget, QDoubleSpinBox) and isinstance(value, (int, float)):
            widget.setValue(float(value))
        elif isinstance(widget, QSpinBox) and isinstance(value, int):
            if widget.value() != value:  # the same value would rewrite the text being typed
                widget.setValue(value)
        elif isinstance(widget, QComboBox):
            index = widget.findData(value)
            if index < 0:
                index = widget.findText(str(value))
            if index >= 0:
                widget.setCurrentIndex(index)
        elif isinstance(widget, QLineEdit):
            if widget.text() != str(value):
                widget.setText(str(value))
        elif isinstance(widget, QPushButton) and isinstance(value, bool):
            widget.setChecked(value)
    finally:
        widget.blockSignals(blocked)


def mime_for_paths(paths: list[Path]) -> QMimeData:
    """File URLs, as every DAW accepts when something is dropped on a track."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    return mime


class QtDragChip(QPushButton):
    """A button-like chip that drags files out of the window; ``paths()`` says which (existing) files."""

    def __init__(
        self, text: str, paths: Callable[[], list[Path]], parent: QWidget | None = None, slack: int = 0
    ) -> None:
        super().__init__(text, parent)
        self.paths = paths
        self.slack = slack
        self._press: QPoint | None = None
        self.setObjectName("chip")
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.setToolTip("Drag onto a DAW track")

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()  # a long chip's text can run past Qt's estimate: ``slack`` pixels more
        return QSize(hint.width() + self.slack, hint.height())

    def mime_data(self) -> QMimeData | None:
        paths = self.paths()
        return mime_for_paths(paths) if paths else None

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        if event is not None and event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent | None) -> None:
        if event is None or self._press is None:
            return
        if (event.position().toPoint() - self._press).manhattanLength() < QApplication.startDragDistance():
            return
        self._press = None
        mime = self.mime_data()
        if mime is None:
            return
        self.setDown(False)
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)
