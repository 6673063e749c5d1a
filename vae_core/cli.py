"""Command line: `python -m vae_core train | eval | info | export | anomaly-benchmark | probe | disentanglement`.

Bad arguments or files print one line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from vae_core.checkpoint import Checkpoint, clean_stale_temp_files, load_checkpoint
from vae_core.config import (
    ConfigField,
    VAEConfig,
    config_fields,
    parse_int_list,
)
from vae_core.data import load_for_config
from vae_core.device import flush_subnormals
from vae_core.errors import VAEError
from vae_core.evaluate import evaluate
from vae_core.library import checkpoint_dir, default_out_path, summary
from vae_core.presets import PRESETS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's default prints usage too)
        raise VAEError(message)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = parse_int_list(text)
    except VAEError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m vae_core", description="Train, evaluate and inspect beta-VAEs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a VAE and save a checkpoint")
    _add_config_flags(t)
    t.add_argument("--out", default=None, help="checkpoint path (default: a name under checkpoints/)")
    t.add_argument("--resume", default=None, help="continue the run saved in this checkpoint")
    t.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="train one of the shipped models (saved to checkpoints/NAME.pt)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--memory-budget", default=None, metavar="SIZE",
                   help="data whose images (float32) take more than this (e.g. 4GB) is streamed through a "
                   "DataLoader instead of held in memory (default: $VAE_MEMORY_BUDGET, else half the free "
                   "memory)")

    for name, text in (("eval", "test negative ELBO, reconstruction and KL (nats)"),
                       ("info", "config, data and history summary"),
                       ("checkup", "is the model healthy? its figures, the aggregate posterior against the "
                        "prior, and the tutorial mistakes that show from outside, each with its evidence")):
        s = sub.add_parser(name, help=text)
        s.add_argument("checkpoint")
        s.add_argument("--json", action="store_true", help="print one JSON object")
        if name in ("eval", "checkup"):
            s.add_argument("--data-root", default=None, help="where torchvision datasets live")
        if name == "eval":
            s.add_argument("--iw-samples", type=_positive_int, nargs="?", const=1000, default=None,
                           metavar="K", help="also estimate -log p(x) by importance weighting with K "
                           "samples per image (Burda et al. 2016; K = 1000 when the flag is bare)")
    _add_eval_commands(sub)
    return p


def _add_config_flags(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = (),
                      defaults: dict | None = None) -> None:
    """One flag per `VAEConfig` field (`latent_dim` -> `--latent-dim`) but those in `skip`, typed and
    explained by the field's Option (its help naming `defaults[name]` where given, else the field's
    default); default None means "not given", so a preset or a resumed run keeps its value."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in config_fields():
        if f.name in skip:
            continue
        if f.option.group not in groups:
            groups[f.option.group] = parser.add_argument_group(f"{f.option.group} (the run's config)")
        text = f.describe((defaults or {}).get(f.name, ...))
        groups[f.option.group].add_argument(f.flag, default=None, help=text.replace("%", "%%"), **_flag_kind(f))


def _flag_kind(f: ConfigField) -> dict:
    if f.type is bool:  # --amp and --no-amp: a resumed run or a preset can turn an option off too
        return {"action": argparse.BooleanOptionalAction}
    if f.type is tuple:
        return {"type": _int_list, "metavar": "N,N"}
    if f.option.choices and not f.option.open_choices:
        return {"type": f.type, "choices": f.option.choices + f.option.legacy}
    return {"type": f.type}


ONE_CLASS_FIXED = ("dataset", "image_size", "channels")  # config fields anomaly-benchmark does not take


