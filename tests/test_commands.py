"""A run's commands are one table (vae_core/commands.py, issue 34 point 3): the Trainer carries each out,
the thread job and the child-process job pass each on by name, and each value is checked by the one
entry, with the same message wherever it is given."""

import pytest

from vae_core import Trainer, VAEError
from vae_core.commands import COMMANDS, checked
from vae_core.job import ProcessTrainingJob, TrainingJob

from .conftest import tiny_config

BAD = {"advance": (0,), "set_delay": (11.0,), "set_beta": (-1.0,)}


def test_every_command_is_a_method_of_the_trainer_and_of_both_jobs():
    for name in COMMANDS:
        for kind in (Trainer, TrainingJob, ProcessTrainingJob):
            assert callable(getattr(kind, name, None)), (kind.__name__, name)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_the_same_one_line_error_from_the_table_the_trainer_and_a_job(name, digits, tmp_path):
    with pytest.raises(VAEError) as from_table:
        checked(name, *BAD[name])
    trainer = Trainer(tiny_config(epochs=1), bundle=digits)
    job = TrainingJob(tiny_config(epochs=1), tmp_path / "run.pt", bundle=digits)  # never started
    job.pause()  # one step only counts while paused: so the check, not the state, refuses it
    for target in (trainer, job):
        with pytest.raises(VAEError) as given:
            getattr(target, name)(*BAD[name])
        assert str(given.value) == str(from_table.value)
    assert job._pending == [("pause", ())]  # nothing refused was kept for the run


def test_a_job_shows_each_command_at_once_and_hands_them_on_in_order(digits, tmp_path):
    job = TrainingJob(tiny_config(epochs=1), tmp_path / "run.pt", bundle=digits)  # never started: commands wait
    job.advance(3)  # running: one step does nothing
    job.set_beta(2)
    job.set_delay(0)
    job.pause()
    job.advance(2)
    assert job._pending == [("set_beta", (2.0,)), ("set_delay", (0.0,)), ("pause", ()), ("advance", (2,))]
    assert (job._beta, job._paused, job._stepping) == (2.0, True, True)
    with pytest.raises(VAEError, match="unknown command 'explode'"):
        checked("explode")
