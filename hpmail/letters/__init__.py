"""Form letters (lettres types): fields checked in a sandbox, printed like documents."""