def _add_eval_commands(sub) -> None:
    from vae_core.anomaly import SCORES
    from vae_core.protocols import ONE_CLASS_DEFAULTS

    a = sub.add_parser("anomaly-benchmark", help="one-class AUROC: a VAE per class, the rest as anomalies")
    a.add_argument("--dataset", default="mnist5k", help="a labelled dataset (default mnist5k)")
    # the run's options are VAEConfig's flags, as for train, with the protocol's defaults (the data's
    # own size and channels: the benchmark loads the dataset as it is)
    _add_config_flags(a, skip=ONE_CLASS_FIXED, defaults={
        **ONE_CLASS_DEFAULTS, "model": "conv (mlp for images the conv model cannot take)",
        "hidden_sizes": "256 (conv), 512,256 (mlp)", "binarize": "off (on: the Bernoulli likelihood)"})
    a.add_argument("--score", choices=SCORES, default="nelbo",
                   help="nelbo (default), recon (at the posterior mean) or iw (importance-weighted NLL)")
    a.add_argument("--iw-samples", type=_positive_int, default=64, metavar="K",
                   help="importance samples per image for --score iw (default 64)")
    a.add_argument("--classes", type=_int_list, default=None, help="normal classes to run, e.g. 0,1 "
                   "(default all)")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.add_argument("--quiet", action="store_true", help="no per-class progress on stderr")

    pr = sub.add_parser("probe", help="linear-probe accuracy: latent means vs pixels vs PCA")
    pr.add_argument("checkpoint")
    pr.add_argument("--labels", type=_int_list, default=(10, 100, 1000),
                    help="labelled training images per probe, comma-separated (default 10,100,1000)")
    pr.add_argument("--repeats", type=_positive_int, default=1, help="draws averaged per label count")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--data-root", default=None, help="where torchvision datasets live")
    pr.add_argument("--json", action="store_true", help="print one JSON object")

    dis = sub.add_parser("disentanglement", help="MIG of the latent code (datasets with factors: sprites)")
    dis.add_argument("checkpoint")
    dis.add_argument("--max-points", type=_positive_int, default=10000,
                     help="test images encoded (a seeded subsample when there are more)")
    dis.add_argument("--seed", type=int, default=0)
    dis.add_argument("--json", action="store_true", help="print one JSON object")

    ex = sub.add_parser("export", help="write a checkpoint's decoder (z -> pixels in [0, 1]) or encoder "
                                       "(images in [0, 1] -> mu, logvar) as ONNX")
    ex.add_argument("checkpoint")
    ex.add_argument("--onnx", required=True, metavar="OUT.onnx", help="where to write the graph")
    ex.add_argument("--part", choices=("decoder", "encoder"), default="decoder",  # export.PARTS
                    help="decoder: z (N x D) -> image means (N x C x H x W); encoder: images (N x C x H x W) in "
                         "[0, 1] -> mu and logvar (N x D each)")
    ex.add_argument("--json", action="store_true", help="print the graph's metadata as JSON")

    fl = sub.add_parser("film", help="a checkpoint's film (the codes of fixed test images, samples and "
                        "reconstructions as it trained): its frames, and an animated GIF of it")
    fl.add_argument("checkpoint")
    fl.add_argument("--gif", default=None, metavar="OUT.gif", help="write the film as an animated GIF (for slides)")
    fl.add_argument("--frame-ms", type=_positive_int, default=120, help="GIF: milliseconds per frame (default 120)")
    fl.add_argument("--size", choices=("web", "presentation"), default="web",
                    help="GIF: web (240 px map, small type; the default) or presentation (a 1280x720 slide, "
                         "type readable on a projector)")
    fl.add_argument("--json", action="store_true", help="print one JSON object")

    im = sub.add_parser("import", help="make a checkpoint of a VAE trained elsewhere (the pytorch/examples VAE's "
                        "state_dict, a pythae folder, an ONNX pair of an MLP VAE), scored on a dataset's test split")
    im.add_argument("source", help="the model's weights file, pythae's saved folder, or a folder with encoder.onnx, "
                    "decoder.onnx and manifest.json (read as data: no code of the model's author runs)")
    im.add_argument("--dataset", required=True, help="the data to explore it on (its test split scores it), e.g. "
                    "mnist5k, mnist or fashion-mnist for 28x28 grey models")
    im.add_argument("--name", default=None, help="the checkpoint's name in the library (default: the file's stem)")
    im.add_argument("--out", default=None, help="where to write the checkpoint (default: the library, NAME.pt)")
    im.add_argument("--json", action="store_true", help="print one JSON object")

    rep = sub.add_parser("report", help="measure the shipped checkpoints; write docs/report.md and pictures")
    rep.add_argument("--checkpoints", default=None,
                     help="where the shipped checkpoints are (default: the checkpoint library)")
    rep.add_argument("--docs", default="docs", help="where the report and its pictures go")
    rep.add_argument("--iw-samples", type=_positive_int, default=1000, help="importance samples per image")
    rep.add_argument("--baseline-epochs", type=int, default=50,
                     help="epochs for the pytorch/examples MLP baseline (0: leave it out)")
    rep.add_argument("--anomaly-json", default=None,
                     help="an `anomaly-benchmark --json` output to include (it takes minutes to produce; "
                          "without it the report keeps the one its report.json last recorded)")
    rep.add_argument("--readme", default="README.md", help="README whose report section is replaced")


