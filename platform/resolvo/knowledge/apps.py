from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "resolvo.knowledge"
    label = "knowledge"
