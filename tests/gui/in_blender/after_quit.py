"""The next start after quit_during_job.py: open the sidebar's PartPacker tab and see what the
panel says about the job that quitting discarded."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Harness, settings_from_argv


def after_quit(ui: Harness):
    yield from ui.show_partpacker_tab()
    yield from ui.fresh_panels()
    ui.checkpoint("started")
    yield from ui.screenshot("after_quit")


Harness(settings_from_argv()).run(after_quit)
