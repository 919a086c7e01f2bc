"""Pusher Channels' own protocol, as keyops speaks it: no I/O, only what the wire needs.

- ``api``: signing a Pusher HTTP API request (the official server libraries' scheme) and
  judging its answer;
- ``channel_auth``: private and presence channel authorization signatures from the keyring.
"""
