"""The key-serving endpoint (docs/protocol.md).

``core`` is the framework-free handler; ``asgi`` (Starlette, for ``keyops serve``) and
``lambda_handler`` (API Gateway HTTP API payload v2.0) are thin adapters around it. Nothing in
this package imports pulumi or boto3, so the Lambda cold start stays small.
"""
