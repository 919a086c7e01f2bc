"""Where a deployed stack's evidence lives: its regions and log group, from its Pulumi file.

``stacks/Pulumi.<stack>.yaml`` names the regions (``keyops:regions``) and, when the credentials
stack has another name, ``keyops:credentialsStack``. Only these are read here: the rest of the
deploy settings are the deploy's business (keyops.deploy.config), and a setting unrelated to
adoption must not stop an adoption query.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from keyops.core.errors import DeployConfigError
from keyops.deploy.config import NAMESPACE, REGION_RE, STACK_RE, read_stack_file, stack_file_path


@dataclass(frozen=True)
class Deployment:
    #: The Pulumi stack (names the functions and log groups).
    stack: str
    #: The credentials stack it serves (the ``Stack`` dimension of the EMF metrics).
    credentials_stack: str
    regions: tuple[str, ...]

    @property
    def log_group(self) -> str:
        # The endpoint function's log group in every region (keyops.deploy.regional).
        return f"/aws/lambda/keyops-{self.stack}-endpoint"


def load(root: Path, stack: str) -> Deployment:
    rel = stack_file_path(stack)
    fix = f"Create {rel} with keyops:regions (docs/deploy.md), or check --stack."
    config = read_stack_file(root, stack, fix)
    regions = config.get(f"{NAMESPACE}:regions")
    if (
        not isinstance(regions, list)
        or not regions
        or not all(isinstance(r, str) and REGION_RE.fullmatch(r) for r in regions)
        or len(set(regions)) != len(regions)
    ):
        raise DeployConfigError(
            f"{rel}: {NAMESPACE}:regions must be a list of distinct AWS regions like eu-west-1",
            fix,
        )
    credentials = config.get(f"{NAMESPACE}:credentialsStack", stack)
    if not isinstance(credentials, str) or not STACK_RE.fullmatch(credentials):
        raise DeployConfigError(f"{rel}: {NAMESPACE}:credentialsStack must be a stack name", fix)
    return Deployment(stack, credentials, tuple(regions))
