"""The dark theme: one palette, one style sheet, a monospace font for numbers (tempo, position, seeds)."""

from __future__ import annotations

from PyQt6.QtGui import QColor, QFont, QFontDatabase, QPalette
from PyQt6.QtWidgets import QApplication

BACKGROUND = "#14161b"
PANEL = "#1c1f26"
RAISED = "#252932"
INPUT = "#12141a"
BORDER = "#303542"
TEXT = "#dfe3ea"
DIM = "#8b93a3"
FAINT = "#5d6473"
ACCENT = "#ffa630"  # amber: the one call to action, the playhead
ACCENT_DARK = "#c77b12"
WAVE = "#4fd1c5"  # teal: audio
NOTE = "#8fa8ff"  # periwinkle: MIDI notes
DRUM = "#ff7a90"
GOOD = "#3ddc84"
WARN = "#ffb020"
BAD = "#ff5c5c"
OFF = "#4a5060"
GRID_BAR = "#3a4050"
GRID_BEAT = "#242832"

STATUS_COLORS = {"connected": GOOD, "ready": GOOD, "listening": WARN, "opening": WARN, "error": BAD, "failed": BAD}


def mono_font(point_size: float = 0.0, bold: bool = False) -> QFont:
    """A fixed-pitch font (DejaVu Sans Mono where installed) for numbers that change while you watch them."""
    font = QFont("DejaVu Sans Mono")
    if not QFontDatabase.families() or "DejaVu Sans Mono" not in QFontDatabase.families():
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setStyleHint(QFont.StyleHint.Monospace)
    if point_size:
        font.setPointSizeF(point_size)
    font.setBold(bold)
    return font


