# Lets setuptools install the top-level cli.py as `seqgan._cli.cli` (see pyproject.toml);
# nothing else lives here.
