"""Pages of delivery."""

from flask import Blueprint

bp = Blueprint("delivery", __name__, cli_group=None)
