"""``tinycnn train``, ``runs``, ``evaluate``, ``predict`` and ``maps`` (registered in
:mod:`tinycnn.cli`'s table).

``tinycnn train lenet5`` is the seed's program as one command: it prints the model summary,
trains on the MNIST copy inside the package (offline), writes ``weights.npz``,
``history.json``, ``curves.png`` and ``mistakes.png`` to ``--out``, and prints the test
accuracy and the confusion matrix.

The default recipe is the seed's (batch 100, Adam) with a longer schedule and light
augmentation: ``--epochs 20``, Adam at 2e-3 with cosine decay to 0, every training image
shifted by up to 2 pixels (random, per image and epoch), the last 10 % of the training set held
out for validation; README.md ("Training") says what it reaches.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from pathlib import Path

__all__ = [
    "cmd_evaluate",
    "cmd_maps",
    "cmd_predict",
    "cmd_runs",
    "cmd_train",
    "configure_evaluate",
    "configure_maps",
    "configure_predict",
    "configure_runs",
    "configure_train",
    "latest_weights",
    "new_run_dir",
]

DATASETS = ("auto", "mnist", "fashion_mnist", "cifar10")
# each bundled dataset (MNIST, Fashion-MNIST, CIFAR-10) has ten classes
DATASET_CLASSES = 10
# `tinycnn evaluate` prints the confusion matrix up to this many classes
CONFUSION_MAX_CLASSES = 20


def _data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="your own images, one folder per class: DIR/<class>/* (every 5th a test image) "
        "or DIR/train/<class>/* and DIR/test/<class>/*, resized to the model's input",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    from ..cli import _int_at_least, _model_args

    _model_args(parser)
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="auto",
        help="default: MNIST for 1-channel models, CIFAR-10 for 3-channel "
        "32x32 ones (downloaded once)",
    )
    _data_arg(parser)
    parser.add_argument("--batch-size", type=_int_at_least(1), default=100, metavar="N")
    parser.add_argument(
        "--limit",
        type=_int_at_least(1),
        metavar="N",
        help="use only the first N images of each split (a quick look)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))


def configure_train(parser: argparse.ArgumentParser) -> None:
    from ..cli import _fraction, _int_at_least, _rate

    _common(parser)
    parser.add_argument("--epochs", type=_int_at_least(1), default=20, metavar="N")
    parser.add_argument(
        "--lr", type=_rate, default=2e-3, help="initial learning rate (default 2e-3)"
    )
    parser.add_argument("--optimizer", default="adam", choices=("adam", "sgd", "rmsprop", "adamw"))
    parser.add_argument(
        "--schedule",
        default="cosine",
        choices=("cosine", "plateau", "none"),
        help="learning-rate schedule (default: cosine decay to 0)",
    )
    parser.add_argument(
        "--augment",
        type=_int_at_least(0),
        default=2,
        metavar="PX",
        help="shift each training image by up to PX pixels (default 2; 0: off)",
    )
    parser.add_argument(
        "--class-weight",
        choices=("none", "balanced"),
        default="none",
        help="balanced: weigh each class's loss by n / (classes * its count), for uneven classes",
    )
    parser.add_argument("--seed", type=_int_at_least(0), default=0)
    parser.add_argument(
        "--val-split",
        type=_fraction,
        default=0.1,
        metavar="F",
        help="hold out the last fraction of the training set (default 0.1)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default runs/MODEL, or runs/MODEL-2, -3, ... when it exists: "
        "a run never overwrites another)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="DIR",
        help="continue an interrupted run (default: MODEL's latest run) from its "
        "checkpoint.npz, with its own settings (run.json)",
    )


def configure_evaluate(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _weights_arg(parser, "the latest run's runs/MODEL[-N]/weights.npz, which tinycnn train writes")
    parser.add_argument(
        "--mistakes",
        metavar="FILE",
        help="also draw the surest misclassified test images (e.g. mistakes.png)",
    )


def _pick_dataset(args: argparse.Namespace, input_shape: tuple[int, ...]) -> str:
    channels, h, w = input_shape
    name = args.dataset
    if getattr(args, "data", None):
        if name != "auto":
            from ..cli import CLIError

            raise CLIError(f"--data {args.data} and --dataset {name}: give one of them")
        return "folder"
    if name != "auto":
        return name
    if channels == 1:
        return "mnist"
    if channels == 3 and (h, w) == (32, 32):
        return "cifar10"
    from ..cli import CLIError

    raise CLIError(
        f"no bundled dataset fits input shape {input_shape}: give --dataset, or build the model "
        "for a dataset's shape with --input-shape (e.g. 1,32,32 for MNIST)"
    )


def _check_classes(model, dataset: str) -> None:
    """Refuse, before any image is read, a model whose outputs are not one per class of a
    bundled ``dataset`` (``--data`` folders are checked where the model is built)."""
    if dataset == "folder" or model.output_shape[-1] == DATASET_CLASSES:
        return
    from ..cli import CLIError

    raise CLIError(
        f"{model.name} has {model.output_shape[-1]} outputs but {dataset} has "
        f"{DATASET_CLASSES} classes: give --num-classes {DATASET_CLASSES} (if MODEL takes it) "
        "or a model with one output per class"
    )


def _check_fits_data(args, n: int, input_shape: tuple[int, ...], augment) -> None:
    """The checks of ``fit`` that depend on the ``n`` training images, made with fit's own
    rules before the run directory is created, naming the flags: the shifts fit in the image,
    both splits have images."""
    from ..cli import CLIError
    from .data import split_index

    h, w = input_shape[1:]
    if augment is not None:
        try:
            augment.check_size(h, w)
        except ValueError:
            raise CLIError(
                f"--augment {args.augment}: must be smaller than the images' {h}×{w}"
            ) from None
    train = split_index(n, args.val_split)
    if args.val_split and train in (0, n):
        limit = f" (--limit {args.limit})" if args.limit else ""
        raise CLIError(
            f"--val-split {args.val_split:g} of {n} training images{limit} holds out "
            f"{n - train} to validate on and leaves {train} to train on; both need "
            "images: give a larger --limit, or --val-split 0"
        )


def _load(args, dataset: str, split: str, input_shape: tuple[int, ...], limit: int | None):
    """``(x, y)`` of ``split``, ``x`` in the model's layout (see :func:`_input_chw`)."""
    x, y = _load_chw(args, dataset, split, input_shape, limit)
    return _to_model(args, x), y


