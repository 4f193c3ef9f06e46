"""History: earlier jobs from the job folder on disk, newest first; double-click one to show its variants."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from gui import theme
from gui.core.models import HistoryRow, HistoryState, JobsState, Models
from gui.core.session import Session
from gui.widgets import QtCard, QtElidedLabel, row

_STATUS_COLORS = {"done": theme.GOOD, "failed": theme.BAD, "cancelled": theme.DIM, "running": theme.WARN}


class QtHistoryPanel(QtCard):
    def __init__(self, models: Models, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("History", parent)
        self.session = session
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: session.refresh_history())
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Keep the jobs in another folder")
        self.folder_button.clicked.connect(self.choose_folder)
        self.folder_button.setObjectName("small")
        self.header.addWidget(self.refresh_button)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["When", "Region", "Bars×V", "Status"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.itemActivated.connect(self._open)
        self.tree.itemDoubleClicked.connect(self._open)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._show_menu)
        self.folder = QtElidedLabel(mode=Qt.TextElideMode.ElideMiddle)  # a long path never widens the window
        self.folder.setObjectName("dim")
        self.body.addWidget(self.tree, 1)
        bottom = row(self.folder, self.folder_button, spacing=6)
        bottom.setStretchFactor(self.folder, 1)
        self.body.addLayout(bottom)
        header = self.tree.header()
        if header is not None:
            header.setStretchLastSection(False)
            header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
            header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
            header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
            header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        models.history.subscribe(self.show_history)
        models.jobs.subscribe(self.show_live)

    def show_history(self, state: HistoryState) -> None:
        self.tree.clear()
        mono = theme.mono_font(9)
        for job in state.rows:
            item = QTreeWidgetItem([_when(job), job.region_name, f"{job.bars} × {job.variants}", job.status])
            item.setData(0, Qt.ItemDataRole.UserRole, str(job.job_dir))
            item.setToolTip(0, f"{job.created}  {job.job_id}")
            item.setToolTip(1, f"{job.region_name}: {job.mode}, {job.model}")
            item.setToolTip(3, job.message or job.status)
            item.setFont(0, mono)
            item.setFont(2, mono)
            item.setForeground(3, QColor(_STATUS_COLORS.get(job.status, theme.DIM)))
            item.setData(3, Qt.ItemDataRole.UserRole, job.job_id)
            self.tree.addTopLevelItem(item)
        self.show_live(self.session.models.jobs.value)
        self.folder.set_full_text(f"Jobs folder: {state.out_dir}" if state.out_dir else "")

    def show_live(self, jobs: JobsState) -> None:
        """A job running here shows its real status ("running 67%"): its job.json says "queued" until it ends."""
        live = {r.job_id: r for r in jobs.rows}
        on_disk = {r.job_id: r.status for r in self.session.models.history.value.rows}
        for index in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(index)
            if item is None:
                continue
            job_id = str(item.data(3, Qt.ItemDataRole.UserRole))
            row = live.get(job_id)
            # running here: its progress; ended here: how (job.json may not say it yet); else what job.json says
            status = f"running {row.fraction * 100:.0f}%" if row is not None and row.status == "running" else ""
            status = status or (row.status if row is not None else on_disk.get(job_id, ""))
            item.setText(3, status)
            item.setForeground(3, QColor(_STATUS_COLORS.get(status.split(" ")[0], theme.DIM)))

    def job_menu(self, item: QTreeWidgetItem) -> QMenu:
        """The right-click menu of a job: open it, or delete it to the trash."""
        job_dir = Path(str(item.data(0, Qt.ItemDataRole.UserRole)))
        menu = QMenu(self)
        for text, action in (
            ("Open", lambda: self.session.open_job(job_dir)),
            ("Delete job (to the trash)", lambda: self.session.delete_job(job_dir)),
        ):
            menu.addAction(text).triggered.connect(lambda _checked=False, act=action: act())  # type: ignore[union-attr]
        return menu

    def _show_menu(self, point: QPoint) -> None:
        item = self.tree.itemAt(point)
        if item is not None:
            viewport = self.tree.viewport()
            self.job_menu(item).popup(viewport.mapToGlobal(point) if viewport is not None else point)

    def choose_folder(self) -> None:
        start = str(self.session.out_dir)
        folder = QFileDialog.getExistingDirectory(self, "Keep the jobs in", start)
        if folder:
            self.session.set_jobs_dir(Path(folder))

    def _open(self, item: QTreeWidgetItem | None, column: int = 0) -> None:
        if item is None:
            return
        self.session.open_job(Path(str(item.data(0, Qt.ItemDataRole.UserRole))))


def _when(job: HistoryRow) -> str:
    try:
        created = datetime.fromisoformat(job.created)
    except ValueError:
        return job.created[:16]
    today = datetime.now(created.tzinfo).date()
    return created.strftime("%H:%M") if created.date() == today else created.strftime("%d %b")
