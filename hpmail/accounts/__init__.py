"""Sending identities: school (shared) accounts, personal accounts, verification, mail settings."""
