from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The agents runtime registered a placeholder for this type; the real builder replaces it.
        from agents.runtime.tools import register_tool_type
        from knowledge.tools import TOOL_TYPE

        register_tool_type(TOOL_TYPE)
