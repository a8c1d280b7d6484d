from django.urls import path

from billing import views

urlpatterns = [
    path("", views.index, name="billing_index"),
]