def _load_chw(args, dataset: str, split: str, input_shape: tuple[int, ...], limit: int | None):
    from .. import datasets
    from ..cli import CLIError

    channels, h, w = input_shape
    if dataset == "folder":
        return datasets.load_image_folder(args.data, split, input_shape, one_hot=True, limit=limit)
    if dataset in ("mnist", "fashion_mnist"):
        if channels != 1 or (h, w) not in ((28, 28), (32, 32)):
            raise CLIError(
                f"{dataset} images are 1x28x28 (padded to 32x32); the model takes {input_shape}"
            )
        load = datasets.load_mnist if dataset == "mnist" else datasets.load_fashion_mnist
        return load(split, pad_to_32=(h == 32), one_hot=True, limit=limit)
    if input_shape != (3, 32, 32):
        raise CLIError(f"cifar10 images are 3x32x32; the model takes {input_shape}")
    return datasets.load_cifar10(split, one_hot=True, limit=limit)


def _model(args):
    """MODEL built from the command line.  With ``--data``, a zoo model gets one output per
    class folder, and a model whose outputs do not match the classes is refused."""
    from ..cli import CLIError, _build, _zoo_models
    from ..graph import clear_session

    classes = None
    if getattr(args, "data", None):
        from ..datasets import folder_classes

        classes = folder_classes(args.data)
        if args.num_classes is None and args.model in _zoo_models():
            args.num_classes = len(classes)
    elif args.num_classes is None and args.model in _zoo_models() and hasattr(args, "dataset"):
        args.num_classes = DATASET_CLASSES  # an ImageNet model's 1000 outputs fit no dataset here
    clear_session()  # auto-generated layer names start afresh: weight files match the model
    model = _build(args)
    if isinstance(model.output_shape, list):
        from ..graph.shapes import fmt_shape

        raise CLIError(
            f"{model.name} has {len(model.output_shape)} outputs "
            f"({', '.join(fmt_shape(s) for s in model.output_shape)}); tinycnn train, evaluate, "
            "predict and maps take a classifier with one output (one score per class)"
        )
    if classes is not None and model.output_shape[-1] != len(classes):
        raise CLIError(
            f"{model.name} has {model.output_shape[-1]} outputs but {args.data} has "
            f"{len(classes)} classes ({', '.join(classes)}): give --num-classes {len(classes)} "
            "(if MODEL takes it) or a model with one output per class"
        )
    args.classes = classes
    if args.device != "cpu":
        model.to(args.device)
    return model, _input_chw(args, model)


def _input_chw(args, model) -> tuple[int, ...]:
    """The model's input sample as ``(C, H, W)`` (the datasets' layout); notes in
    ``args.channels_last`` whether the model reads ``(H, W, C)`` (the data is then transposed
    for it)."""
    from ..graph.explain import layouts

    g, shape = model.graph, tuple(model.input_shape[1:])
    layout = layouts(model)
    args.channels_last = any(layout[n] for n in g if g.nodes[n]["family"] == "input")
    return (shape[2], shape[0], shape[1]) if args.channels_last else shape


def _to_model(args, x):
    """A batch in the datasets' ``(N, C, H, W)`` as the model reads it."""
    import numpy as np

    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if args.channels_last else x


def _to_chw(args, x):
    """A batch as the model reads it back in ``(N, C, H, W)`` (for the drawings)."""
    return x.transpose(0, 3, 1, 2) if args.channels_last else x


