"""The ``mrbench`` command line: one click group whose commands load lazily.

Each command lives in its own module and is imported only when invoked, so ``mrbench score``
starts fast and never imports torch. Every command is a thin layer over a library function;
:class:`mrbench.errors.MrbenchError` becomes a one-line message and exit code 2, and so do the
errors of the machine around the input (a file that cannot be read or written, a truncated
file, memory that runs out): a user never sees a traceback for any of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

import click

from mrbench import __version__
from mrbench.errors import MrbenchError, os_error_text

#: command name -> "module:attribute"
COMMANDS = {
    "data": "mrbench.cli.data:data",
    "synth": "mrbench.cli.synth:synth",
    "mask": "mrbench.cli.mask:mask",
    "score": "mrbench.cli.score:score",
    "train-reference": "mrbench.cli.models:train_reference",
    "predict": "mrbench.cli.models:predict",
    "submission": "mrbench.cli.leaderboard:submission",
    "leaderboard": "mrbench.cli.leaderboard:leaderboard",
    "demo": "mrbench.cli.demo:demo",
    "experiment": "mrbench.cli.experiment:experiment",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, target in COMMANDS.items() if importlib.util.find_spec(target.split(":")[0])]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="mrbench")
def cli() -> None:
    """mrbench: benchmark spurious correlations in video moment retrieval."""


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    click.echo(f"warning: {message}", err=True)


def usage_error_text(exc: click.ClickException) -> str:
    """One line for a bad command line: click's message, where to read the usage."""
    line = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    return f"{line} (see '{ctx.command_path} --help')" if ctx is not None else line


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one line and exit with code 2."""
    from mrbench.io import set_limit_factor

    warnings.showwarning = _show_warning
    set_limit_factor(None)  # each run starts from $MRBENCH_SIZE_LIMIT_FACTOR (or 1)
    try:
        cli.main(args=argv, prog_name="mrbench", standalone_mode=False)
    except MrbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"error: {os_error_text(exc)}", err=True)
        sys.exit(2)
    except MemoryError:
        click.echo("error: out of memory: the input asks for more than this machine has "
                   "(docs/security.md lists the bounds)", err=True)
        sys.exit(2)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, EOFError):  # click turns an EOFError from a command into Abort
            click.echo("error: unexpected end of file while reading an input (empty or truncated?)", err=True)
            sys.exit(2)
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {usage_error_text(exc)}", err=True)
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
