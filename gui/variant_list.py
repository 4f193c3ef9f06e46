"""The variants list: a Qt list model over the variants (dragging rows gives their audio files as file URLs) and
the delegate that paints a row (number, A/B badge, a clickable star, seed, length in bars and seconds, a piano-roll
and a waveform thumbnail, the playhead)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PyQt6.QtCore import (
    QAbstractItemModel,
    QAbstractListModel,
    QEvent,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSize,
    Qt,
)
from PyQt6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPen
from PyQt6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from engine.api import Meter
from gui import theme
from gui.core.models import VariantItem, VariantsState, plays_together
from gui.core.session import Session
from gui.drawing import paint_piano_roll, paint_waveform
from gui.widgets import mime_for_paths

ROW_HEIGHT = 66
ItemRole = Qt.ItemDataRole.UserRole + 1
_AnyIndex = QModelIndex | QPersistentModelIndex


class QtVariantListModel(QAbstractListModel):
    """The variants as a Qt list model; dragging rows gives the variants' audio files as file URLs."""

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.items: tuple[VariantItem, ...] = ()
        self.state = VariantsState()
        self.playhead_seconds = 0.0

    def show(self, state: VariantsState) -> None:
        same_rows = [i.key for i in state.items] == [i.key for i in self.items]
        self.state = state
        if same_rows:
            self.items = state.items
            if self.items:
                self.dataChanged.emit(self.index(0), self.index(len(self.items) - 1))
            return
        self.beginResetModel()
        self.items = state.items
        self.endResetModel()

    def rowCount(self, parent: _AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: _AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"V{item.number}"
        if role == Qt.ItemDataRole.ToolTipRole:
            named = f"{item.name}\n" if item.name else ""
            notes = f"\n{item.notes}" if item.notes else ""
            return f"{named}{item.variant_id}, seed {item.seed}: drag onto a DAW track{notes}"
        if role == ItemRole:
            return item
        return None

    def flags(self, index: _AnyIndex) -> Qt.ItemFlag:
        base = super().flags(index)  # type: ignore[arg-type]
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def mimeData(self, indexes: Iterable[QModelIndex]) -> QMimeData | None:
        paths = []
        for index in indexes:
            if index.isValid():
                paths.extend(self.session.drag_paths(self.items[index.row()].variant_id, "audio"))
        return mime_for_paths(paths) if paths else None


class QtVariantDelegate(QStyledItemDelegate):
    """Paints a row: number, star, seed and length, then a piano-roll and a waveform thumbnail."""

    def __init__(self, model: QtVariantListModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model

    def editorEvent(
        self,
        event: QEvent | None,
        model: QAbstractItemModel | None,
        option: QStyleOptionViewItem,
        index: _AnyIndex,
    ) -> bool:
        """A click on a row's star stars or unstars that variant."""
        if (
            isinstance(event, QMouseEvent)
            and event.type() == QEvent.Type.MouseButtonRelease
            and event.button() == Qt.MouseButton.LeftButton
            and star_rect(QRectF(option.rect)).contains(event.position())
        ):
            item = index.data(ItemRole)
            if isinstance(item, VariantItem):
                self.model.session.toggle_star(item.variant_id)
                return True
        return super().editorEvent(event, model, option, index)  # type: ignore[arg-type]

    def sizeHint(self, option: QStyleOptionViewItem, index: _AnyIndex) -> QSize:
        return QSize(240, ROW_HEIGHT)  # as wide as the list: the thumbnails take what is left

    def paint(self, painter: QPainter | None, option: QStyleOptionViewItem, index: _AnyIndex) -> None:
        if painter is None:
            return
        item = index.data(ItemRole)
        if not isinstance(item, VariantItem):
            return
        state = self.model.state
        rect = QRectF(option.rect).adjusted(2, 2, -2, -2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        playing = state.playing.split("+")[0] == item.variant_id
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(theme.ACCENT if playing else theme.DIM if selected else theme.BORDER), 1))
        painter.setBrush(QColor(theme.RAISED if selected else theme.PANEL))
        painter.drawRoundedRect(rect, 6, 6)
        # left column: number, A/B, star, seed
        left = _left_column(QRectF(option.rect))
        painter.setFont(_font(12, bold=True))
        painter.setPen(QColor(theme.ACCENT if playing else theme.TEXT))
        painter.drawText(QRectF(left.left(), left.top(), 40, 22), Qt.AlignmentFlag.AlignVCenter, f"V{item.number}")
        slot = "A" if state.slot_a == item.variant_id else "B" if state.slot_b == item.variant_id else ""
        if slot:
            badge = QRectF(left.left() + 40, left.top() + 3, 18, 16)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(theme.WAVE if slot == "A" else theme.NOTE))
            painter.drawRoundedRect(badge, 3, 3)
            painter.setPen(QColor(theme.BACKGROUND))
            painter.setFont(_font(8, bold=True))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, slot)
        painter.setFont(_font(13))
        painter.setPen(QColor(theme.ACCENT if item.starred else theme.FAINT))
        painter.drawText(star_rect(QRectF(option.rect)), Qt.AlignmentFlag.AlignCenter, "★" if item.starred else "☆")
        if playing:
            painter.setPen(QColor(theme.ACCENT))
            painter.drawText(QRectF(left.left() + 88, left.top(), 24, 22), Qt.AlignmentFlag.AlignCenter, "▶")
        painter.setFont(theme.mono_font(8.5))
        painter.setPen(QColor(theme.DIM))
        second = QRectF(left.left(), left.top() + 26, left.width(), 16)
        if item.name:  # the producer's name for it, else its seed
            painter.setPen(QColor(theme.TEXT))
            shown = painter.fontMetrics().elidedText(item.name, Qt.TextElideMode.ElideRight, int(left.width()))
            painter.drawText(second, Qt.AlignmentFlag.AlignVCenter, shown)
            painter.setPen(QColor(theme.DIM))
        else:
            painter.drawText(second, Qt.AlignmentFlag.AlignVCenter, f"seed {item.seed}")
        painter.drawText(
            QRectF(left.left(), left.top() + 40, left.width(), 14),
            Qt.AlignmentFlag.AlignVCenter,
            length_text(item, state),
        )
        # thumbnails
        thumbs = QRectF(left.right() + 8, rect.top() + 6, rect.right() - left.right() - 16, rect.height() - 12)
        if item.midi is not None and item.audio is not None:
            roll = QRectF(thumbs.left(), thumbs.top(), thumbs.width() * 0.55 - 4, thumbs.height())
            wave = QRectF(roll.right() + 8, thumbs.top(), thumbs.right() - roll.right() - 8, thumbs.height())
        else:
            roll = wave = thumbs
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(theme.INPUT))
        if item.midi is not None:
            painter.drawRoundedRect(roll, 4, 4)
            meter = item.midi.meter or Meter()
            length = _whole_bars(item.midi.length_beats, meter)
            paint_piano_roll(painter, roll.adjusted(3, 3, -3, -3), item.midi.notes, length, meter)
        if item.audio is not None:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(theme.INPUT))
            painter.drawRoundedRect(wave, 4, 4)
            paint_waveform(painter, wave.adjusted(3, 3, -3, -3), item.audio.peaks)
        if playing:
            fraction = playhead_fraction(item, state, self.model.playhead_seconds)
            if fraction is not None:
                painter.setPen(QPen(QColor(theme.ACCENT), 2))
                for box in {(roll.left(), roll.width()), (wave.left(), wave.width())}:
                    x = box[0] + 3 + fraction * (box[1] - 6)
                    painter.drawLine(QPointF(x, thumbs.top()), QPointF(x, thumbs.bottom()))
        painter.restore()


