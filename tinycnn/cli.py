"""The ``tinycnn`` command: ``tinycnn zoo | summary | explain | draw | train | runs |
evaluate | predict | maps | bench``.

Every subcommand is a ``Command`` in the ``COMMANDS`` table at the bottom: a function that adds
its arguments to a parser and a function that runs it (or a ``"module:function"`` string, imported
only when that subcommand runs, so ``tinycnn --help`` stays fast).  Adding a subcommand is one
entry in that table.

MODEL arguments are a zoo name (``tinycnn zoo`` lists them), ``package.module:function`` or
``path/to/file.py:function``: a function returning a ``tinycnn.Model``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Command:
    """A subcommand: ``configure(parser)`` adds its arguments, ``run(args) -> exit code``."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int] | str


class CLIError(Exception):
    """A user error: printed as ``tinycnn: error: ...`` with exit status 2."""


# ---------------------------------------------------------------------------------- models
def _zoo_models() -> dict[str, Callable]:
    try:
        import zoo
    except ImportError as e:  # pragma: no cover - the zoo ships with tinycnn
        raise CLIError(f"the zoo package cannot be imported ({e})") from None
    return dict(zoo.MODELS)


def _shape_arg(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W (e.g. 3,224,224), got {text!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive sizes C,H,W, got {text!r}")
    return shape


def _int_at_least(low: int):
    """An argparse type: an int ``>= low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _rate(text: str) -> float:
    """An argparse type: a learning rate, a finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    """An argparse type: a fraction in [0, 1)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _is_file(module_name: str) -> bool:
    """Whether MODEL's ``module`` part names a file rather than a dotted module."""
    return module_name.endswith(".py") or os.sep in module_name or "/" in module_name


def _import(module_name: str, spec: str):
    """A module by dotted name (the working directory is searched first, as ``python -m``
    does) or a ``.py`` file by path."""
    if _is_file(module_name):
        path = Path(module_name)
        if not path.is_file():
            raise CLIError(f"MODEL {spec!r}: no such file {module_name!r}")
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(loader_spec)
        try:
            loader_spec.loader.exec_module(module)
        except Exception as e:  # the file's own error: one line, with where in the file
            raise CLIError(_import_failure(spec, path, e)) from None
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise CLIError(f"cannot import module {module_name!r} from MODEL {spec!r}: {e}") from None


def _import_failure(spec: str, path: Path, error: Exception) -> str:
    """What went wrong running ``path``: the error and its line in that file."""
    import traceback

    mine = path.resolve()
    frames = [
        f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == mine
    ]
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    text = f"MODEL {spec!r}: running {str(path)!r} raised {type(error).__name__}: {error}{where}"
    if isinstance(error, ImportError) and "relative import" in str(error):
        text += "; a file with relative imports is part of a package: give package.module:function"
    return text


def load_model(
    spec: str, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None
):
    """Build the model named by ``spec``: a zoo name or ``package.module:function``."""
    from .graph import Model

    kwargs: dict[str, Any] = {}
    if input_shape is not None:
        kwargs["input_shape"] = input_shape
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if ":" in spec:
        module_name, _, attr = spec.rpartition(":")
        if not module_name or not attr:
            raise CLIError(f"MODEL {spec!r}: expected package.module:function or file.py:function")
        module = _import(module_name, spec)
        target = getattr(module, attr, None)
        if target is None:
            raise CLIError(f"module {module_name!r} has no attribute {attr!r}")
        model = target
        if callable(target) and not isinstance(target, Model):
            try:
                model = target(**kwargs)
            except Exception as e:  # the function's own error, with its line in that file
                path = Path(module_name if _is_file(module_name) else module.__file__ or "")
                raise CLIError(_import_failure(spec, path, e)) from None
    else:
        models = _zoo_models()
        if spec.endswith(".py"):
            raise CLIError(f"MODEL {spec!r} is a file: name its function too, as {spec}:function")
        if spec not in models:
            raise CLIError(
                f"unknown model {spec!r}; zoo models: {', '.join(models)} "
                "(or give package.module:function)"
            )
        model = models[spec](**kwargs)
    if not isinstance(model, Model):
        raise CLIError(f"MODEL {spec!r} did not give a tinycnn Model (got {type(model).__name__})")
    return model


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a zoo name (see `tinycnn zoo`), package.module:function or file.py:function",
    )
    parser.add_argument(
        "--input-shape",
        type=_shape_arg,
        metavar="C,H,W",
        help="build the model for this input shape (zoo builders accept it)",
    )
    parser.add_argument("--num-classes", type=int, metavar="N", help="width of the classifier")


def _build(args: argparse.Namespace):
    return load_model(args.model, args.input_shape, args.num_classes)


def _build_view(args: argparse.Namespace):
    """MODEL for a command that only looks at it: its weights are not drawn."""
    from .graph.layer import shapes_only

    with shapes_only():
        return _build(args)


# ---------------------------------------------------------------------------------- zoo
def _zoo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--names", action="store_true", help="print the names only")


def cmd_zoo(args: argparse.Namespace) -> int:
    """List the zoo: input, output, parameters, MACs, and the paper's year."""
    from .graph.layer import shapes_only
    from .graph.naming import clear_session
    from .graph.summary import human_count

    models = _zoo_models()
    if args.names:
        print("\n".join(models))
        return 0
    try:
        import zoo

        papers = getattr(zoo, "PAPERS", {})
    except ImportError:  # pragma: no cover
        papers = {}
    rows = []
    for name, builder in models.items():
        clear_session()
        with shapes_only():
            model = builder()
        macs = model.macs(model.input_shape, model.output_shape)
        paper = papers.get(name)
        rows.append(
            (
                name,
                "×".join(map(str, model.input_shape[1:])),
                "×".join(map(str, model.output_shape[1:]))
                if not isinstance(model.output_shape, list)
                else f"{len(model.output_shape)} outputs",
                f"{model.count_params():,}",
                human_count(macs),
                str(paper.year) if paper else "",
            )
        )
        del model
    head = ("model", "input", "output", "params", "MACs", "year")
    widths = [max(len(head[c]), *(len(r[c]) for r in rows)) for c in range(len(head))]
    right = {3, 4}

    def line(cells) -> str:
        return "  ".join(
            f"{c:>{w}}" if k in right else f"{c:<{w}}"
            for k, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    print(line(head))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    print("\nMACs: multiply-accumulates of one forward pass of one sample (Conv/Dense layers).")
    return 0


# ---------------------------------------------------------------------------------- views
def _summary_args(parser: argparse.ArgumentParser) -> None:
    _model_args(parser)
    parser.add_argument(
        "--depth",
        type=_int_at_least(0),
        metavar="N",
        help="collapse blocks nested deeper than N into one row",
    )
    parser.add_argument("--line-length", type=_int_at_least(1), metavar="N", help="truncate lines")


def cmd_summary(args: argparse.Namespace) -> int:
    _build_view(args).summary(depth=args.depth, line_length=args.line_length)
    return 0


def _explain_args(parser: argparse.ArgumentParser) -> None:
    _model_args(parser)
    parser.add_argument(
        "--receptive-field",
        "--rf",
        action="store_true",
        help="also give each layer's receptive field and jump, with the formula",
    )


def cmd_explain(args: argparse.Namespace) -> int:
    _build_view(args).explain(receptive_field=args.receptive_field)
    return 0


def _draw_args(parser: argparse.ArgumentParser) -> None:
    _model_args(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="output file: .svg .png .pdf (rendered by dot) or .gv/.dot "
        "(source); default MODEL.svg",
    )
    parser.add_argument(
        "--depth",
        type=_int_at_least(0),
        metavar="N",
        help="collapse blocks nested deeper than N into one node",
    )
    parser.add_argument(
        "--rankdir",
        choices=("TB", "LR"),
        default="TB",
        help="top-to-bottom (default) or left-to-right",
    )
    parser.add_argument(
        "--no-shapes", dest="show_shapes", action="store_false", help="hide output shapes"
    )
    parser.add_argument(
        "--no-params", dest="show_params", action="store_false", help="hide parameter counts"
    )
    parser.add_argument(
        "--collapse-repeated",
        action="store_true",
        help='draw runs of identical blocks once ("bottleneck ×3")',
    )
    parser.add_argument(
        "--fold",
        action="store_true",
        help="fold BatchNormalization/activations into the conv before them",
    )
    parser.add_argument("--dpi", type=_int_at_least(1), help="resolution of .png output")
    parser.add_argument(
        "--max-nodes",
        type=_int_at_least(0),
        default=250,
        metavar="N",
        help="collapse to depth 1 above N visible nodes unless --depth is given "
        "(0: never; default 250)",
    )


def cmd_draw(args: argparse.Namespace) -> int:
    from .graph.render import draw

    model = _build_view(args)
    path = draw(
        model,
        args.output or f"{model.name}.svg",
        show_shapes=args.show_shapes,
        show_params=args.show_params,
        rankdir=args.rankdir,
        depth=args.depth,
        collapse_repeated=args.collapse_repeated,
        fold=args.fold,
        dpi=args.dpi,
        max_nodes=args.max_nodes or None,
    )
    print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------- table
def _deferred(help_: str, module: str, name: str) -> Command:
    """A subcommand whose code lives in ``module`` (``configure_<name>``, ``cmd_<name>``) and
    is imported only when that subcommand is asked for."""
    return Command(
        help_,
        lambda p: getattr(importlib.import_module(module), f"configure_{name}")(p),
        f"{module}:cmd_{name}",
    )


COMMANDS: dict[str, Command] = {
    "zoo": Command("list the zoo models with parameters, MACs and input shape", _zoo_args, cmd_zoo),
    "summary": Command("print a Keras-style summary table of MODEL", _summary_args, cmd_summary),
    "explain": Command(
        "walk through every layer's output-size arithmetic", _explain_args, cmd_explain
    ),
    "draw": Command("draw MODEL's architecture diagram with Graphviz", _draw_args, cmd_draw),
    "train": _deferred(
        "train MODEL (MNIST for 1-channel models); save weights, history, curves",
        "tinycnn.train.cli",
        "train",
    ),
    "runs": _deferred(
        "list the training runs in runs/: epochs done, data, last metric, finished or stopped",
        "tinycnn.train.cli",
        "runs",
    ),
    "evaluate": _deferred(
        "evaluate MODEL with saved weights on its dataset's test split",
        "tinycnn.train.cli",
        "evaluate",
    ),
    "predict": _deferred(
        "classify your own image files with MODEL (MNIST-style preparation for 1 channel)",
        "tinycnn.train.cli",
        "predict",
    ),
    "maps": _deferred(
        "draw the feature maps of a test image (or --image) through MODEL, or its filters",
        "tinycnn.train.cli",
        "maps",
    ),
    "bench": _deferred(
        "time MODEL's training step and forward pass on random data, here",
        "tinycnn.bench",
        "bench",
    ),
}


def _resolve(run: Callable | str) -> Callable[[argparse.Namespace], int]:
    if callable(run):
        return run
    module_name, _, attr = run.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def make_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tinycnn",
        description="tinycnn: a from-scratch CNN engine. MODEL is a zoo name or "
        "package.module:function.",
    )
    parser.add_argument("--version", action="version", version=f"tinycnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def _note_for(command: str):
    """A ``warnings.showwarning`` for the command line: one line, ``tinycnn COMMAND: note:``,
    without Python's file, line and source."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"tinycnn {command}: note: {message}", file=file or sys.stderr)

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tinycnn`` console script; returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _note_for(args.command)
            return int(_resolve(args._run)(args) or 0)
    except BrokenPipeError:  # `tinycnn summary vgg16 | head`: stop quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # Ctrl-C: no traceback, the shell's status for SIGINT
        print(f"\ntinycnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except CLIError as e:
        parser.exit(2, f"tinycnn: error: {e}\n")
    except (ValueError, TypeError) as e:
        parser.exit(2, f"tinycnn {args.command}: error: {e}\n")
    except RuntimeError as e:  # GraphvizNotFoundError and dot failures
        parser.exit(1, f"tinycnn {args.command}: error: {e}\n")
    except OSError as e:  # a file the command reads or writes: missing folder, permissions
        what = f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e)
        parser.exit(1, f"tinycnn {args.command}: error: {what}\n")
    return 0  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
