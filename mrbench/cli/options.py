"""Option parsers shared by the CLI commands."""

from __future__ import annotations

import click


def parse_seeds(ctx: click.Context | None, param: click.Parameter | None, value: str) -> list[int]:
    """Click callback: "0,1,2" -> [0, 1, 2]; distinct non-negative integers, at least one.

    As a callback it runs before the command body, so a bad value writes nothing.
    """
    try:
        seeds = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"expected distinct non-negative integers, got {value!r}")
    return seeds
