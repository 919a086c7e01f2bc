"""The keyops Pulumi program. Thin on purpose: the components live in ``keyops.deploy``.

``pulumi preview`` / ``pulumi up`` run this with ``stacks/Pulumi.<stack>.yaml``; see docs/deploy.md.
"""

from keyops.deploy.program import main

main()
