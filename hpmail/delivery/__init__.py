"""Delivery: transports, the outbox, MIME building, From policy, worker tasks, retries, sweeper."""