def _read_run(path: Path) -> dict:
    """A run's ``run.json``; a damaged one is named, not a JSON traceback."""
    import json

    from ..cli import CLIError

    try:
        saved = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CLIError(f"{path}: not a readable run.json ({e}); repair or delete it") from None
    if not isinstance(saved, dict) or "model" not in saved:
        raise CLIError(f'{path}: not a tinycnn train run.json (no "model" entry)')
    return saved


def _use_run_settings(args) -> dict:
    """evaluate, predict and maps: the run whose weights they use (``--weights`` in a run
    directory, or the latest run) gives the input shape, the classes and the data its model was
    trained with, where the command line does not give them.  Returns the run's settings."""
    from ..cli import CLIError, _build_view

    if args.weights and Path(args.weights).is_dir():  # a run's directory: its weights.npz
        if not (Path(args.weights) / "weights.npz").is_file():
            raise CLIError(
                f"--weights {args.weights}: a directory without weights.npz; give a finished "
                "run's directory or a weights file"
            )
        args.weights = str(Path(args.weights) / "weights.npz")
    if args.weights:
        run = Path(args.weights).parent / "run.json"
    else:
        found = latest_weights(_build_view(args).name)
        run = found.parent / "run.json" if found else None
    if run is None or not run.is_file():
        return {}
    saved = _read_run(run)
    if saved.get("model") != args.model:
        return {}
    for key in ("input_shape", "num_classes", "data"):
        if hasattr(args, key) and getattr(args, key) is None and saved.get(key) is not None:
            value = saved[key]
            _check_setting(run, key, value, None)
            setattr(args, key, tuple(value) if key == "input_shape" else value)
    if getattr(args, "dataset", None) == "auto" and not saved.get("data"):
        args.dataset = saved.get("dataset", "auto")
    return saved


def cosine_schedule(lr0: float, epochs: int):
    """Cosine decay from ``lr0`` to 0 over ``epochs`` (for ``LearningRateScheduler``)."""

    def schedule(epoch: int, lr: float) -> float:
        return lr0 * 0.5 * (1 + math.cos(math.pi * epoch / epochs))

    return schedule


# The settings of a run, saved in its run.json: ``--resume`` continues with these.
RUN_SETTINGS = ("input_shape", "num_classes", "dataset", "data", "batch_size", "limit",
                "epochs", "lr", "optimizer", "schedule", "augment", "class_weight", "seed",
                "val_split")  # fmt: skip
CHECKPOINT = "checkpoint.npz"


def _run_checkpoint(path: Path, before):
    """A callback that saves ``path`` (weights, optimizer, RNG, the history so far) whenever an
    epoch has finished with finite weights: at the start of the next one, and at the end of
    training.  Not at the end of the epoch itself, where ``model.history`` has not yet recorded
    it; never in the middle of one (an interrupted epoch is redone on resume)."""
    from .. import io
    from .callbacks import Callback, _weights_finite
    from .history import History

    class RunCheckpoint(Callback):
        saved = 0

        def _save(self):
            done = self.model.history
            if len(done.epoch) == self.saved or not _weights_finite(self.model):
                return  # nothing new, or a diverged run: keep the last finite epoch
            joined = History.from_dict(before.to_dict()).extend(done) if before else done
            meta = {"history": joined.to_dict()}
            io.save_checkpoint(path, self.model, self.model.optimizer, joined.epoch[-1] + 1, meta)
            self.saved = len(done.epoch)

        def on_epoch_begin(self, epoch, logs=None):
            self._save()

        def on_train_end(self, logs=None):
            self._save()

    return RunCheckpoint()


def _keep_logged_epochs(log: Path, epochs: int) -> None:
    """Drop the rows of ``log`` (CSVLogger's) past the first ``epochs``: an epoch logged just
    before an interruption, after the last checkpoint, runs again."""
    if log.is_file():
        lines = log.read_text().splitlines(keepends=True)
        rows = [ln for ln in lines[1:] if ln.split(",", 1)[0].isdigit()]
        kept = [ln for ln in rows if int(ln.split(",", 1)[0]) < epochs]
        if len(kept) < len(rows):
            from .. import io

            io.write_text(log, "".join(lines[:1] + kept))


# what run.json holds for each setting (an int where not named; null allowed for the optional)
_SETTING_TYPES = {"lr": float, "val_split": float, "input_shape": list, "data": str,
                  "dataset": str, "optimizer": str, "schedule": str,
                  "class_weight": str}  # fmt: skip
_OPTIONAL_SETTINGS = ("input_shape", "num_classes", "data", "limit")
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list of integers"}


def _check_setting(path: Path, key: str, value, choices) -> None:
    """Refuse a run.json ``key`` that tinycnn train does not write (edited by hand, or
    damaged): the wrong type, or a value outside the flag's choices."""
    from ..cli import CLIError

    want = _SETTING_TYPES.get(key, int)
    if value is None:
        fits = key in _OPTIONAL_SETTINGS
    elif key == "input_shape":
        fits = isinstance(value, list) and all(type(v) is int for v in value)
    elif want is float:
        fits = type(value) in (int, float)
    else:
        fits = type(value) is want and (choices is None or value in choices)
    if not fits:
        rule = f"one of {', '.join(choices)}" if choices else _TYPE_NAMES[want]
        raise CLIError(f"{path}: {key} is {value!r}, not {rule}; repair or delete it")


