"""``aiokes bench``: the benchmark suite of the source tree (``bench/``), under the ``aiokes``
command. ``bench`` is not part of the wheel; from an installed aiokes without the source tree
this command says so instead of failing with a traceback."""

from __future__ import annotations

import click

__all__ = ["bench"]

_MISSING = (
    "the benchmark suite is not importable: 'aiokes bench' runs the 'bench' package of the "
    "aiokes source tree. Run it from a checkout (cd into it, or put it on PYTHONPATH), with "
    "the extras installed: pip install -e '.[bench]'"
)


@click.command(
    "bench",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def bench(arguments: tuple[str, ...]) -> None:
    """Load-test aiokes or any KES-compatible server (see bench/README.md)."""
    try:
        from bench.cli import main as bench_main
    except ImportError as exc:
        if exc.name not in ("bench", "bench.cli"):
            raise click.ClickException(f"{_MISSING} ({exc})") from None
        raise click.ClickException(_MISSING) from None
    bench_main.main(args=list(arguments), prog_name="aiokes bench")
