import os

DATABASE_PASSWORD = os.environ["DATABASE_PASSWORD"]
STRIPE_KEY = os.getenv("STRIPE_KEY")
SECRET_KEY = settings.SECRET_KEY
password_min_length = 12
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
token_url = "https://oauth2.googleapis.com/token"
