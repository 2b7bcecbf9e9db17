"""`python -m seqgan` runs the click CLI."""
from __future__ import annotations


def main(args: list[str] | None = None, prog_name: str | None = None) -> None:
    """Run the click CLI: ``seqgan._cli.cli`` when installed, else ``seqgan.cli`` (source
    checkout). A process that joined a distributed job (torchrun) ends through
    :func:`seqgan.distributed.group.leave`, which skips the interpreter's teardown."""
    try:
        from seqgan._cli.cli import main as cli_main  # installed: cli.py is seqgan/_cli/cli.py
    except ModuleNotFoundError:
        from seqgan.cli import main as cli_main  # source checkout: seqgan.__path__ holds the root
    try:
        cli_main(args=args, prog_name=prog_name)
        code = 0
    except SystemExit as e:
        code = e.code
    from seqgan.distributed.group import leave
    leave(code)


if __name__ == "__main__":
    main()