def _resume_run(args: argparse.Namespace, held: contextlib.ExitStack) -> Path:
    """The run directory to continue, locked in ``held`` for as long as this command trains;
    ``args`` takes the run's settings (a different value given on the command line is an
    error: a resumed run is the run it continues)."""
    from ..cli import CLIError, _build_view
    from . import runlock

    if args.out:
        raise CLIError("--resume continues in the run's own directory; --out cannot be given")
    if args.resume:
        out = Path(args.resume)
    else:
        name = _build_view(args).name
        runs = [
            path
            for _, path in _runs(name, Path("runs"))
            if (path / "run.json").is_file() and not (path / "weights.npz").is_file()
        ]
        training = [e for e in map(runlock.busy, runs) if e is not None]
        runs = [path for path in runs if path not in {e.run for e in training}]
        if not runs:
            now = "".join(f"; {e} (not stopped)" for e in training)
            raise CLIError(
                f"--resume: no unfinished run of {name} in runs/ (one with a run.json and no "
                f"weights.npz yet){now}; name the run to continue: --resume DIR"
            )
        out = runs[-1]
    if not (out / "run.json").is_file():
        lacking = " and no ".join(n for n in ("run.json", CHECKPOINT) if not (out / n).is_file())
        raise CLIError(f"--resume {out}: not a tinycnn train run to continue (it has no {lacking})")
    _lock(held, out, "--resume")
    saved = _read_run(out / "run.json")
    if saved["model"] != args.model:
        raise CLIError(f"--resume {out}: that run trained {saved['model']}, not {args.model}")
    if (out / "weights.npz").is_file():  # written last: the run has finished
        raise CLIError(
            f"--resume {out}: the run finished its {saved.get('epochs', '')} epochs already "
            f"(its weights.npz is written); start a new run to train more"
        )
    defaults = argparse.ArgumentParser()
    configure_train(defaults)
    choices = {action.dest: action.choices for action in defaults._actions}
    for key in RUN_SETTINGS:
        value = saved.get(key, defaults.get_default(key))
        _check_setting(out / "run.json", key, value, choices.get(key))
        value = tuple(value) if key == "input_shape" and value is not None else value
        given = getattr(args, key)
        if key == "data" and given is not None:
            given = str(Path(given).resolve())
        if given != defaults.get_default(key) and given != value:
            flag = "--" + key.replace("_", "-")
            raise CLIError(
                f"--resume {out}: {flag} {given} differs from the run's {value}; a resumed run "
                "keeps its settings (run.json). Start a new run to change them"
            )
        setattr(args, key, value)
    return out


RUN_FILES = ("run.json", CHECKPOINT, "weights.npz")
# every other file a run writes in its directory
RUN_OUTPUTS = ("log.csv", "history.json", "curves.png", "mistakes.png")


def _check_out(out: Path, model: str) -> None:
    """Refuse an ``--out`` that is a file, holds a run, or holds a file of the name of one a
    run writes: a new run never overwrites anything."""
    from ..cli import CLIError

    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: is a file, not a directory")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        stopped = (out / CHECKPOINT).is_file() and not (out / "weights.npz").exists()
        resume = f"continue it with `tinycnn train {model} --resume {out}`, " if stopped else ""
        raise CLIError(
            f"--out {out}: holds a run already ({', '.join(found)}); a new run never overwrites "
            f"one: {resume}give another --out, or delete {out} first"
        )
    found = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if found:
        raise CLIError(
            f"--out {out}: holds {', '.join(found)}, which a run writes; a run never overwrites "
            "files it did not write: give another --out, or move them away first"
        )


def _start_run(out: Path, name: str, chosen: bool, settings: dict) -> Path:
    """Create the run directory and its ``run.json`` exclusively, so that of two runs started at
    once neither writes over the other: with the default ``runs/MODEL[-N]`` the later takes
    the next number, with the same ``--out`` (``chosen``) it is refused.  Returns the
    directory."""
    import json

    while True:
        try:
            out.mkdir(parents=True, exist_ok=chosen)
            with open(out / "run.json", "x") as f:
                f.write(json.dumps(settings, indent=2) + "\n")
            return out
        except FileExistsError:
            if chosen:
                _check_out(out, settings["model"])
                raise
            taken, out = out, new_run_dir(name, out.parent)
            if out == taken:  # a file where the run directory would go
                from ..cli import CLIError

                raise CLIError(
                    f"{out}: is a file, not a directory, so the run cannot be written there; "
                    "move it away, or give --out DIR"
                ) from None


