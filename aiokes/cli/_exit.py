"""``kes``'s exit codes for every ``aiokes`` command (spec §9; ``minio/kes:cmd/kes/*.go``).

Scripts read them, so they follow kes rather than click's conventions:

* 0: done (also ``-v/--version``, and Ctrl-C of ``server`` and ``metric``);
* 1: any failure, a bad flag or argument included (kes's ``cli.Fatal`` after ``flag.Parse``),
  and Ctrl-C of a client command (kes exits 1 on ``context.Canceled``);
* 2: help was asked for or a command group was given no command (kes's ``flag.ErrHelp`` and
  ``cmd.Usage(); os.Exit(2)``), except ``ls --help``, which kes treats as a failed parse (1).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

__all__ = ["KesContext", "KesGroup", "use_kes_exit_codes"]

USAGE_EXIT = 2  # help, or a group without a command
FAILURE_EXIT = 1
_HELP_SHOWN = "aiokes.help_shown"
_HELP_IS_A_FAILURE = {"ls"}  # kes ls: cli.Exit(err) for every parse error, ErrHelp included


class KesContext(click.Context):
    """Remembers that help was printed, so that the exit after it is kes's 2."""

    def get_help(self) -> str:
        self.meta[_HELP_SHOWN] = True  # meta is shared by the whole chain of contexts
        return super().get_help()

    def exit(self, code: int = 0) -> NoReturn:
        if code == 0 and self.meta.get(_HELP_SHOWN):
            top_level = self.parent is not None and self.parent.parent is None
            code = (
                FAILURE_EXIT if top_level and self.info_name in _HELP_IS_A_FAILURE else USAGE_EXIT
            )
        super().exit(code)


class KesGroup(click.Group):
    """The ``aiokes`` group: click's handling with kes's exit codes."""

    context_class = KesContext

    def main(  # always exits, as click's standalone mode does
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(USAGE_EXIT)
        except click.UsageError as exc:
            exc.show()
            sys.exit(FAILURE_EXIT)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:  # Ctrl-C or end of input at a prompt
            click.echo("Aborted!", err=True)
            sys.exit(FAILURE_EXIT)
        # Without standalone mode click returns an Exit's code, or the command's return value.
        sys.exit(result if isinstance(result, int) else 0)


def use_kes_exit_codes(command: click.Command) -> None:
    """Give ``command`` and every command under it :class:`KesContext`."""
    command.context_class = KesContext
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            use_kes_exit_codes(subcommand)
