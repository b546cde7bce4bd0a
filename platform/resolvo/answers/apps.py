from django.apps import AppConfig


class AnswersConfig(AppConfig):
    name = "resolvo.answers"
    label = "answers"