def _lock(held: contextlib.ExitStack, out: Path, what: str) -> None:
    """Lock the run ``out`` until ``held`` closes: one ``tinycnn train`` at a time trains it."""
    from ..cli import CLIError
    from .runlock import RunBusy, holding

    try:
        held.enter_context(holding(out))
    except RunBusy as e:
        raise CLIError(
            f"{what} {out}: {e}; two runs at once would write over each other's epochs. "
            "Wait for it to end, or stop it (Ctrl-C keeps its finished epochs)"
        ) from None
    except OSError as e:
        raise CLIError(f"{what} {out}: cannot lock the run ({e.strerror or e})") from None


def _saved_note(args, out: Path, done: int) -> str:
    """What is saved of a run stopped after ``done`` epochs, and how to continue it."""
    if done == 0:
        return (
            "no epoch finished, nothing saved; start it again with its settings: "
            f"`tinycnn train {args.model} --resume {out}`"
        )
    epochs = f"{done} finished epochs are" if done > 1 else "finished epoch is"
    return (
        f"the {epochs} saved in {out / CHECKPOINT}; "
        f"continue with `tinycnn train {args.model} --resume {out}`"
    )


def cmd_train(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as held:  # the run's lock, held until the command ends
        return _train(args, held)


def _train(args: argparse.Namespace, held: contextlib.ExitStack) -> int:
    from .. import io, optim
    from .. import random as tc_random
    from ..cli import CLIError
    from .augment import RandomTranslation
    from .callbacks import CSVLogger, LearningRateScheduler, ReduceLROnPlateau
    from .history import History

    resume = args.resume is not None
    out = _resume_run(args, held) if resume else None
    if args.data is not None:  # run.json keeps where the images are, wherever it is read
        args.data = str(Path(args.data).resolve())
    tc_random.manual_seed(args.seed)  # the initial weights too: --seed repeats the whole run
    model, input_shape = _model(args)
    dataset = _pick_dataset(args, input_shape)
    _check_classes(model, dataset)
    data_name = _dataset_name(args.data, dataset)
    if out is None:
        out = Path(args.out) if args.out else new_run_dir(model.name)
        if args.out:
            _check_out(out, args.model)
    model.summary()
    x, y = _load(args, dataset, "train", input_shape, args.limit)
    x_test, y_test = _load(args, dataset, "test", input_shape, args.limit)
    fill = "reflect" if dataset == "folder" else "zeros"  # photos have no black background
    layout = "channels_last" if args.channels_last else "channels_first"
    augment = RandomTranslation(args.augment, fill, layout) if args.augment else None
    _check_fits_data(args, len(x), input_shape, augment)
    opt = {
        "adam": optim.Adam.keras,
        "adamw": optim.AdamW,
        "sgd": optim.SGD,
        "rmsprop": optim.RMSprop,
    }[args.optimizer](None)
    opt.lr = args.lr
    model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    before, initial_epoch = None, 0
    if resume and (out / CHECKPOINT).is_file():
        meta = io.load_checkpoint(out / CHECKPOINT, model, model.optimizer)
        try:
            before, initial_epoch = History.from_dict(meta["history"]), int(meta["epoch"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CLIError(
                f"--resume {out}: {out / CHECKPOINT} holds no training history, so tinycnn train "
                "did not write it (a ModelCheckpoint file?); resume from the run's own "
                "checkpoint, or load this one with --weights"
            ) from None
    if resume:  # an epoch logged after the last checkpoint (or before the first) runs again
        _keep_logged_epochs(out / "log.csv", initial_epoch)
    else:  # the run directory appears once the data and the model are ready
        settings = {"model": args.model, **{key: getattr(args, key) for key in RUN_SETTINGS}}
        settings["classes"] = args.classes
        if dataset != "folder":
            settings["dataset"] = dataset  # resolved: what --dataset auto picked
        out = _start_run(out, model.name, bool(args.out), settings)
        _lock(held, out, "--out" if args.out else "run")
        if not args.out and out.name != model.name:
            print(f"(earlier runs of {model.name} are kept: this one writes to {out})")
    cbs = [CSVLogger(out / "log.csv", append=resume)]
    if args.schedule == "cosine":
        cbs.append(LearningRateScheduler(cosine_schedule(args.lr, args.epochs)))
    elif args.schedule == "plateau":
        monitor = "val_loss" if args.val_split else "loss"
        cbs.append(ReduceLROnPlateau(monitor, factor=0.5, patience=2, verbose=1))
    checkpoint = _run_checkpoint(out / CHECKPOINT, before)
    cbs.append(checkpoint)
    doing = f"resuming {out} at epoch {initial_epoch + 1}: " if resume else ""
    if initial_epoch >= args.epochs:  # stopped after its last checkpoint, before weights.npz
        print(
            f"\nfinishing {out}: its {args.epochs} epochs are trained (in {CHECKPOINT}); "
            "writing what it had not written yet",
            flush=True,
        )
    else:
        print(
            f"\n{doing}training {model.name} on {data_name}: {len(x)} images (last "
            f"{args.val_split:g} held out), {args.epochs} epochs, batch {args.batch_size}, "
            f"{args.optimizer} lr={args.lr:g} ({args.schedule}), shifts of up to {args.augment} "
            f"px, seed {args.seed}"
            + (", balanced class weights" if args.class_weight == "balanced" else ""),
            flush=True,
        )
    t0 = time.perf_counter()
    try:
        history = model.fit(
            x,
            y,
            epochs=args.epochs,
            batch_size=args.batch_size,
            validation_split=args.val_split,
            callbacks=cbs,
            verbose=0 if args.quiet else "auto",
            seed=args.seed,
            augment=augment,
            initial_epoch=initial_epoch,
            class_weight=None if args.class_weight == "none" else args.class_weight,
        )
    except (KeyboardInterrupt, OSError) as e:  # Ctrl-C; a disk full, a folder gone
        done = initial_epoch + checkpoint.saved  # the epochs checkpoint.npz holds
        if isinstance(e, KeyboardInterrupt):
            saved = _saved_note(args, out, done)
            print(f"\ninterrupted in epoch {done + 1} of {args.epochs}: {saved}")
            return 130
        print(f"\ntraining stopped by an error: {_saved_note(args, out, done)}")
        raise
    seconds = time.perf_counter() - t0
    ran = len(history.epoch)
    per_epoch = sum(history.epoch_seconds) / max(ran, 1)
    if before is not None:
        history = before.extend(history)
    try:
        history.to_json(out / "history.json")
        model.save_weights(out / "weights.npz")  # last: a run with weights.npz has finished
    except OSError:
        saved = _saved_note(args, out, initial_epoch + checkpoint.saved)
        print(f"\nweights.npz not written: {saved}")
        raise
    wrote = ["weights.npz", "history.json", "log.csv", "run.json", CHECKPOINT]
    try:
        history.plot(out / "curves.png", title=f"{model.name} on {data_name}")
        wrote.append("curves.png")
    except ImportError as e:
        print(f"(no curves.png: {e})")
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    scores = model.predict(x_test, batch_size=args.batch_size, verbose=0)
    try:
        from .mistakes import plot_mistakes

        images = _to_chw(args, x_test)
        plot_mistakes(
            images, y_test, scores, out / "mistakes.png", title=model.name, names=args.classes
        )
        wrote.append("mistakes.png")
    except ImportError as e:
        print(f"(no mistakes.png: {e})")
    epochs = "1 epoch" if ran == 1 else f"{ran} epochs"
    print(f"\n{epochs} in {seconds:.1f} s ({per_epoch:.2f} s/epoch of training steps)")
    print(f"wrote {', '.join(wrote)} to {out}")
    print(
        f"test accuracy: {test_acc:.4f} ({100 * test_acc:.2f} %), test loss {test_loss:.4f} "
        f"on {len(x_test)} {data_name} test images"
    )
    _confusion(y_test, scores, args.classes)
    return 0


def _confusion(y, scores, names=None) -> None:
    """Print the confusion report of one-hot ``y`` against ``scores`` (up to
    :data:`CONFUSION_MAX_CLASSES` classes)."""
    if y.shape[-1] <= CONFUSION_MAX_CLASSES:
        from .metrics import confusion_matrix, confusion_report

        print(confusion_report(confusion_matrix(y, scores, y.shape[-1]), names))


def _class_name(args, k: int) -> str:
    return args.classes[k] if getattr(args, "classes", None) else str(k)


def _dataset_name(data: str | None, dataset: str) -> str:
    """How the messages name the images: the folder given with --data, else the dataset."""
    return f"{Path(data).name}/" if data else dataset


def cmd_evaluate(args: argparse.Namespace) -> int:
    _use_run_settings(args)
    model, input_shape = _model(args)
    dataset = _pick_dataset(args, input_shape)
    _check_classes(model, dataset)
    data_name = _dataset_name(args.data, dataset)
    weights = _weights(args, model, required=True)
    x, y = _load(args, dataset, "test", input_shape, args.limit)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, batch_size=args.batch_size, verbose=0)
    print(
        f"{model.name} with {weights} on {len(x)} {data_name} test images: "
        f"accuracy {acc:.4f} ({100 * acc:.2f} %), loss {loss:.4f}"
    )
    if y.shape[-1] > CONFUSION_MAX_CLASSES and not args.mistakes:
        return 0
    scores = model.predict(x, batch_size=args.batch_size, verbose=0)
    _confusion(y, scores, args.classes)
    if args.mistakes:
        from .mistakes import plot_mistakes

        images = _to_chw(args, x)
        path, n = plot_mistakes(
            images, y, scores, args.mistakes, title=model.name, names=args.classes
        )
        print(f"wrote {path}: the {n} surest mistakes" if n else f"wrote {path}: no mistakes")
    return 0


def _weights_arg(
    parser: argparse.ArgumentParser,
    default: str = "the latest run's runs/MODEL[-N]/weights.npz if there is one, else the "
    "untrained initial weights",
) -> None:
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help=f"trained weights or checkpoint (.npz); default: {default}",
    )


def configure_maps(parser: argparse.ArgumentParser) -> None:
    from ..cli import _int_at_least, _model_args

    _model_args(parser)
    _weights_arg(parser)
    parser.add_argument("--dataset", choices=DATASETS, default="auto")
    _data_arg(parser)
    parser.add_argument(
        "--index",
        type=_int_at_least(0),
        default=0,
        metavar="N",
        help="which test image (default 0)",
    )
    parser.add_argument(
        "--image", metavar="FILE", help="your own image (.png .jpg .npy) instead of a test image"
    )
    parser.add_argument(
        "--layers", metavar="A,B", help="comma list of layer names (default: convs and pools)"
    )
    parser.add_argument(
        "--channels",
        type=_int_at_least(1),
        default=8,
        metavar="N",
        help="channels per layer, the strongest first (default 8)",
    )
    parser.add_argument(
        "--filters",
        action="store_true",
        help="draw the first conv layer's filters instead (default file MODEL_filters.png)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="default MODEL_maps.png")


def _runs(name: str, root: Path) -> list[tuple[int, Path]]:
    """The run directories of model ``name``: ``root/name`` (run 1), ``root/name-2``, ..."""
    found = [(1, root / name)] if (root / name).is_dir() else []
    for path in root.glob(f"{name}-*"):
        number = path.name[len(name) + 1 :]
        if path.is_dir() and number.isdigit() and int(number) >= 2:
            found.append((int(number), path))
    return sorted(found)


def new_run_dir(name: str, root: Path = Path("runs")) -> Path:
    """A directory no run has used: ``runs/name``, else ``runs/name-N`` one past the highest
    (so a new run never overwrites the weights of an earlier one)."""
    runs = _runs(name, root)
    return root / name if not runs else root / f"{name}-{runs[-1][0] + 1}"


def latest_weights(name: str, root: Path = Path("runs")) -> Path | None:
    """``weights.npz`` of the latest run of ``name`` that finished (wrote its weights)."""
    for _, path in reversed(_runs(name, root)):
        if (path / "weights.npz").is_file():
            return path / "weights.npz"
    return None


def _weights(args, model, required: bool = False) -> str:
    """Load ``--weights`` (or the latest run's weights, :func:`latest_weights`) into ``model``;
    returns what was loaded, for the output.  ``required``: no untrained fallback."""
    from ..cli import CLIError

    weights = args.weights
    if weights is None:
        found = latest_weights(model.name)
        weights = str(found) if found else None
        if weights is None and required:
            raise CLIError(
                f"no weights to use: no run of {model.name} in runs/ has weights.npz. Train "
                f"first (`tinycnn train {args.model}`, which writes it), or pass --weights FILE"
            )
    elif not Path(weights).is_file():
        raise CLIError(f"--weights {weights}: no such file")
    if weights:
        model.load_weights(weights)
    return weights or "untrained initial weights"


def cmd_maps(args: argparse.Namespace) -> int:
    import numpy as np

    from ..cli import CLIError
    from ..graph.maps import pick_layers, plot_feature_maps, plot_filters

    args.device = "cpu"
    _use_run_settings(args)
    model, input_shape = _model(args)
    source = _weights(args, model)
    if args.filters:
        out = Path(args.output or f"{model.name}_filters.png")
        layer = args.layers.split(",")[0] if args.layers else None
        plot_filters(model, out, layer, f"{model.name} ({source})")
        print(f"wrote {out}")
        return 0
    if args.image:
        from ..datasets import load_image

        prepare = "resize" if args.data else "mnist"
        image = _to_model(args, load_image(args.image, input_shape, prepare)[None])[0]
        what = f"{args.image}:"
    else:
        dataset = _pick_dataset(args, input_shape)
        data_name = _dataset_name(args.data, dataset)
        x, y = _load(args, dataset, "test", input_shape, None)
        if not 0 <= args.index < len(x):
            raise CLIError(f"--index {args.index}: the {data_name} test split has {len(x)} images")
        image = x[args.index]
        label = _class_name(args, int(np.argmax(y[args.index])))
        what = f"{data_name} test image {args.index}: label {label},"
    layers = args.layers.split(",") if args.layers else None
    names, total = pick_layers(model, layers)
    predicted = _class_name(args, int(np.argmax(model.predict(image[None], verbose=0)[0])))
    title = f"{model.name} ({source}), {what} predicted {predicted}"
    out = Path(args.output or f"{model.name}_maps.png")
    plot_feature_maps(model, image, out, names, args.channels, title)  # bad names: ValueError
    print(title)
    shown = f"{len(names)} layers" + (
        f" of {total} (choose with --layers)" if total > len(names) else ""
    )
    print(f"wrote {out}: {shown}, up to {args.channels} channels each")
    return 0


def configure_predict(parser: argparse.ArgumentParser) -> None:
    from ..cli import _int_at_least, _model_args

    _model_args(parser)
    parser.add_argument(
        "images",
        nargs="+",
        metavar="FILE",
        help="image files (.png .jpg .npy), or folders: every image inside them",
    )
    _weights_arg(parser)
    parser.add_argument(
        "--top", type=_int_at_least(1), default=3, metavar="K", help="classes to list (3)"
    )


def _image_files(paths: list[str]) -> list[str]:
    """The files to classify: each path, a folder standing for the images inside it (in name
    order, sub-folders included)."""
    from ..cli import CLIError
    from ..datasets.folder import IMAGE_SUFFIXES, image_files

    files: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = image_files(path)
            if not found:
                raise CLIError(
                    f"{path}: no images in it (files ending {', '.join(IMAGE_SUFFIXES)})"
                )
            files += [str(f) for f in found]
        else:
            files.append(str(path))
    return files


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from ..cli import CLIError
    from ..datasets import load_image

    args.device = "cpu"
    run = _use_run_settings(args)
    args.data = None  # the run's images are not needed, only how they were prepared
    model, input_shape = _model(args)
    source = _weights(args, model)
    prepare = "resize" if run.get("data") else "mnist"
    files = _image_files(args.images)
    batch = _to_model(args, np.stack([load_image(f, input_shape, prepare) for f in files]))
    names = run.get("classes") or [str(k) for k in range(model.output_shape[-1])]
    out = np.asarray(model.predict(batch, verbose=0), dtype=np.float64)
    if out.ndim != 2:
        raise CLIError(f"{model.name} outputs shape {out.shape[1:]}, not one score per class")
    probabilities = bool(np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3))
    if not probabilities:  # logits: their softmax
        from .. import functional as F
        from ..tensor import Tensor

        out = F.softmax(Tensor(out), dim=1).numpy()
    how = "" if probabilities else " (softmax of the model's logits)"
    print(f"{model.name} ({source}){how}:")
    for name, p in zip(files, out):
        order = np.argsort(-p, kind="stable")[: args.top]
        rest = ", ".join(f"{names[k]} ({100 * p[k]:.2f} %)" for k in order[1:])
        best = f"{names[order[0]]} ({100 * p[order[0]]:.2f} %)"
        print(f"  {name}: {best}" + (f"; then {rest}" if rest else ""))
    return 0


def configure_runs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="MODEL", help="only this model's runs")
    parser.add_argument("--root", default="runs", metavar="DIR", help="default runs/")


