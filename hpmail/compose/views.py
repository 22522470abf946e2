"""Pages of compose."""

from flask import Blueprint

bp = Blueprint("compose", __name__, cli_group=None)
