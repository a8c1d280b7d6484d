from django.urls import path

from billing import views

urlpatterns = [
    path("", views.index, name="billing_index"),
    path("usage.json", views.usage_json, name="billing_usage_json"),
    path("transactions/", views.history, name="billing_transactions"),
    path("transactions.csv", views.history_csv, name="billing_transactions_csv"),
    path("plans/", views.plans, name="billing_plans"),
    path("plans/change/", views.change_plan, name="billing_change_plan"),
    path("buy/", views.purchase, name="billing_purchase"),
    path("portal/", views.portal, name="billing_portal"),
    path("alerts/", views.alert_settings, name="billing_alert_settings"),
]