def _left_column(row: QRectF) -> QRectF:
    rect = row.adjusted(2, 2, -2, -2)
    return QRectF(rect.left() + 10, rect.top() + 6, 118, rect.height() - 12)


def star_rect(row: QRectF) -> QRectF:
    """Where a row's star is (a click there stars or unstars the variant)."""
    left = _left_column(row)
    return QRectF(left.left() + 64, left.top(), 24, 22)


def length_text(item: VariantItem, state: VariantsState) -> str:
    """``4 bars · 8.0 s``: the variant's length in the job's bars (its tempo and meter), then in seconds."""
    seconds = f"{item.duration_seconds:.1f} s"
    region = state.job.region if state.job is not None else None
    if region is None or not region.tempo_bpm or item.duration_seconds <= 0:
        return seconds
    meter = Meter.parse(region.meter) if region.meter else Meter()
    bars = item.duration_seconds * region.tempo_bpm / 60.0 / meter.quarters_per_bar
    shown = f"{bars:.0f}" if abs(bars - round(bars)) < 0.05 else f"{bars:.1f}"
    return f"{shown} bar{'' if shown == '1' else 's'} · {seconds}"


def playhead_fraction(item: VariantItem, state: VariantsState, seconds: float) -> float | None:
    """Where the playhead is within the variant (0..1), or None while the region before it plays."""
    if item.duration_seconds <= 0:
        return None
    after_region = state.playing.endswith("+region") and not plays_together(state)  # accompany: at once
    offset = max(0.0, state.take_seconds - item.duration_seconds) if after_region else 0.0
    fraction = (seconds - offset) / item.duration_seconds
    return fraction if 0.0 <= fraction <= 1.0 else None


def _whole_bars(length_beats: float, meter: Meter) -> float:
    bar = meter.quarters_per_bar
    return max(1, round(length_beats / bar)) * bar


def _font(points: float, bold: bool = False) -> QFont:
    font = QFont("DejaVu Sans")
    font.setPointSizeF(points)
    font.setBold(bold)
    return font
