"""Option parsers shared by the CLI commands."""

from __future__ import annotations

import math

import click

#: Seeds: non-negative integers that fit in 63 bits.
SEED = click.IntRange(0, 2**63 - 1)


class FiniteFloat(click.ParamType):
    """A finite float (no NaN or infinity) within optional bounds; ``min_open`` excludes ``min``."""

    name = "float"

    def __init__(self, min: float | None = None, max: float | None = None, *, min_open: bool = False) -> None:
        self.min, self.max, self.min_open = min, max, min_open

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number, got {value!r}", param, ctx)
        if self.min is not None and (number < self.min or (self.min_open and number == self.min)):
            bound = "positive" if self.min_open and self.min == 0 else f"{'>' if self.min_open else '>='} {self.min:g}"
            self.fail(f"must be {bound}, got {value!r}", param, ctx)
        if self.max is not None and number > self.max:
            self.fail(f"must be <= {self.max:g}, got {value!r}", param, ctx)
        return number


def parse_seeds(ctx: click.Context | None, param: click.Parameter | None, value: str) -> list[int]:
    """Click callback: "0,1,2" -> [0, 1, 2]; distinct non-negative integers, at least one.

    As a callback it runs before the command body, so a bad value writes nothing.
    """
    try:
        seeds = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not seeds or any(not SEED.min <= s <= SEED.max for s in seeds) or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"expected distinct non-negative integers below 2**63, got {value!r}")
    return seeds


def _set_limit_factor(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    from mrbench.io import set_limit_factor

    set_limit_factor(value)  # set (or cleared) on every run of the command


def size_limit_option(command: click.Command) -> click.Command:
    """``--size-limit-factor F``: multiply every bound on input sizes (docs/security.md)."""
    return click.option(
        "--size-limit-factor", type=FiniteFloat(0, min_open=True), default=None, expose_value=False,
        callback=_set_limit_factor, is_eager=True,
        help="Multiply every bound on input sizes (docs/security.md) [default: $MRBENCH_SIZE_LIMIT_FACTOR or 1].",
    )(command)
