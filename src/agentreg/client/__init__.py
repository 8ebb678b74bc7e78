"""agentreg Python SDK: ``Client`` and ``AsyncClient`` over the /v1 API, with typed results and errors.

from agentreg.client import Client
with Client() as registry:
    config = registry.resolve("agent/com.acme/support-bot@stable")
"""

from agentreg.api.schemas import (
    AliasList,
    AliasOut,
    ApplyItemOut,
    ApplyOut,
    DependencyOut,
    PublishOut,
    ResolvedOut,
    ResolveOut,
    ResourceOut,
    ResourcePage,
    VersionList,
    VersionOut,
    VersionStatus,
)
from agentreg.client._async import AsyncClient
from agentreg.client._sync import Client
from agentreg.client.errors import (
    AgentRegClientError,
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PreconditionFailedError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "AgentRegClientError",
    "AliasList",
    "AliasOut",
    "ApplyItemOut",
    "ApplyOut",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "DependencyOut",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "PublishOut",
    "ResolveOut",
    "ResolvedOut",
    "ResourceOut",
    "ResourcePage",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "VersionList",
    "VersionOut",
    "VersionStatus",
]
