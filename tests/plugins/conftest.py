"""Example third-party plugin packages live here, each with its own ``pyproject.toml`` and tests.

Their tests run in their own pytest process, against the installed package, as a plugin
author's would (``tests/test_third_party_plugin.py``); this run does not collect them.
"""

collect_ignore = ["cueflow_jsonl"]
