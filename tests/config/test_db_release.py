"""config.db.release: a thread about to wait hands its connection back, only where that is safe."""

import pytest
from django.db import connection, transaction

from config.db import release


@pytest.mark.django_db(transaction=True)
def test_release_hands_the_connection_back_outside_a_transaction(settings):
    settings.DB_POOL = True
    connection.ensure_connection()
    release()
    assert connection.connection is None
    with connection.cursor() as cursor:  # the next query simply takes a connection again
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(transaction=True)
def test_release_keeps_the_connection_inside_a_transaction(settings):
    settings.DB_POOL = True
    with transaction.atomic():
        connection.ensure_connection()
        release()
        assert connection.connection is not None


@pytest.mark.django_db(transaction=True)
def test_release_does_nothing_without_a_pool(settings):
    settings.DB_POOL = False
    connection.ensure_connection()
    release()
    assert connection.connection is not None


def test_pool_settings_outside_tests():
    """The settings module turns the pool on by default and then requires CONN_MAX_AGE 0."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TESTING": "false", "DEBUG": "true"}
    env.pop("DB_POOL", None)
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup(); "
        "from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(s.DB_POOL, d['CONN_MAX_AGE'], d['OPTIONS']['pool']['max_size'], s.CELERY_DB_REUSE_MAX)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "0", "40", "None"]
