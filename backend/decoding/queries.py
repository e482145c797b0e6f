"""Asking an occupancy field for values in chunks: their size, padding, cancel and progress."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from ..device import Placement
from ..errors import CancelCheck, Cancelled
from ..models import VAEConfig

log = logging.getLogger(__name__)

Field = Callable[[torch.Tensor], torch.Tensor]
"""Maps float32 points [N, 3] to float32 values [N]."""
ChunkCallback = Callable[[int, int], None]
"""Told (points done, points in all) after each chunk."""

DEFAULT_CHUNK_SIZE = 8192
MIN_CHUNK_SIZE = 1024
MAX_CHUNK_SIZE = 1 << 18
"""Large enough to keep a GPU busy; small enough that padding each level's last chunk costs
little (at grid 384 the exact strategy's padded queries are 5% over its queries, 2^20 would
be 18%: bench/pipeline.py --counts-only)."""
LOW_MEMORY_QUERY_BYTES = 2 << 30
"""Device memory for one VAE query chunk in low-memory mode."""


class ChunkedQueries:
    """Evaluates a field in chunks of one shape: the last chunk is padded with copies of its last
    point and the padding's values dropped, so the query sees a single input shape (one kernel
    choice for every point, one graph for a compiled query).

    A chunk that runs out of device memory is retried in halves down to MIN_CHUNK_SIZE before
    the error stands; the smaller size is kept for later calls."""

    def __init__(
        self, field: Field, chunk_size: int, should_cancel: CancelCheck | None = None
    ) -> None:
        self.field, self.chunk_size, self.should_cancel = field, chunk_size, should_cancel

    def __call__(self, points: torch.Tensor, on_chunk: ChunkCallback | None = None) -> torch.Tensor:
        values = torch.empty(points.shape[0], dtype=torch.float32, device=points.device)
        start = 0
        while start < points.shape[0]:
            if self.should_cancel is not None and self.should_cancel():
                raise Cancelled("generation cancelled while decoding the volumes")
            try:
                chunk = points[start : start + self.chunk_size]
                values[start : start + chunk.shape[0]] = self._query_padded(chunk)
            except torch.OutOfMemoryError:
                if self.chunk_size <= MIN_CHUNK_SIZE:
                    raise
                self.chunk_size //= 2
                log.warning("out of device memory: querying %d points a chunk", self.chunk_size)
                continue
            start += chunk.shape[0]
            if on_chunk is not None:
                on_chunk(start, points.shape[0])
        return values

    def _query_padded(self, chunk: torch.Tensor) -> torch.Tensor:
        missing = self.chunk_size - chunk.shape[0]
        if missing:
            chunk = torch.cat([chunk, chunk[-1:].expand(missing, 3)])
        return self.field(chunk)[: self.chunk_size - missing].float()


def query_chunk_size(placement: Placement, config: VAEConfig, low_memory: bool = False) -> int:
    """As many points per query as fit in half the free device memory (at most
    LOW_MEMORY_QUERY_BYTES in low-memory mode), between DEFAULT_CHUNK_SIZE and MAX_CHUNK_SIZE.
    Per point: the query's activations, and attention scores in case no fused kernel runs."""
    if placement.device.type != "cuda":
        return DEFAULT_CHUNK_SIZE  # CPU attention runs unfused: bigger chunks only cost memory
    free, _ = torch.cuda.mem_get_info(placement.device)
    budget = min(free // 2, LOW_MEMORY_QUERY_BYTES) if low_memory else free // 2
    activations = 12 * config.query_hidden_dim * placement.dtype.itemsize
    scores = 4 * config.query_num_heads * config.latent_size
    return int(min(max(budget // (activations + scores), DEFAULT_CHUNK_SIZE), MAX_CHUNK_SIZE))
