"""The pages that configure and watch the outbox engine: settings, profiles, SMTP tests."""