CONFIG_ARGS = tuple(f.name for f in config_fields())  # every field people set


def cmd_train(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in CONFIG_ARGS if getattr(args, k) is not None}
    resume: Checkpoint | None = None
    if args.resume:
        resume = load_checkpoint(args.resume)
        if "dataset" in given:  # as the run stored it (vae_core.train: absolute)
            given["dataset"] = VAEConfig(dataset=given["dataset"]).with_absolute_paths().dataset
        fixed = set(given) - {"epochs", "device", "data_root"}
        changed = sorted(k for k in fixed if getattr(resume.config, k) != given[k])
        if changed:
            raise VAEError(f"--resume continues a run as configured; cannot change {', '.join(changed)}")
        config = resume.config.replace(**given)
        out = Path(args.out) if args.out else Path(args.resume)
    elif args.preset:
        config = VAEConfig(**{**PRESETS[args.preset], "extra": {"preset": args.preset}, **given})
        out = Path(args.out) if args.out else checkpoint_dir() / f"{args.preset}.pt"
    else:
        config = VAEConfig(**given)
        out = Path(args.out) if args.out else default_out_path(config)
    clean_stale_temp_files(out.parent)  # main cleaned the library; --out may save elsewhere
    from vae_core import distributed
    from vae_core.streaming import BUDGET_ENV, parse_size

    if args.memory_budget is not None:  # read where the data is loaded (vae_core.streaming)
        os.environ[BUDGET_ENV] = str(parse_size(args.memory_budget))
    group = distributed.join(config.device)  # one process unless started by torchrun
    if group.active:  # torchrun ends the other ranks with SIGTERM when one fails: say so in one line
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return _run_training(args, config, out, resume, group)
    except (RuntimeError, _Terminated) as e:  # a torch.distributed failure: another rank died or was lost
        if not group.active:
            raise
        raise VAEError(f"the distributed run stopped ({distributed.error_gist(e)}); {_shown(out)} keeps the last "
                       f"finished epoch: continue it with --resume") from None
    finally:
        distributed.leave(group)


class _Terminated(Exception):
    """torchrun ended this rank (SIGTERM), which it does to the others when one rank fails."""


def _terminated(signum, frame) -> None:
    raise _Terminated("torchrun ended this process: another process of the run failed")


