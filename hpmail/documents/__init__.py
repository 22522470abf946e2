"""Documents: timetables and summaries as data, print HTML, PDF and PNG; the print dialog."""
