from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "resolvo.conversations"
    label = "conversations"
