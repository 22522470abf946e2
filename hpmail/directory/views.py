"""Pages of directory."""

from flask import Blueprint

bp = Blueprint("directory", __name__, cli_group=None)
