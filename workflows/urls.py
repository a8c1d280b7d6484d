from django.urls import path

from workflows import views

urlpatterns = [
    path("", views.index, name="workflows_index"),
]
