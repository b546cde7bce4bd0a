from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "resolvo.organizations"
    label = "organizations"
