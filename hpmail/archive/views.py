"""Pages of archive."""

from flask import Blueprint

bp = Blueprint("archive", __name__, cli_group=None)
