"""The codec's residual vector quantizer: each stage codes what the stages before it left (EMA codebooks, dead
codes restarted from the batch, the commitment loss); under DDP the codebook statistics are summed over ranks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from engine.audio.codec import CodecConfig


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over data-parallel ranks (a no-op in one process): every rank then makes the same EMA update."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class VectorQuantizer(nn.Module):
    """One codebook, looked up in a small normalised space (DAC's factorised codes), updated by EMA (VQ-VAE-2).

    The residual ``[B, latent_dim, F]`` is projected to ``codebook_dim`` (1x1 conv) and L2-normalised; the code is
    the nearest normalised codebook entry (cosine similarity); its vector is projected back to ``latent_dim``.
    Unit vectors cannot shrink towards one code, and 8-dimensional lookups keep codebooks used with the small
    batches of CPU training. Entries are buffers moved by exponential moving averages of their assigned vectors,
    initialised by k-means on the first batch; entries no batch has used for ``dead_code_steps`` steps restart on
    random vectors of the batch (Jukebox's restarts; counted in steps, not EMA usage, so they act within tens of
    steps even when a batch holds fewer vectors than the codebook has entries).
    """

    embed: torch.Tensor  # [codebook_size, codebook_dim] (normalised on use)
    cluster_size: torch.Tensor  # [codebook_size] EMA of assignments per step
    embed_sum: torch.Tensor  # [codebook_size, codebook_dim] EMA of assigned vectors' sums
    idle_steps: torch.Tensor  # [codebook_size] training steps since each entry was last used
    initialized: torch.Tensor  # bool: k-means done

    def __init__(self, config: CodecConfig, eps: float = 1e-5) -> None:
        super().__init__()
        self.size, self.decay, self.patience, self.eps = (
            config.codebook_size, config.ema_decay, config.dead_code_steps, eps,
        )  # fmt: skip
        self.project_in = nn.Conv1d(config.latent_dim, config.codebook_dim, 1)
        self.project_out = nn.Conv1d(config.codebook_dim, config.latent_dim, 1)
        embed = F.normalize(torch.randn(config.codebook_size, config.codebook_dim), dim=1)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(config.codebook_size))
        self.register_buffer("embed_sum", embed.clone())
        self.register_buffer("idle_steps", torch.zeros(config.codebook_size))
        self.register_buffer("initialized", torch.tensor(False))

    def codebook(self) -> torch.Tensor:
        """The normalised entries ``[codebook_size, codebook_dim]``."""
        return F.normalize(self.embed, dim=1)

    def nearest(self, unit: torch.Tensor) -> torch.Tensor:
        """Index of the closest entry (largest cosine) for each row of ``unit [N, codebook_dim]``."""
        return (unit @ self.codebook().t()).argmax(dim=1)

    @torch.no_grad()
    def _init_kmeans(self, unit: torch.Tensor, iters: int = 10) -> None:
        pick = torch.randint(0, unit.shape[0], (self.size,), device=unit.device)
        centroids = unit[pick].clone()
        for _ in range(iters):  # spherical k-means
            idx = (unit @ centroids.t()).argmax(1)
            sums = torch.zeros_like(centroids).index_add_(0, idx, unit)
            filled = torch.bincount(idx, minlength=self.size) > 0
            centroids[filled] = F.normalize(sums[filled], dim=1)
        if _world_size() > 1:
            dist.broadcast(centroids, 0)
        counts = _all_reduce(torch.bincount((unit @ centroids.t()).argmax(1), minlength=self.size).float())
        counts = counts / _world_size()
        self.embed.copy_(centroids)
        self.cluster_size.copy_(counts)
        self.embed_sum.copy_(centroids * counts[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, unit: torch.Tensor, idx: torch.Tensor) -> None:
        counts = _all_reduce(torch.bincount(idx, minlength=self.size).to(unit.dtype))
        sums = _all_reduce(torch.zeros_like(self.embed).index_add_(0, idx, unit))
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.size * self.eps) * total
        self.embed.copy_(self.embed_sum / smoothed[:, None])
        self.idle_steps.add_(1).masked_fill_(counts > 0, 0)
        dead = self.idle_steps >= self.patience
        n_dead = int(dead.sum())
        if n_dead:  # restart dead entries on random vectors of this batch (DDP: rank 0's buffers win next step)
            pick = torch.randint(0, unit.shape[0], (n_dead,), device=unit.device)
            weight = float(total) / self.size  # as if used at the mean rate
            self.embed[dead] = unit[pick]
            self.embed_sum[dead] = unit[pick] * weight
            self.cluster_size[dead] = weight
            self.idle_steps[dead] = 0

    def _unit(self, residual: torch.Tensor) -> torch.Tensor:
        """``[B, latent_dim, F] -> [B, codebook_dim, F]`` projected and L2-normalised over channels."""
        return F.normalize(self.project_in(residual), dim=1)

    def forward(self, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[B, latent_dim, F] -> (quantized [B, latent_dim, F], codes [B, F], commitment loss)``; EMA update
        when training. The gradient reaches ``project_in`` and the encoder through the straight-through estimator."""
        B, _, T = residual.shape
        unit = self._unit(residual)
        flat = unit.detach().transpose(1, 2).reshape(B * T, -1).float()
        if self.training and not bool(self.initialized):
            self._init_kmeans(flat)
        idx = self.nearest(flat)
        if self.training:
            self._update(flat, idx)
        chosen = self.codebook()[idx].view(B, T, -1).transpose(1, 2).to(unit.dtype)
        commitment = F.mse_loss(unit, chosen.detach())
        straight = unit + (chosen - unit).detach()
        return self.project_out(straight), idx.view(B, T), commitment

    def encode(self, residual: torch.Tensor) -> torch.Tensor:
        """``[B, latent_dim, F] -> codes [B, F]``."""
        B, _, T = residual.shape
        unit = self._unit(residual).transpose(1, 2).reshape(B * T, -1).float()
        return self.nearest(unit).view(B, T)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, F] -> [B, latent_dim, F]``."""
        vectors = F.embedding(codes, self.codebook()).transpose(1, 2)
        out: torch.Tensor = self.project_out(vectors.to(self.project_out.weight.dtype))
        return out


class ResidualVectorQuantizer(nn.Module):
    """``n_codebooks`` quantizers, each coding what the previous ones left (residual VQ, SoundStream/EnCodec)."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantizer(config) for _ in range(config.n_codebooks))

    def _quantizers(self) -> list[VectorQuantizer]:
        return [layer for layer in self.layers if isinstance(layer, VectorQuantizer)]

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z [B, D, F] -> (quantized [B, D, F], codes [B, Q, F], mean commitment loss)`` (DAC-style residual:
        each stage codes ``z`` minus the earlier stages' outputs, and gradients flow through every stage)."""
        residual = z
        quantized = torch.zeros_like(z)
        codes, losses = [], []
        for layer in self._quantizers():
            q, idx, loss = layer(residual)
            residual = residual - q
            quantized = quantized + q
            codes.append(idx)
            losses.append(loss)
        return quantized, torch.stack(codes, dim=1), torch.stack(losses).mean()

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        residual = z
        codes = []
        for layer in self._quantizers():
            idx = layer.encode(residual)
            residual = residual - layer.decode(idx).to(residual.dtype)
            codes.append(idx)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        parts = [layer.decode(codes[:, q]) for q, layer in enumerate(self._quantizers())]
        return torch.stack(parts).sum(0)