def _run_training(args, config: VAEConfig, out: Path, resume: Checkpoint | None, group) -> int:
    from vae_core.train import Trainer

    bundle = load_for_config(config)
    trainer = Trainer(config, bundle=bundle, out_path=out, resume=resume, group=group)
    if trainer.epoch >= config.epochs:
        raise VAEError(f"{args.resume} already has {trainer.epoch} epochs; pass a larger --epochs")
    data_warnings = bundle.spec.get("warnings", [])  # a folder's: files skipped, images nearly blank
    if group.is_main and not args.quiet:
        print(bundle.spec["loading_line"], file=sys.stderr)
    if group.is_main:
        for warning in data_warnings:
            print(f"warning: {warning}", file=sys.stderr)
    if group.active and group.is_main and not args.quiet:
        print(f"distributed: {group.world_size} processes ({group.backend}), batch {config.batch_size} per "
              f"process, {trainer.steps_per_epoch} steps per epoch", file=sys.stderr)
    bar = None if args.quiet or not group.is_main else _progress_bar(trainer)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        trainer.stop()
        trainer.status = "stopped"
        if group.is_main:
            trainer.save()
            print(f"\ninterrupted; saved {_shown(out)} after {trainer.epoch} epochs", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    if not group.is_main:
        return 0
    if args.preset:  # shipped files stay small (no optimizer state) and come with their projections
        trainer.save(include_optimizer=False)
        from vae_core.projection import precompute

        try:
            precompute(out, out.parent / "projections")
        except ImportError as e:  # a projection library missing: the run itself is saved
            raise VAEError(f"saved {_shown(out)}, but its projections were not precomputed: {e} "
                           f"(pip install -r requirements.txt)") from None
    m = trainer.metrics
    print(f"test nELBO {m['test_nelbo']:.2f} nats (recon {m['test_recon']:.2f} + KL {m['test_kl']:.2f}; "
          f"{m['likelihood']}), {m['active_units']} active units")
    for warning in m.get("warnings", []):  # a degenerate run says so (vae_core.health); the data's said above
        if warning not in data_warnings:
            print(f"warning: {warning}", file=sys.stderr)
    print(f"saved {_shown(out)}")
    return 0


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _progress_bar(trainer):
    from tqdm import tqdm

    total = trainer.steps_per_epoch * trainer.config.epochs
    bar = tqdm(total=total, initial=trainer.epoch * trainer.steps_per_epoch, unit="step",
               dynamic_ncols=True, file=sys.stderr)

    def on_step(t, rec):
        bar.n = t.step
        bar.set_postfix(epoch=f"{rec['epoch']:.1f}", nelbo=f"{rec['nelbo']:.1f}", beta=f"{rec['beta']:.2g}",
                        img_s=f"{rec['images_per_s']:.0f}", refresh=False)
        bar.refresh()

    def on_epoch(t, rec):
        bar.write(f"epoch {rec['epoch']}: train nELBO {rec['train_nelbo']:.2f}, test nELBO "
                  f"{rec['test_nelbo']:.2f} (KL {rec['test_kl']:.2f}) nats, {rec['seconds']:.1f} s")

    trainer.add_callback("on_step", on_step)
    trainer.add_callback("on_epoch_end", on_epoch)
    return bar


def _checkpoint_and_data(path: str, data_root: str | None = None):
    """A checkpoint and the dataset it was trained on (no download), checked to match."""
    ckpt = load_checkpoint(path)
    config = ckpt.config if data_root is None else ckpt.config.replace(data_root=data_root)
    bundle = load_for_config(config, download=False)
    if bundle.image_shape != ckpt.image_shape:
        raise VAEError(f"the data's images are {bundle.image_shape}, the model's {ckpt.image_shape}")
    return ckpt, config, bundle


def cmd_eval(args: argparse.Namespace) -> int:
    ckpt, config, bundle = _checkpoint_and_data(args.checkpoint, args.data_root)
    test_images = bundle.split("test").images
    m = evaluate(ckpt.model, test_images)
    out = {"checkpoint": str(ckpt.path), "dataset": config.dataset, "likelihood": m["likelihood"],
           "test_nelbo": m["nelbo"], "test_recon": m["recon"], "test_kl": m["kl"],
           "active_units": m["active_units"], "latent_dim": config.latent_dim, "n_test": m["n"],
           "kl_per_dim": m["kl_per_dim"], "units": "nats per example"}
    if args.iw_samples is not None:
        from vae_core.anomaly import iw_nll
        from vae_core.evaluate import as_scored

        out["iw_nll"] = float(iw_nll(ckpt.model, as_scored(config, test_images), args.iw_samples).mean())
        out["iw_samples"] = args.iw_samples
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{ckpt.path}: test nELBO {m['nelbo']:.2f} nats = recon {m['recon']:.2f} + KL {m['kl']:.2f} "
              f"({m['likelihood']}; {m['n']} test images); active units {m['active_units']}/"
              f"{config.latent_dim}")
        if args.iw_samples is not None:
            print(f"  importance-weighted NLL {out['iw_nll']:.2f} nats (K = {args.iw_samples} samples per "
                  f"image; {m['likelihood']}): an upper bound on -log p(x), tighter than the nELBO")
    return 0


