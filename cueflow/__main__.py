"""``python -m cueflow`` runs the command line."""

from cueflow.cli import app

app()
