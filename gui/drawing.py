"""Painting: piano rolls, waveforms, status lights. The paint functions draw into any rectangle, so the big
region view and the variant thumbnails share them."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt
from PyQt6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

from engine.api import Meter
from gui import theme
from gui.core.media import Note


def paint_grid(painter: QPainter, rect: QRectF, length_beats: float, meter: Meter, beats: bool = True) -> None:
    """Bar lines (and beat lines when there is room) across ``rect`` for ``length_beats`` quarter notes."""
    if length_beats <= 0:
        return
    per_beat = rect.width() / length_beats
    bar = meter.quarters_per_bar
    beat = 4.0 / meter.denominator
    if beats and per_beat * beat >= 6:
        painter.setPen(QPen(QColor(theme.GRID_BEAT), 1))
        position = 0.0
        while position < length_beats:
            x = rect.left() + position * per_beat
            painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
            position += beat
    painter.setPen(QPen(QColor(theme.GRID_BAR), 1))
    position = 0.0
    while position <= length_beats + 1e-6:
        x = min(rect.right() - 0.5, rect.left() + position * per_beat)
        painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        position += bar


def paint_piano_roll(
    painter: QPainter,
    rect: QRectF,
    notes: Sequence[Note],
    length_beats: float,
    meter: Meter | None = None,
    grid: bool = True,
) -> None:
    """Notes as bars: time left to right over ``length_beats``, pitch bottom to top (range fitted to the notes)."""
    meter = meter or Meter()
    if grid:
        paint_grid(painter, rect, length_beats, meter)
    pitched = [n for n in notes if not n.drum]
    drums = [n for n in notes if n.drum]
    if not notes or length_beats <= 0:
        return
    low = min((n.pitch for n in pitched), default=60) - 2
    high = max((n.pitch for n in pitched), default=72) + 2
    drum_band = rect.height() * 0.18 if drums else 0.0
    pitch_rect = QRectF(rect.left(), rect.top() + 2, rect.width(), rect.height() - drum_band - 4)
    row = pitch_rect.height() / max(12, high - low + 1)
    per_beat = rect.width() / length_beats
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(Qt.PenStyle.NoPen)
    base = QColor(theme.NOTE)
    for note in pitched:
        x = rect.left() + note.start_beats * per_beat
        w = max(1.5, (note.end_beats - note.start_beats) * per_beat - 1)
        y = pitch_rect.bottom() - (note.pitch - low + 1) * row
        color = QColor(base)
        color.setAlphaF(0.45 + 0.55 * min(1.0, note.velocity / 110))
        painter.setBrush(color)
        painter.drawRoundedRect(QRectF(x, y, w, max(1.5, row - 0.5)), 1.2, 1.2)
    if drums:
        top = rect.bottom() - drum_band
        painter.setBrush(QColor(theme.DRUM))
        drum_pitches = sorted({n.pitch for n in drums})
        lane = drum_band / max(1, len(drum_pitches))
        for note in drums:
            x = rect.left() + note.start_beats * per_beat
            y = top + drum_pitches.index(note.pitch) * lane
            painter.drawRect(QRectF(x, y, max(1.5, min(3.0, per_beat * 0.2)), max(1.0, lane - 0.5)))


def paint_waveform(painter: QPainter, rect: QRectF, peaks: Sequence[float], color: str = theme.WAVE) -> None:
    """A mirrored peak envelope across ``rect``."""
    if not peaks:
        return
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    mid = rect.center().y()
    half = rect.height() / 2 - 1
    step = rect.width() / len(peaks)
    pen = QPen(QColor(color), max(1.0, step * 0.75))
    painter.setPen(pen)
    for index, peak in enumerate(peaks):
        x = rect.left() + (index + 0.5) * step
        h = max(0.5, peak * half)
        painter.drawLine(QPointF(x, mid - h), QPointF(x, mid + h))


def paint_light(painter: QPainter, center: QPointF, radius: float, color: str) -> None:
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    glow = QColor(color)
    glow.setAlphaF(0.25)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(glow)
    painter.drawEllipse(center, radius * 1.8, radius * 1.8)
    painter.setBrush(QColor(color))
    painter.drawEllipse(center, radius, radius)


class QtStatusLight(QWidget):
    """A round light: green (connected/ready), amber (listening/starting), red (error), grey (off)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = "off"
        self.setFixedSize(16, 16)

    def set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.setToolTip(status)
            self.update()

    def paintEvent(self, event: QPaintEvent | None) -> None:
        painter = QPainter(self)
        paint_light(painter, QPointF(8, 8), 4.0, theme.STATUS_COLORS.get(self.status, theme.OFF))


MAX_ZOOM = 16.0


