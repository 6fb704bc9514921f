"""humanparse: human parsing (body parts and clothes) over several label domains."""

__version__ = "0.1.0"
