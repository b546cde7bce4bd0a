from django.contrib.auth import views as auth_views
from django.urls import path

from resolvo.dashboard import team, tuning, views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.SignIn.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("switch/", views.switch, name="switch"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/live/", views.inbox_live, name="inbox-live"),
    path("tickets/<int:ticket_id>/", views.ticket, name="ticket"),
    path("tickets/<int:ticket_id>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:ticket_id>/note/", views.ticket_note, name="ticket-note"),
    path("tickets/<int:ticket_id>/update/", views.ticket_update, name="ticket-update"),
    path("tickets/<int:ticket_id>/take/", views.ticket_take, name="ticket-take"),
    path("tickets/<int:ticket_id>/typing/", views.ticket_typing, name="ticket-typing"),
    path("tickets/<int:ticket_id>/live/", views.ticket_live, name="ticket-live"),
    path("tickets/<int:ticket_id>/drafts/", views.draft_create, name="draft-create"),
    path("tickets/<int:ticket_id>/drafts/<int:draft_id>/discard/", views.draft_discard, name="draft-discard"),
    path("traces/<int:trace_id>/", views.trace, name="trace"),
    path("team/", team.team, name="team"),
    path("team/<int:membership_id>/", team.member_change, name="member"),
    path("invitations/<str:token>/", team.invitation, name="invitation"),
    path("tokens/", team.tokens, name="tokens"),
    path("assistant/", tuning.assistant, name="assistant"),
    path("assistant/runs/", tuning.assistant_runs, name="assistant-runs"),
    path("assistant/runs/<int:run_id>/", tuning.run_action, name="assistant-run"),
    path("assistant/rollback/", tuning.rollback, name="assistant-rollback"),
]
