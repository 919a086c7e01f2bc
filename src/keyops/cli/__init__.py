"""The command line: ``keyops.cli.main`` parses and dispatches, ``commands/`` holds one module
per command, and the rest (reporters, progress, the change workflow, pull requests, the GitHub
client) serves the commands."""
