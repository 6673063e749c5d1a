"""A training run's commands, once: pause, resume, stop, one step (`advance`), one epoch
(`advance_epoch`), slow motion (`set_delay`) and β (`set_beta`).

Each is one entry of COMMANDS: what its arguments must be (checked here, once, wherever the command
is given) and its name, which is the `Trainer` method that carries it out. `vae_core.job.TrainingJob`
(a run in a thread) and `ProcessTrainingJob` (a run in a child process) hand a checked command on to
the trainer by name (directly, or over the child's pipe), so a new command is one entry here and one
method of the trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vae_core.config import check_option
from vae_core.errors import VAEError

MAX_DELAY_S = 10.0  # slow motion's longest wait after a step


def _none() -> tuple:
    return ()


def _steps(steps: int = 1) -> tuple:
    if steps < 1:
        raise VAEError(f"steps must be >= 1 (got {steps})")
    return (int(steps),)


def _delay(seconds: float) -> tuple:
    if not 0 <= seconds <= MAX_DELAY_S:
        raise VAEError(f"the slow-motion delay must be from 0 to {MAX_DELAY_S:g} s (got {seconds})")
    return (float(seconds),)


def _beta(beta: float) -> tuple:
    check_option("beta", beta)
    return (float(beta),)


@dataclass(frozen=True)
class Command:
    check: Callable[..., tuple]  # the command's arguments -> the same, normalised; VAEError if out of range
    while_paused: bool = False  # only has an effect while the run is paused (a step budget)


COMMANDS: dict[str, Command] = {
    "pause": Command(_none),  # pause after the current step
    "resume": Command(_none),  # go on at full speed
    "stop": Command(_none),  # stop, saving the checkpoint
    "advance": Command(_steps, while_paused=True),  # (steps): this many more steps, then paused again
    "advance_epoch": Command(_none, while_paused=True),  # to the end of the epoch, then paused again
    "set_delay": Command(_delay),  # (seconds): slow motion, a wait after every step (0: full speed)
    "set_beta": Command(_beta),  # (beta): the β schedule's target from now on
}


def checked(name: str, *args) -> tuple:
    """Command `name`'s arguments, checked and normalised (VAEError: an unknown command, or a value out
    of range)."""
    try:
        command = COMMANDS[name]
    except KeyError:
        raise VAEError(f"unknown command {name!r}; the commands are {', '.join(COMMANDS)}") from None
    return command.check(*args)
