"""The setup run in progress (environment, weights or check) and how the last one ended. No bpy.

One run at a time. `poll()` is a plain function: the UI's timer calls it, scripts and tests
call `wait()`. A run's success callback runs on the main thread, from `poll()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..polling import wait_until
from ..problems import Problem
from .runner import POLL_INTERVAL, Planning, RunStatus, Step, StepRunner


@dataclass
class Activity:
    runner: StepRunner
    on_success: Callable[[StepRunner], None] | None = None

    @property
    def status(self) -> RunStatus:
        return self.runner.status


class SetupState:
    def __init__(self) -> None:
        self.activity: Activity | None = None
        self.last: Activity | None = None

    def start(
        self,
        steps: Sequence[Step | Planning],
        on_success: Callable[[StepRunner], None] | None = None,
    ) -> Activity:
        if self.activity is not None:
            raise Problem(
                f"{self.activity.status.label} is still running", "wait for it or cancel it"
            )
        self.activity = Activity(StepRunner(steps), on_success)
        return self.activity

    def poll(self) -> float | None:
        """Advance the run; seconds until the next poll, None when nothing runs any more."""
        activity = self.activity
        if activity is None:
            return None
        if activity.runner.poll() is not None:
            return POLL_INTERVAL
        self.activity, self.last = None, activity
        if activity.status.succeeded and activity.on_success is not None:
            activity.on_success(activity.runner)
        return None if self.activity is None else POLL_INTERVAL

    def wait(self, timeout: float | None = None) -> Activity | None:
        """Poll until nothing runs (a success callback may start a follow-up run); past
        `timeout` the run is cancelled."""
        wait_until(
            lambda: self.activity is None,
            self.poll,
            timeout=timeout,
            what="the setup",
            on_timeout=self.cancel,
        )
        return self.last

    def cancel(self) -> bool:
        if self.activity is None:
            return False
        self.activity.runner.cancel()
        self.poll()
        return True


_STATE = SetupState()


def current() -> SetupState:
    return _STATE
