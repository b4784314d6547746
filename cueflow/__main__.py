"""The ``cueflow`` command's entry point (and ``python -m cueflow``).

:func:`main` answers ``--version`` and imports the command line (:mod:`cueflow.cli`) only then,
so a plain install (the embeddable engine, without the ``cli`` or ``server`` extra) still has a
``cueflow`` command that says in one line which extra to install instead of a traceback.
"""

from __future__ import annotations

import sys

from cueflow.extras import extra_for, install_hint
from cueflow.version import __version__


def main() -> None:
    """Run the ``cueflow`` command."""
    args = sys.argv[1:]
    if args[:1] in (["--version"], ["-V"]):
        print(f"cueflow {__version__}")
        return
    try:
        from cueflow.cli import app
    except ModuleNotFoundError as exc:
        if extra_for(exc) is None:
            raise
        # ``serve`` needs the server extra; every other command the cli extra (which it holds)
        extra = "server" if args[:1] == ["serve"] else "cli"
        command = f"cueflow {args[0]}" if args and not args[0].startswith("-") else "cueflow"
        print(f"{command} needs the {extra} extra: {install_hint(extra)}", file=sys.stderr)
        raise SystemExit(2) from None
    app()


if __name__ == "__main__":
    main()
