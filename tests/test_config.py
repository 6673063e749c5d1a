import pytest
import torch

from vae_core import VAEConfig, VAEError
from vae_core.config import config_fields, parse_int_list
from vae_core.objectives import weighted_kl
from vae_core.schedules import kl_weight


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"model": "rnn"}, "model must be one of mlp, conv"),
        ({"likelihood": "poisson"}, "likelihood must be one of"),
        ({"beta_schedule": "sine"}, "constant, warmup, cyclical"),
        ({"objective": "factor"}, "objective must be one of beta-vae, beta-tcvae, capacity"),
        ({"device": "tpu"}, "device must be one of"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"hidden_sizes": (0,)}, "hidden_sizes"),
        ({"beta": -0.5}, "beta must be >= 0"),
        ({"epochs": 0}, "epochs must be > 0"),
        ({"batch_size": -1}, "batch_size"),
        ({"lr": 0}, "lr must be > 0"),
        ({"sigma": 0}, "sigma"),
        ({"channels": 2}, "channels must be one of 1, 3"),
        ({"cycle_ramp": 1.5}, "cycle_ramp"),
        ({"binarize": True, "likelihood": "gaussian"}, "binarize"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\) \(got 1.0\)"),
        ({"val_fraction": 0.6}, "val_fraction must be from 0 to 0.5"),
        ({"latent_dim": 2.5}, "latent_dim must be an integer from 1 to 512"),
        ({"image_size": 2}, "image_size must be an integer from 4 to 256"),
        ({"conv_channels": (32, 0)}, "conv_channels must be integers >= 1, comma-separated"),
        ({"hidden_sizes": ()}, "hidden_sizes must be integers >= 1"),
        ({"capacity_epochs": 0}, "capacity_epochs must be > 0"),
        ({"cycles": 0}, "cycles must be > 0"),
        ({"amp": "yes"}, "amp must be True or False"),
        ({"dataset": 3}, "dataset must be one of mnist5k, .*folder:PATH"),
        ({"data_root": 3}, "data_root must be a text"),
    ],
)
def test_invalid_parameters_are_clear_errors(changes, message):
    with pytest.raises(VAEError, match=message):
        VAEConfig(**changes)


def test_optional_fields_take_none_and_their_range():
    cfg = VAEConfig(image_size=None, channels=3, capacity_epochs=2.5, conv_channels=None, data_root=None)
    assert (cfg.image_size, cfg.channels, cfg.capacity_epochs) == (None, 3, 2.5)


def test_int_lists_are_read_from_text():
    assert parse_int_list("512, 256") == (512, 256) and parse_int_list("") == ()
    with pytest.raises(VAEError, match="expected comma-separated integers, got '5x'"):
        parse_int_list("5x")


def test_field_metadata_says_what_a_field_accepts():
    fields = {f.name: f for f in config_fields()}
    assert (fields["latent_dim"].type, fields["latent_dim"].optional) == (int, False)
    assert (fields["capacity_epochs"].type, fields["capacity_epochs"].optional) == (float, True)
    assert fields["hidden_sizes"].type is tuple and fields["amp"].type is bool
    assert fields["cycle_ramp"].accepts() == "in (0, 1]"
    assert fields["latent_dim"].describe() == "dimensions of z (an integer from 1 to 512; default 16)"
    assert fields["epochs"].option.limit == "epochs" and fields["sigma"].option.advanced


def test_round_trip_through_plain_dict():
    cfg = VAEConfig(model="conv", latent_dim=10, hidden_sizes=(256,), conv_channels=(32, 64), beta=4.0)
    d = cfg.to_dict()
    assert d["hidden_sizes"] == [256] and isinstance(d["conv_channels"], list)
    assert VAEConfig.from_dict(d) == cfg


def test_unknown_field_is_an_error():
    with pytest.raises(VAEError, match="unknown config fields: wings"):
        VAEConfig.from_dict({"wings": 2})


def test_likelihood_names():
    assert VAEConfig().likelihood_name == "Bernoulli on grey levels"
    assert VAEConfig(binarize=True).likelihood_name == "Bernoulli on binarized data"
    assert "fixed sigma=0.1" in VAEConfig(likelihood="gaussian").likelihood_name
    assert "learned pixel" in VAEConfig(likelihood="gaussian", sigma_mode="pixel").likelihood_name


def _betas(cfg, spe=10):
    return [kl_weight(cfg, s, spe).beta for s in range(cfg.epochs * spe)]


def test_constant_schedule():
    assert set(_betas(VAEConfig(beta=3.0, epochs=2))) == {3.0}


def test_warmup_schedule_rises_linearly_then_holds():
    b = _betas(VAEConfig(beta=2.0, beta_schedule="warmup", warmup_epochs=2, epochs=4))
    assert b[0] == 0.0 and b[10] == pytest.approx(1.0) and b[20] == 2.0 and b[-1] == 2.0
    assert all(x <= y for x, y in zip(b, b[1:], strict=False))


def test_cyclical_schedule_restarts_each_cycle():
    cfg = VAEConfig(beta=1.0, beta_schedule="cyclical", cycles=4, cycle_ramp=0.5, epochs=4)
    b = _betas(cfg)  # 40 steps, 4 cycles of 10: ramp over 5 steps, hold 5
    assert [b[i] for i in (0, 10, 20, 30)] == [0.0] * 4
    assert b[5] == 1.0 and b[9] == 1.0 and b[2] == pytest.approx(0.4)


def test_the_capacity_objective_ramps_c_and_uses_gamma():
    cfg = VAEConfig(objective="capacity", capacity_max=20.0, capacity_epochs=2, gamma=50.0, epochs=4)
    w0, w_mid, w_end = (kl_weight(cfg, s, 10) for s in (0, 10, 35))
    assert (w0.capacity, w_mid.capacity, w_end.capacity) == (0.0, 10.0, 20.0)
    assert float(weighted_kl(torch.tensor(4.0), w_mid, cfg)) == pytest.approx(50.0 * 6.0)
    assert float(weighted_kl(torch.tensor(4.0), kl_weight(cfg, 10, 10, beta=7.0), cfg)) == pytest.approx(300.0)
    assert kl_weight(cfg.replace(objective="beta-vae"), 10, 10).capacity is None  # schedules only move numbers


def test_the_old_capacity_schedule_is_the_capacity_objective_and_the_command_line_still_takes_it():
    old = VAEConfig(beta_schedule="capacity", capacity_max=20.0, gamma=50.0)
    assert (old.objective, old.beta_schedule) == ("capacity", "constant")
    assert VAEConfig.from_dict({**VAEConfig().to_dict(), "beta_schedule": "capacity"}).objective == "capacity"
    from vae_core.cli import build_parser

    args = build_parser().parse_args(["train", "--beta-schedule", "capacity"])
    assert args.beta_schedule == "capacity"
    with pytest.raises(VAEError, match="capacity is an objective of its own"):
        VAEConfig(objective="beta-tcvae", beta_schedule="capacity")


def test_live_beta_overrides_target():
    cfg = VAEConfig(beta=1.0, beta_schedule="warmup", warmup_epochs=1, epochs=2)
    assert kl_weight(cfg, 15, 10, beta=6.0).beta == 6.0
