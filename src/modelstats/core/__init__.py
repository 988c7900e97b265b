"""Shared by every room: errors, settings, time and duration grammar, reports, the event
contract and the CloudEvents codec."""
