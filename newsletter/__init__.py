"""newsletter: publish a monthly research-summary email to topic-filtered subscribers."""

__version__ = "0.1.0"
