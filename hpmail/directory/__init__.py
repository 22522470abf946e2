"""The school's directory: people, cohorts, groups, courses; CSV import; the demo school."""
