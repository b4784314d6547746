"""The ``cueflow`` subcommands beyond ``serve`` and ``mcp``: remote commands over a server's
REST API (``cues``, ``executions``, ``workers``), the ``worker`` daemon, and ``db`` and
``accounts`` on the configured database."""
