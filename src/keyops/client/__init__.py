"""The reference client of protocol v1: the model for the iOS and Android implementations.

Usage, the way an app does it (see docs/client.md for every step and check)::

    config = keyops.client.config.load(Path("keyops-client.json"))
    fetcher = Fetcher(config, Identity(app_version="5.2.0", install_id=stored_install_id),
                      cache=Cache(app_support_dir / "keyops-cache.json"))
    result = fetcher.get()            # key + cluster, from an endpoint, the cache or the app
    ...connect to Pusher with result.key and result.cluster...
    reaction = fetcher.on_pusher_error(close_code)   # on a close; act on reaction.action

Only the standard library does HTTP here, and joserfc does the JOSE: nothing else is needed.
"""

from keyops.client.cache import Cache
from keyops.client.config import ClientConfig, load
from keyops.client.fetcher import Fetcher, Policy, Reaction, Result
from keyops.client.token import Identity
from keyops.core.errors import NothingUsable

__all__ = [
    "Cache",
    "ClientConfig",
    "Fetcher",
    "Identity",
    "NothingUsable",
    "Policy",
    "Reaction",
    "Result",
    "load",
]
