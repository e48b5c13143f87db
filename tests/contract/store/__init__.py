"""The MessageStore contract: every adapter (SQLite, MongoDB over mongomock, a real server) passes the same tests.

The server is FerretDB, built and started by the suite (tests/helpers/ferretdb.py: backend "ferretdb"), or a real
MongoDB when WAQ_TEST_MONGO_URL (e.g. mongodb://localhost:27017) is set (backend "mongo"); each test gets a
throw-away database on it. Time is always passed in: nothing here sleeps.

Every test takes tests/conftest.py's `store` fixture, parametrised over the adapters, so each file runs on all of
them; the files go by topic (enqueue, claims and leases, dispatch, operator, counts and history, the lifecycle table,
sessions, the mark's gates), and helpers.py holds what they share.
"""
