"""One module per subcommand, each with ``register(subparsers)`` and a function of its name."""
