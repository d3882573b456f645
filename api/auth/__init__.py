"""Sign-in: local users (argon2 + TOTP), sessions in Redis, API keys, trusted-proxy SSO."""
