"""What a producer would call a broken layout, found by walking the window's visible widgets: text cut short (a
widget narrower than its size hint: buttons that read "Pl", fields narrower than their contents), text cut low (a
widget shorter than a line of its font), a widget cut off by its panel or covered by a neighbour. Widgets inside a
scroll area may be scrolled up or down out of view; that is not a fault, but cut at the side is."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from gui.widgets import QtElidedLabel

_TEXT_WIDGETS = (QLabel, QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit)


def _scrolled(widget: QWidget, top: QWidget) -> bool:
    parent = widget.parentWidget()
    while parent is not None and parent is not top:
        if isinstance(parent, QAbstractScrollArea):
            return True
        parent = parent.parentWidget()
    return False


def _describe(widget: QWidget) -> str:
    text = getattr(widget, "full_text", None) or (widget.text() if hasattr(widget, "text") else "")
    return f"{type(widget).__name__}({str(text)[:30]!r}, {widget.objectName() or '-'})"


def layout_faults(window: QWidget) -> list[str]:
    """Every visible text widget that is cut short, cut low, cut off or covered, said plainly."""
    faults = []
    for widget in window.findChildren(QWidget):
        if not isinstance(widget, _TEXT_WIDGETS) or not widget.isVisible() or widget.window() is not window:
            continue
        size = widget.size()
        name = _describe(widget)
        if isinstance(widget, QLabel) and widget.wordWrap():
            need_w, need_h = widget.minimumSizeHint().width(), widget.heightForWidth(size.width())
        elif isinstance(widget, QtElidedLabel):  # cut with "…" on purpose, its text in the tooltip
            need_w, need_h = 10, widget.fontMetrics().height()
        elif isinstance(widget, (QLabel, QAbstractButton)):
            need_w, need_h = widget.sizeHint().width(), widget.fontMetrics().height()
        else:
            need_w, need_h = widget.minimumSizeHint().width(), widget.fontMetrics().height()
        if size.width() < need_w:
            faults.append(f"{name} is {size.width()} px wide, needs {need_w}")
        if size.height() < need_h:
            faults.append(f"{name} is {size.height()} px high, needs {need_h}")
        seen = widget.visibleRegion().boundingRect().size()
        if _scrolled(widget, window):  # scrolled up or down out of view is fine, cut at the side is not
            if not seen.isEmpty() and seen.width() != size.width():
                faults.append(f"{name} shows {seen.width()} of {size.width()} px across (inside a scroll area)")
        elif seen != size:
            faults.append(f"{name} shows {seen.width()}x{seen.height()} of {size.width()}x{size.height()} px")
    return faults
