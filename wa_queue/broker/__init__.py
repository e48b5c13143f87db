"""Broker plumbing: the publisher (publisher.py), the kombu envelope it writes (envelope.py), the relay that
publishes in the background for the API (relay.py), and the epoch that shows when the broker lost its tasks
(epoch.py)."""
