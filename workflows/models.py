"""Models for workflows arrive with its issue; the app is installed now so migrations and admin stay in one place."""
