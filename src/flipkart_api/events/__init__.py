"""Domain events: the outbox, the worker, order emails and signed webhooks."""
