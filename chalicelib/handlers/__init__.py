"""The edge: each module turns one kind of event into a call of the use cases."""
