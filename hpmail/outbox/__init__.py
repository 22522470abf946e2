"""The outbox engine: e-mails written to the database, then delivered by SMTP, never lost.

Read it top to bottom: ``models`` (the tables), ``api`` (the public functions), ``queue`` (a
mailing written as rows), ``claim`` (who takes a row, and gives it back), ``heartbeat`` (living
workers, the rows of dead ones released), ``send`` (one connection per transport and batch),
``smtp`` (connections and the classification of failures), ``health`` (a failing server is the
transport's state, probed once a minute), ``mime``, ``dkim`` (each message signed), ``record``
(each answer written down), ``retry``, ``limits``, ``tasks`` (Huey: deliver and the sweeper). No
Flask view lives here: the pages that configure and watch the engine are in ``hpmail.delivery``.
"""
