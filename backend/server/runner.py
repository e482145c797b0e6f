"""The seam between the web front end and whatever runs the jobs.

The Gradio app calls only these two methods, from a worker thread, one call per request.
`PartPackerPipeline` is one (the models in this process); a fleet passes an object that sends
the same calls to Ray Serve replicas. `on_progress` and `should_cancel` are called from the
thread that called `generate`: a runner that works elsewhere relays them there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..errors import CancelCheck
from ..params import GenerationParams
from ..pipeline import GenerationResult, ProgressCallback


class JobRunner(Protocol):
    def prepare(self, image: Path, preview: Path) -> Any:
        """Write the RGBA 518x518 segmentation of `image` to `preview` (PNG)."""
        ...

    def generate(
        self,
        image: Path,
        output_dir: Path,
        params: GenerationParams,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> GenerationResult:
        """Generate the parts of `image` into `output_dir` (parts.glb among them); raise
        Cancelled at the next check once `should_cancel()` is true."""
        ...
