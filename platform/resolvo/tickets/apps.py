from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "resolvo.tickets"
    label = "tickets"
