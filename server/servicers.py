"""gRPC glue: request message -> domain call -> response message.

Nothing here decides anything; authentication, connections and error
mapping happen once, in interceptors.ServiceInterceptor.
"""

from google.protobuf import timestamp_pb2

from promptgauge.v1 import analytics_pb2_grpc, prompts_pb2, prompts_pb2_grpc

from .interceptors import current_caller
from .registry import PromptRegistry, VersionView


def _opt(message, field: str):
    """The value of an `optional` field, or None when it is unset."""
    return getattr(message, field) if message.HasField(field) else None


def version_message(view: VersionView) -> prompts_pb2.PromptVersion:
    create_time = timestamp_pb2.Timestamp()
    create_time.FromDatetime(view.create_time)
    return prompts_pb2.PromptVersion(
        id=view.id,
        name=view.name,
        version=view.version,
        template_text=view.template_text,
        description=view.description,
        is_active=view.is_active,
        parent_version=view.parent_version,
        created_by=view.created_by,
        create_time=create_time,
        variables=view.variables,
    )


class PromptServicer(prompts_pb2_grpc.PromptServiceServicer):
    def __init__(self, registry: PromptRegistry):
        self.registry = registry

    def CreatePromptVersion(self, request, context):
        view = self.registry.create_version(
            current_caller(),
            name=request.name,
            template_text=request.template_text,
            description=request.description,
            version=_opt(request, "version"),
            parent_version=_opt(request, "parent_version"),
            activate=_opt(request, "activate"),
        )
        return prompts_pb2.CreatePromptVersionResponse(prompt_version=version_message(view))

    def ListPrompts(self, request, context):
        views, token = self.registry.list_all(current_caller(), request.page_size, request.page_token)
        return prompts_pb2.ListPromptsResponse(
            prompt_versions=[version_message(v) for v in views], next_page_token=token
        )

    def ListPromptVersions(self, request, context):
        views, token = self.registry.list_versions(
            current_caller(), request.name, request.page_size, request.page_token
        )
        return prompts_pb2.ListPromptVersionsResponse(
            prompt_versions=[version_message(v) for v in views], next_page_token=token
        )

    def GetPromptVersion(self, request, context):
        view = self.registry.get_version(current_caller(), request.name, _opt(request, "version"))
        return prompts_pb2.GetPromptVersionResponse(prompt_version=version_message(view))

    def ActivatePromptVersion(self, request, context):
        view = self.registry.activate(current_caller(), request.name, request.version)
        return prompts_pb2.ActivatePromptVersionResponse(prompt_version=version_message(view))

    def RenderPrompt(self, request, context):
        text, version = self.registry.render(
            current_caller(), request.name, dict(request.variables), _opt(request, "version")
        )
        return prompts_pb2.RenderPromptResponse(text=text, version=version)


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    """Answers UNIMPLEMENTED until the analytics issue lands."""
