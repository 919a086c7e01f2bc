"""Test helpers, one home each: ``repo`` (real git + sops repositories), ``net`` (loopback
ports), ``serve`` (real ``keyops serve`` processes), ``cli`` (running the CLI in-process or as a
subprocess), ``endpoint`` and ``client`` (protocol fixtures), ``fetch`` (served stacks for the
client's integration tests), ``infra`` (the Pulumi program under mocks)."""
