from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "resolvo.dashboard"
    label = "dashboard"
