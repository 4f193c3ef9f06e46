"""The GPT's preallocated key/value cache (:mod:`engine.nn.model` writes it, :mod:`engine.nn.model_fast` reads it).

Its own module so that the fast decode path, which the model calls, needs nothing from the model at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only: the model and the fast path import this module
    from engine.nn.model import GPTConfig
    from engine.nn.model_fast import DecodePlan


class KVCache:
    """Preallocated keys and values for every layer: ``[layers, B, heads, capacity, head_dim]`` (``capacity``: the
    positions a job needs, at most the model's ``block_size``, which is the default; plus ``spare`` positions that
    only padding uses, :mod:`engine.nn.ragged`).

    ``shared`` > 0: the first ``shared`` positions hold a prompt every row shares, stored in row 0 only
    (:func:`engine.nn.model_fast.prefill_shared`); :meth:`materialize` copies it into every row.
    """

    def __init__(
        self,
        config: GPTConfig,
        batch_size: int,
        device: torch.device,
        dtype: torch.dtype,
        capacity: int | None = None,
        spare: int = 0,
    ) -> None:
        head_dim = config.n_embd // config.n_head
        positions = config.block_size if capacity is None else min(config.block_size, capacity)
        if positions < 1:
            raise ValueError(f"a cache needs room for at least one position, got capacity {capacity}")
        positions += max(0, spare)  # beyond the context: padding of rows that stand at different lengths
        shape = (config.n_layer, batch_size, config.n_head, positions, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions filled so far (the same for every row of the batch)
        self.shared = 0  # leading positions stored in row 0 only
        self.plan: DecodePlan | None = None  # the fast path's weights for this cache's job

    @classmethod
    def view_of(cls, cache: KVCache, rows: slice) -> KVCache:
        """A cache over some rows of ``cache``'s tensors (writes land in ``cache``); its own length."""
        view = cls.__new__(cls)
        view.keys, view.values = cache.keys[:, rows], cache.values[:, rows]
        view.length, view.shared, view.plan = cache.length, 0, cache.plan
        return view

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[3])

    def keep_rows(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in that order) as rows ``0..len(rows)-1``: later steps run on fewer rows.

        In place (no new allocation): only the rows that change place are copied (a row kept where it is costs
        nothing), then the tensors become views of the first ``len(rows)``. A shared prompt stays in row 0,
        whichever rows are kept (the rows' own positions after it are what moves)."""
        if not rows:
            raise ValueError("keep_rows needs at least one row")
        moved = [(place, row) for place, row in enumerate(rows) if place != row]
        if moved:
            length, shared = self.length, self.shared
            device = self.keys.device
            places = torch.tensor([place for place, _ in moved], dtype=torch.long, device=device)
            sources = torch.tensor([row for _, row in moved], dtype=torch.long, device=device)
            for tensor in (self.keys, self.values):
                tensor[:, places, :, shared:length] = tensor[:, sources, :, shared:length]  # the right side: a copy
        self.keys, self.values = self.keys[:, : len(rows)], self.values[:, : len(rows)]

    def materialize(self) -> None:
        """Copy the shared prompt's keys/values from row 0 into every row (the module path reads them there)."""
        if self.shared:
            self.keys[:, 1:, :, : self.shared] = self.keys[:, :1, :, : self.shared]
            self.values[:, 1:, :, : self.shared] = self.values[:, :1, :, : self.shared]
            self.shared = 0