class QtRegionView(QWidget):
    """A large piano roll (MIDI) over a waveform (audio), with bar lines; draws what it is given. Ctrl+wheel zooms
    in and out around the pointer, the wheel then scrolls along the region, a double-click shows all of it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notes: tuple[Note, ...] = ()
        self.peaks: tuple[float, ...] = ()
        self.length_beats = 0.0
        self.meter = Meter()
        self.first_bar = 1
        self.zoom = 1.0  # 1: the whole region across the view
        self.start = 0.0  # where the view starts, as a fraction of the region (0 .. 1 - 1/zoom)
        self.setToolTip("Ctrl+wheel: zoom; wheel: scroll along; double-click: all of it")
        self.placeholder = "Drop a MIDI or audio file here, open one, or send a region from your DAW"
        self.setMinimumHeight(60)  # a 640 px high window still shows the bars; it grows with the window
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(600, 180)

    def show_media(
        self, notes: tuple[Note, ...], peaks: tuple[float, ...], length_beats: float, meter: Meter, first_bar: int = 1
    ) -> None:
        """``first_bar``: the number of the region's first bar on the DAW's timeline (bar 17, not 1)."""
        if (notes, peaks, length_beats) != (self.notes, self.peaks, self.length_beats):
            self.zoom, self.start = 1.0, 0.0  # another region: all of it
        self.notes, self.peaks, self.length_beats, self.meter = notes, peaks, length_beats, meter
        self.first_bar = first_bar
        self.update()

    def zoom_at(self, factor: float, fraction: float) -> None:
        """Zoom by ``factor`` keeping the point at ``fraction`` of the view's width where it is."""
        anchor = self.start + fraction / self.zoom
        self.zoom = min(MAX_ZOOM, max(1.0, self.zoom * factor))
        self.scroll_to(anchor - fraction / self.zoom)

    def scroll_to(self, start: float) -> None:
        self.start = min(max(0.0, start), 1.0 - 1.0 / self.zoom)
        self.update()

    def visible_beats(self) -> tuple[float, float]:
        """The stretch of the region in view, in quarter notes from its start."""
        return self.start * self.length_beats, (self.start + 1.0 / self.zoom) * self.length_beats

    def wheelEvent(self, event: QWheelEvent | None) -> None:
        if event is None or not (self.notes or self.peaks):
            return
        steps = event.angleDelta().y() / 120.0 or -event.angleDelta().x() / 120.0
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_at(1.25**steps, event.position().x() / max(1, self.width()))
        elif self.zoom > 1.0:
            self.scroll_to(self.start - steps * 0.1 / self.zoom)
        else:
            event.ignore()
            return
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent | None) -> None:
        self.zoom, self.start = 1.0, 0.0
        self.update()

    def paintEvent(self, event: QPaintEvent | None) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(theme.BORDER), 1))
        painter.setBrush(QColor(theme.INPUT))
        painter.drawRoundedRect(rect, 6, 6)
        inner = rect.adjusted(8, 8, -8, -8)
        if not self.notes and not self.peaks:
            painter.setPen(QColor(theme.FAINT))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        painter.setClipRect(inner)
        # zoomed: draw the whole region wider than the view, shifted to the part in view
        inner = QRectF(
            inner.left() - self.start * inner.width() * self.zoom,
            inner.top(),
            inner.width() * self.zoom,
            inner.height(),
        )
        # bar numbers along the top
        ruler = QRectF(inner.left(), inner.top(), inner.width(), 14)
        body = inner.adjusted(0, 16, 0, 0)
        self._paint_ruler(painter, ruler)
        if self.notes and self.peaks:
            roll = QRectF(body.left(), body.top(), body.width(), body.height() * 0.62)
            wave = QRectF(body.left(), roll.bottom() + 6, body.width(), body.height() - roll.height() - 6)
            paint_piano_roll(painter, roll, self.notes, self.length_beats, self.meter)
            paint_grid(painter, wave, self.length_beats, self.meter, beats=False)
            paint_waveform(painter, wave, self.peaks)
        elif self.notes:
            paint_piano_roll(painter, body, self.notes, self.length_beats, self.meter)
        else:
            paint_grid(painter, body, self.length_beats, self.meter, beats=False)
            paint_waveform(painter, body, self.peaks)

    def _paint_ruler(self, painter: QPainter, rect: QRectF) -> None:
        if self.length_beats <= 0:
            return
        painter.setFont(theme.mono_font(7.5))
        painter.setPen(QColor(theme.FAINT))
        per_beat = rect.width() / self.length_beats
        for position, number in bar_numbers(self.length_beats, self.meter, self.first_bar):
            x = rect.left() + position * per_beat
            painter.drawText(QRectF(x + 3, rect.top(), 40, rect.height()), Qt.AlignmentFlag.AlignVCenter, str(number))


def bar_numbers(length_beats: float, meter: Meter, first_bar: int = 1) -> list[tuple[float, int]]:
    """(position in quarter notes, bar number) of each bar line the ruler numbers, from ``first_bar``."""
    bar = meter.quarters_per_bar
    count = max(0, -int(-(length_beats - 1e-6) // bar)) if length_beats > 0 else 0
    return [(index * bar, first_bar + index) for index in range(count)]
