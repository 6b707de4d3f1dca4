"""Fixtures for the payment tests: none of these are real."""

FAKE_STRIPE_KEY = "sk_live_" + "0" * 24
GITHUB_TOKEN = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
DB_PASSWORD = "test-password"
API_KEY = "dummy-api-key-for-tests"
password = "password"
SECRET = "not-a-real-secret"
