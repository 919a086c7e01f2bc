"""The identifier formats every side of keyops checks, written once.

Use them with ``fullmatch`` (they carry no anchors): ``match`` with ``$`` would accept a trailing
newline. ASCII classes only: ``\\d`` and ``\\w`` also match other scripts' digits and letters.
Standard library only: the endpoint's cold start and the portable reference client import it.
"""

from __future__ import annotations

import re

#: A credential id or an ``app_auth`` kid (the schemas' ``id``).
CREDENTIAL_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
#: A Pusher key or secret: 20 lowercase hexadecimal characters.
PUSHER_HEX = re.compile(r"[0-9a-f]{20}")
#: An app install's id in a request token.
INSTALL_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
