"""The package version (one place; read by setup and by runs when they record versions)."""
__version__ = "0.1.0"
