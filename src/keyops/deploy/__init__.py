"""Deployment of the key-serving endpoint to AWS with Pulumi (see docs/deploy.md).

``config`` and ``asset`` import no Pulumi; the components (``regional``, ``frontdoor``,
``keyring``, ``iam``) and ``program`` do. The CrossGuard rules live in ``guard``.
"""