def cmd_checkup(args: argparse.Namespace) -> int:
    from vae_core.checkup import checkup

    ckpt, config, bundle = _checkpoint_and_data(args.checkpoint, args.data_root)
    report = checkup(ckpt.model, bundle)
    if args.json:
        print(json.dumps({"checkpoint": str(ckpt.path), "latent_dim": config.latent_dim,
                          "units": "nats per example"} | report))
        return 0
    test, ap = report["test"], report["aggregate_posterior"]
    print(f"{ckpt.path}: test nELBO {test['nelbo']:.2f} nats = recon {test['recon']:.2f} + KL {test['kl']:.2f} "
          f"({report['likelihood']}; {report['n_test']} test images); active units {report['active_units']}/"
          f"{config.latent_dim}; the data's mean image costs {report['mean_image_recon']:.1f} nats")
    print(f"  aggregate posterior: {100 * ap['hole_fraction']:.0f} % of prior samples in holes "
          f"({100 * ap['hole_fraction_if_filled']:.0f} % when the codes fill the prior)")
    for check in report["checks"].values():
        print(f"  {'FOUND' if check['found'] else 'ok   '} {check['title']}: {check['evidence']}")
        if check["found"]:
            print(f"        what to change: {check['advice']}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = summary(load_checkpoint(args.checkpoint))
    if args.json:
        print(json.dumps(info))
        return 0
    c, h = info["config"], info["history"]
    print(f"{info['checkpoint']}")
    print(f"  model    {c['model']}, latent {c['latent_dim']}, beta {c['beta']:g} ({c['beta_schedule']}), "
          f"{info['likelihood']}")
    print(f"  data     {c['dataset']}, images {'x'.join(map(str, info['image_shape']))}")
    print(f"  training {h['epochs']} epochs of {c['epochs']}, {h['seconds']:.0f} s, batch {c['batch_size']}, "
          f"lr {c['lr']:g}, seed {c['seed']}")
    if h["last_test_nelbo"] is not None:
        print(f"  test     nELBO {h['last_test_nelbo']:.2f} nats (best {h['best_test_nelbo']:.2f})")
    print(f"  film     {info['film_frames']} frames" if info["film_frames"] else "  film     none")
    return 0


def cmd_anomaly_benchmark(args: argparse.Namespace) -> int:
    from vae_core.data import load_dataset
    from vae_core.protocols import one_class_auroc, one_class_config

    bundle = load_dataset(args.dataset, data_root=args.data_root, download=False)
    if bundle.labels is None:
        raise VAEError(f"the one-class benchmark needs class labels ({args.dataset} has none)")
    config = one_class_config(bundle, **{f.name: getattr(args, f.name) for f in config_fields()
                                         if f.name not in ONE_CLASS_FIXED})

    def progress(done: int, total: int, rec: dict) -> None:
        print(f"[{done}/{total}] class {rec['class']}: AUROC {rec['auroc']:.4f} ({rec['n_train']} training "
              f"images, held-out normal nELBO {rec['normal_test_nelbo']:.2f} nats, {rec['seconds']:.1f} s)",
              file=sys.stderr, flush=True)

    r = one_class_auroc(bundle, config, classes=args.classes, score=args.score, iw_samples=args.iw_samples,
                        progress=None if args.quiet else progress)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"one-class AUROC on {r['dataset']} ({r['n_test']} test images; score {r['score']} in nats, "
          f"{r['likelihood']}; {config.model}, latent {config.latent_dim}, {config.epochs} epochs per class)")
    for d, v in r["per_class_auroc"].items():
        print(f"  class {d}: AUROC {v:.4f}")
    print(f"  mean AUROC {r['mean_auroc']:.4f} over {len(r['per_class_auroc'])} classes, {r['seconds']:.0f} s")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from vae_core.metrics import probe

    ckpt, config, bundle = _checkpoint_and_data(args.checkpoint, args.data_root)
    r = probe(ckpt.model, bundle, label_counts=args.labels, seed=args.seed, repeats=args.repeats)
    out = {"checkpoint": str(ckpt.path), "dataset": config.dataset, **r, "repeats": args.repeats,
           "seed": args.seed, "classifier": "LogisticRegression(max_iter=2000), accuracy on the test split"}
    if args.json:
        print(json.dumps(out))
        return 0
    d = r["latent_dim"]
    print(f"{ckpt.path}: linear-probe test accuracy on {r['n_test']} {config.dataset} test images "
          f"(latent means vs raw pixels vs PCA to {d} dims)")
    for n, a in r["labels"].items():
        print(f"  {n:>6} labels: latent {a['latent_acc']:.1%}, pixels {a['pixel_acc']:.1%}, "
              f"PCA {a['pca_acc']:.1%}" + (f" ({a['n_train']} used)" if a["n_train"] != int(n) else ""))
    return 0


