"""The keyops Pulumi program. Thin on purpose: the components live in ``keyops.deploy``.

``pulumi preview`` / ``pulumi up`` run this with ``stacks/Pulumi.<stack>.yaml`` (keyops'
docs/deploy.md). ``keyops init`` writes this same file into a credentials repository of its own.
"""

from keyops.deploy.program import main

main()
