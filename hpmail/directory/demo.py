"""The demo school's directory (placeholder until the generator lands)."""


def build_school(scale: int = 1) -> None:
    """Build the demo directory."""
