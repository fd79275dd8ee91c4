"""``aiokes bench``: the benchmark suite of the source tree (``bench/``), under the ``aiokes``
command. ``bench`` is not part of the wheel, on purpose: it measures the tree it sits in (it
runs that tree's servers with the tree as working directory and writes its results to
``bench/out``), and a top-level ``bench`` package in site-packages would clash with others of
that name. From an installed aiokes without the source tree this command says how to get it
instead of failing with a traceback."""

from __future__ import annotations

import click

__all__ = ["bench"]

_MISSING = (
    "the benchmark suite is not importable: 'aiokes bench' runs the 'bench' package of the "
    "aiokes source tree, which the wheel does not include. In a checkout of the aiokes "
    "source, run: pip install -e '.[bench]' (an editable install puts the checkout on the "
    "path, so 'aiokes bench' then works from any directory); or, with the bench extra "
    "installed, put the checkout on the path: PYTHONPATH=/path/to/checkout aiokes bench ..."
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
