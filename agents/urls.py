from django.urls import path

from agents import views

urlpatterns = [
    path("", views.index, name="agents_index"),
]
