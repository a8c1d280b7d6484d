from django.urls import path

from integrations import views

urlpatterns = [
    path("", views.index, name="integrations_index"),
]
