"""The composer, recipient resolution, saved templates and quick e-mails."""
