from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "resolvo.webhooks"
    label = "webhooks"