STYLE_SHEET = f"""
QWidget {{ color: {TEXT}; font-size: 10pt; }}
QMainWindow, QWidget#central {{ background: {BACKGROUND}; }}
QFrame#card {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 8px; }}
QFrame#topbar {{ background: {PANEL}; border-bottom: 1px solid {BORDER}; }}
QLabel {{ background: transparent; }}
QLabel#cardTitle {{ color: {DIM}; font-size: 8.5pt; font-weight: 700; letter-spacing: 1.5px; }}
QLabel#sectionTitle {{ color: {FAINT}; font-size: 8pt; font-weight: 700; letter-spacing: 1px; }}
QLabel#dim {{ color: {DIM}; }}
QLabel#value {{ color: {TEXT}; }}
QLabel#big {{ font-size: 15pt; font-weight: 600; }}
QLabel#badge {{ color: {BACKGROUND}; background: {DIM}; border-radius: 4px; padding: 1px 6px; font-size: 8pt;
  font-weight: 700; }}
QLabel#logo {{ color: {ACCENT}; font-size: 15pt; font-weight: 800; letter-spacing: 3px; }}
QLabel#readout {{ background: {INPUT}; border: 1px solid {BORDER}; border-radius: 5px; padding: 3px 10px;
  color: {TEXT}; }}
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox {{ background: {INPUT}; border: 1px solid {BORDER}; border-radius: 5px;
  padding: 4px 6px; selection-background-color: {ACCENT_DARK}; min-height: 18px; }}
QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus, QComboBox:focus {{ border-color: {ACCENT}; }}
QLineEdit:disabled, QSpinBox:disabled, QComboBox:disabled {{ color: {FAINT}; }}
QComboBox::drop-down {{ border: none; width: 18px; }}
QComboBox QAbstractItemView {{ background: {RAISED}; border: 1px solid {BORDER}; selection-background-color:
  {ACCENT_DARK}; }}
QSpinBox::up-button, QSpinBox::down-button, QDoubleSpinBox::up-button, QDoubleSpinBox::down-button {{ width: 0px; }}
QPushButton, QToolButton {{ background: {RAISED}; border: 1px solid {BORDER}; border-radius: 5px; padding: 5px 12px; }}
QPushButton:hover, QToolButton:hover {{ border-color: {DIM}; }}
QPushButton:pressed, QToolButton:pressed {{ background: {INPUT}; }}
QPushButton:checked, QToolButton:checked {{ background: {ACCENT_DARK}; border-color: {ACCENT}; color: #1a1300; }}
QPushButton:disabled, QToolButton:disabled {{ color: {FAINT}; border-color: {RAISED}; }}
QPushButton#primary {{ background: {ACCENT}; color: #1a1300; border: none; font-weight: 700; padding: 8px 18px; }}
QPushButton#primary:hover {{ background: #ffb54f; }}
QPushButton#primary:disabled {{ background: {RAISED}; color: {FAINT}; }}
QPushButton#chip {{ background: {INPUT}; border: 1px dashed {BORDER}; padding: 4px 8px; color: {WAVE}; }}
QPushButton#chip:hover {{ border-color: {WAVE}; }}
QPushButton#chip:disabled {{ color: {FAINT}; }}
QPushButton#danger:hover {{ border-color: {BAD}; color: {BAD}; }}
QProgressBar {{ background: {INPUT}; border: 1px solid {BORDER}; border-radius: 4px; height: 8px; text-align: center;
  color: transparent; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QListView, QListWidget, QTreeWidget {{ background: {INPUT}; border: 1px solid {BORDER}; border-radius: 6px;
  outline: none; }}
QListWidget::item, QTreeWidget::item {{ padding: 4px; }}
QListWidget::item:selected, QTreeWidget::item:selected {{ background: {RAISED}; color: {TEXT}; }}
QHeaderView::section {{ background: {PANEL}; color: {DIM}; border: none; border-bottom: 1px solid {BORDER};
  padding: 4px; font-size: 8.5pt; }}
QSplitter::handle {{ background: {BACKGROUND}; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
QScrollBar::handle:vertical {{ background: {BORDER}; border-radius: 4px; min-height: 24px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ height: 0; width: 0; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 2px; }}
QScrollBar::handle:horizontal {{ background: {BORDER}; border-radius: 4px; min-width: 24px; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; color: {DIM}; }}
QToolTip {{ background: {RAISED}; color: {TEXT}; border: 1px solid {BORDER}; }}
QMenuBar {{ background: {PANEL}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: {RAISED}; }}
QMenu {{ background: {PANEL}; border: 1px solid {BORDER}; }}
QCheckBox::indicator {{ width: 14px; height: 14px; border: 1px solid {BORDER}; border-radius: 3px;
  background: {INPUT}; }}
QCheckBox::indicator:checked {{ background: {ACCENT}; border-color: {ACCENT}; }}
QCheckBox::indicator:indeterminate {{ border-color: {DIM}; background: qlineargradient(x1: 0, y1: 1, x2: 1, y2: 0,
  stop: 0 {DIM}, stop: 0.5 {DIM}, stop: 0.51 {INPUT}, stop: 1 {INPUT}); }}
QScrollArea#formScrollArea, QWidget#formScroll {{ background: transparent; }}
QSlider::groove:horizontal {{ height: 4px; background: {BORDER}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT_DARK}; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {ACCENT}; width: 12px; margin: -5px 0; border-radius: 6px; }}
QSlider#auto::sub-page:horizontal {{ background: {BORDER}; }}
QSlider#auto::handle:horizontal {{ background: {DIM}; }}
QPushButton#small {{ padding: 2px 8px; font-size: 8.5pt; }}
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: INPUT,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: RAISED,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: ACCENT_DARK,
        QPalette.ColorRole.HighlightedText: "#1a1300",
        QPalette.ColorRole.ToolTipBase: RAISED,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: FAINT,
    }
    for role, color in roles.items():
        palette.setColor(role, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(FAINT))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(FAINT))
    app.setPalette(palette)
    font = QFont("DejaVu Sans")
    font.setPointSizeF(10)
    app.setFont(font)
    app.setStyleSheet(STYLE_SHEET)