def _run_row(path: Path) -> tuple[list[str], str | None]:
    """One line of ``tinycnn runs``, and the resume command of a stopped run."""
    from .. import io
    from ..cli import CLIError
    from . import runlock

    try:
        settings = _read_run(path / "run.json")
    except CLIError:
        return [str(path), "?", "?", "", "", "run.json unreadable"], None
    total = settings.get("epochs")
    done, history = 0, {}
    if (path / CHECKPOINT).is_file():
        try:
            meta = io.load_meta(path / CHECKPOINT)
            done, history = int(meta.get("epoch", 0)), meta.get("history", {}).get("history", {})
            history = {k: v for k, v in history.items() if v and isinstance(v[-1], (int, float))}
        except (ValueError, TypeError, AttributeError, OSError):  # CheckpointError included
            return [
                str(path),
                settings["model"],
                f"?/{total}",
                "",
                "",
                "checkpoint unreadable",
            ], None
    metric = next(
        (k for k in ("val_accuracy", "accuracy", "val_loss", "loss") if history.get(k)), None
    )
    last = f"{metric} {history[metric][-1]:.4f}" if metric else ""
    data = _dataset_name(settings.get("data"), settings.get("dataset", ""))
    if (path / "weights.npz").is_file():
        state, resume = "finished", None
    elif (training := runlock.busy(path)) is not None:
        state, resume = f"training ({f'pid {training.pid}' if training.pid else 'now'})", None
    else:  # stopped, or stopped before its first epoch ended: --resume starts it again
        state = "stopped" if done else "no epoch finished"
        resume = f"tinycnn train {settings['model']} --resume {path}"
    return [str(path), settings["model"], f"{done}/{total}", data, last, state], resume


def cmd_runs(args: argparse.Namespace) -> int:
    """List the runs under --root: model, epochs done, data, the last logged metric, state."""
    root = Path(args.root)
    dirs = sorted(
        (p for p in root.iterdir() if (p / "run.json").is_file()) if root.is_dir() else [],
        key=lambda p: (p.name.rsplit("-", 1)[0], _run_number(p.name)),
    )
    rows, hints = [], []
    for path in dirs:
        row, resume = _run_row(path)
        if args.model and row[1] != args.model:
            continue
        rows.append(row)
        if resume:
            hints.append(f"resume {path}: {resume}")
    if not rows:
        which = f" of {args.model}" if args.model else ""
        print(f"no runs{which} in {root}/ (tinycnn train MODEL makes one)")
        return 0
    head = ["run", "model", "epochs", "data", "last logged", "state"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    for hint in hints:
        print(hint)
    return 0


def _run_number(name: str) -> int:
    stem, _, number = name.rpartition("-")
    return int(number) if stem and number.isdigit() else 1
