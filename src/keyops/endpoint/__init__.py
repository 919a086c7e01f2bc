"""The key-serving endpoint (docs/protocol.md).

``core`` is the framework-free handler; ``server`` (HTTP/1.1 for ``keyops serve``) and
``lambda_handler`` (API Gateway HTTP API payload v2.0) are thin adapters around it. Nothing the
Lambda imports loads a JOSE library, pulumi or boto3, so its cold start stays small.
"""
