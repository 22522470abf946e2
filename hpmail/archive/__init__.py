"""The sent-mail views."""
