"""The bottom layer: rules every feature shares, importing nothing else of hpmail."""
