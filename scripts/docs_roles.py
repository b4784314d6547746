"""Griffe extension for the Python API reference (``mkdocs.yml``, mkdocstrings' extensions):
cueflow's docstrings name code with Sphinx roles (``:class:`~cueflow.records.Cue```) and
double backticks; this writes the roles as Markdown code (``Cue``) before they are rendered."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    """A role as inline code: the last dotted part when the target starts with ``~``."""
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(Extension):
    """Rewrite each docstring's Sphinx roles as Markdown code."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring, if it has one."""
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_code, obj.docstring.value)
