"""`python -m seqgan` runs the click CLI."""
from __future__ import annotations


def main() -> None:
    """Run the click CLI: ``seqgan._cli.cli`` when installed, else ``seqgan.cli`` (source checkout)."""
    try:
        from seqgan._cli.cli import main as cli_main  # installed: cli.py is seqgan/_cli/cli.py
    except ModuleNotFoundError:
        from seqgan.cli import main as cli_main  # source checkout: seqgan.__path__ holds the root
    cli_main()


if __name__ == "__main__":
    main()
