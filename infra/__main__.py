"""The keyops Pulumi program (filled in by the deployment work; see docs/deploy.md)."""
