"""The alert function's domain: rules, state, evaluation, outbox and notifiers."""