def cmd_disentanglement(args: argparse.Namespace) -> int:
    from vae_core.latent import ACTIVE_KL_NATS
    from vae_core.protocols import disentanglement_report

    ckpt, config, bundle = _checkpoint_and_data(args.checkpoint)
    r = disentanglement_report(ckpt.model, bundle, max_points=args.max_points, seed=args.seed)
    out = {"checkpoint": str(ckpt.path), "dataset": config.dataset, "beta": config.beta, **r}
    if args.json:
        print(json.dumps(out))
        return 0
    gaps = ", ".join(f"{n} {'n/a' if v is None else f'{v:.3f}'}" for n, v in r["per_factor"].items())
    print(f"{ckpt.path}: MIG {r['mig']:.3f} (0 = entangled, 1 = one dimension per factor; "
          f"{r['n_points']} test images)")
    print(f"  per factor: {gaps}")
    print(f"  active units {r['active_units']}/{r['latent_dim']} (test KL per dimension above "
          f"{ACTIVE_KL_NATS:g} nats)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from vae_core.report import write_report

    folder = Path(args.checkpoints) if args.checkpoints else checkpoint_dir()
    path = write_report(folder, Path(args.docs), iw_samples=args.iw_samples,
                        baseline_epochs=args.baseline_epochs,
                        anomaly_json=Path(args.anomaly_json) if args.anomaly_json else None,
                        readme=Path(args.readme) if args.readme else None,
                        log=lambda line: print(line, file=sys.stderr))
    print(f"wrote {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vae_core.export import export, graph_metadata

    ckpt = load_checkpoint(args.checkpoint)
    data = export(ckpt, args.onnx, part=args.part)
    meta = graph_metadata(ckpt, args.part) | {"onnx": str(args.onnx), "bytes": len(data)}
    if args.json:
        print(json.dumps(meta))
    else:
        shape, dim = "x".join(map(str, meta["image_shape"])), meta["latent_dim"]
        what = (f"z ({dim}) -> image {shape} in [0, 1]" if args.part == "decoder"
                else f"image {shape} in [0, 1] -> mu, logvar ({dim} each)")
        print(f"wrote {args.onnx} ({len(data) / 1e6:.1f} MB): {what}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from vae_core.importers import import_model

    if args.out:
        out = Path(args.out)
    else:
        name = args.name if args.name is not None else Path(args.source).stem
        if not name or len(name) > 100 or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
            raise VAEError("--name takes 1 to 100 letters, digits, '-', '_' and '.' (not starting with '.')")
        out = checkpoint_dir() / f"{name}.pt"
    if out.exists():
        raise VAEError(f"{out.name} exists already; choose another --name or --out")
    done = import_model(args.source, args.dataset, out)
    if args.json:
        shown = {k: v for k, v in done.items() if k != "config"}
        print(json.dumps(shown | {"latent_dim": done["config"]["latent_dim"]}))
        return 0
    print(f"wrote {done['checkpoint']}: {done['importer']}, z={done['config']['latent_dim']}, test nELBO "
          f"{done['test_nelbo']:.2f} nats ({done['likelihood']}; reconstruction {done['test_recon']:.2f} + KL "
          f"{done['test_kl']:.2f}), {done['active_units']} active units")
    return 0


def cmd_film(args: argparse.Namespace) -> int:
    from vae_core.film import film_gif, film_of

    ckpt = load_checkpoint(args.checkpoint)
    film = film_of(ckpt.film)
    if film is None or not film.frames:
        raise VAEError(f"{args.checkpoint} has no film (trained before runs recorded one, or with --film-frames 0)")
    out = {"checkpoint": str(ckpt.path), "film_frames": len(film.frames), "codes_per_frame": len(film.indices),
           "steps": [f["step"] for f in film.frames], "bytes": film.nbytes()}
    if args.gif:
        data = film_gif(film, size=args.size, duration_ms=args.frame_ms)
        Path(args.gif).write_bytes(data)
        out.update(gif=str(args.gif), gif_bytes=len(data))
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{out['checkpoint']}: {out['film_frames']} frames (steps {out['steps'][0]}-{out['steps'][-1]}) of the "
          f"codes of {out['codes_per_frame']} test images, {out['bytes'] / 1e3:.0f} kB")
    if args.gif:
        print(f"wrote {args.gif} ({out['gif_bytes'] / 1e3:.0f} kB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    flush_subnormals()  # before any parallel torch operation starts this thread's workers
    try:
        args = build_parser().parse_args(argv)
        clean_stale_temp_files(checkpoint_dir())  # what saves killed mid-write left (one listing; never fails)
        return {"train": cmd_train, "eval": cmd_eval, "info": cmd_info, "anomaly-benchmark": cmd_anomaly_benchmark,
                "probe": cmd_probe, "disentanglement": cmd_disentanglement, "report": cmd_report,
                "export": cmd_export, "film": cmd_film, "import": cmd_import,
                "checkup": cmd_checkup}[args.command](args)
    except VAEError as e:
        from vae_core.distributed import launched

        rank = f"rank {os.environ['RANK']}: " if launched() else ""
        print(f"error: {rank}{e}", file=sys.stderr)
        return 2
