"""A row of control groups that wraps onto more lines when its panel is narrow (1024 px laptops beside a DAW) and
stays one line when there is room: the window's minimum width is its widest group, never the whole row.

:class:`QtFlowRow` lays out its children itself. Each group (``add_group``) keeps its widgets side by side; groups
go left to right and wrap as whole groups; on a line with room to spare the groups spread out (the first at the left
edge, the last at the right, as a stretch between them would put them). Hidden widgets take no room. Its height
follows the lines its width needs: when that changes it asks its parent layout again (``updateGeometry``).
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, QRect, QSize, Qt, QTimer
from PyQt6.QtWidgets import QSizePolicy, QWidget


class QtFlowRow(QWidget):
    def __init__(
        self, spacing: int = 6, group_spacing: int = 10, spread: bool = True, parent: QWidget | None = None
    ) -> None:
        """``spread``: share a line's spare room between its groups; else pack them at the left."""
        super().__init__(parent)
        self.spacing = spacing
        self.spread = spread
        self.group_spacing = group_spacing
        self.groups: list[list[QWidget]] = []
        self._lines = 1
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def add_group(self, *widgets: QWidget) -> None:
        for widget in widgets:
            self._adopt(widget)
        self.groups.append(list(widgets))
        self._relayout()

    def _adopt(self, widget: QWidget) -> None:
        hidden = widget.isHidden() and widget.testAttribute(Qt.WidgetAttribute.WA_WState_ExplicitShowHide)
        widget.setParent(self)  # hides it (Qt): show it again unless it was hidden on purpose
        if not hidden:
            widget.show()
        widget.installEventFilter(self)  # shown, hidden or its text changed: lay out again

    def remove(self, widget: QWidget) -> None:
        for group in self.groups:
            if widget in group:
                group.remove(widget)
        self.groups = [g for g in self.groups if g]
        widget.removeEventFilter(self)
        self._relayout()

    # -- sizes ------------------------------------------------------------------------------------------------

    def _visible(self) -> list[list[QWidget]]:
        shown = [[w for w in g if not w.isHidden()] for g in self.groups]
        return [g for g in shown if g]

    def _group_width(self, group: list[QWidget]) -> int:
        return sum(_hint(w).width() for w in group) + self.spacing * (len(group) - 1)

    def _line_height(self, line: list[list[QWidget]]) -> int:
        return max((_hint(w).height() for g in line for w in g), default=0)

    def _lines_for(self, width: int) -> list[list[list[QWidget]]]:
        lines: list[list[list[QWidget]]] = []
        used = 0
        for group in self._visible():
            need = self._group_width(group)
            if lines and used + self.group_spacing + need <= width:
                lines[-1].append(group)
                used += self.group_spacing + need
            else:
                lines.append([group])
                used = need
        return lines

    def _height_for(self, width: int) -> int:
        lines = self._lines_for(width)
        return sum(self._line_height(line) for line in lines) + self.spacing * max(0, len(lines) - 1)

    def sizeHint(self) -> QSize:
        groups = self._visible()
        width = sum(self._group_width(g) for g in groups) + self.group_spacing * max(0, len(groups) - 1)
        return QSize(width, self._height_for(self.width() if self.width() > 0 else width))

    def minimumSizeHint(self) -> QSize:
        width = max((self._group_width(g) for g in self._visible()), default=0)
        return QSize(width, self._height_for(self.width() if self.width() > 0 else width))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._height_for(width)

    # -- layout ---------------------------------------------------------------------------------------------

    def resizeEvent(self, event: object) -> None:
        self._place()

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if event is not None and event.type() in (
            QEvent.Type.Show,
            QEvent.Type.Hide,
            QEvent.Type.LayoutRequest,
            QEvent.Type.FontChange,
        ):
            QTimer.singleShot(0, self._relayout)
        return super().eventFilter(watched, event)

    def event(self, event: QEvent | None) -> bool:
        if event is not None and event.type() == QEvent.Type.LayoutRequest:  # a child's size hint changed
            self._relayout()
        return super().event(event)

    def _relayout(self) -> None:
        self._place()
        self.updateGeometry()

    def _place(self) -> None:
        width = self.width()
        lines = self._lines_for(width)
        y = 0
        for line in lines:
            height = self._line_height(line)
            used = sum(self._group_width(g) for g in line)
            gap = (width - used) / (len(line) - 1) if len(line) > 1 and self.spread else self.group_spacing
            x = 0.0
            for group in line:
                for widget in group:
                    hint = _hint(widget)
                    widget.setGeometry(QRect(round(x), y + (height - hint.height()) // 2, hint.width(), hint.height()))
                    x += hint.width() + self.spacing
                x += gap - self.spacing  # the last widget's spacing becomes the gap between groups
            y += height + self.spacing
        if len(lines) != self._lines:
            self._lines = len(lines)
            self.updateGeometry()  # more or fewer lines: a different height


def _hint(widget: QWidget) -> QSize:
    """Its size hint once its style sheet applies (a widget made after the window was shown is polished late)."""
    widget.ensurePolished()
    return widget.sizeHint()
