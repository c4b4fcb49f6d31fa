"""What comes back after a send: events in one vocabulary (`events`), stored once and turned into
effects on subscribers (`record`, `effects`), and the figures the editor sees (`report`, `alerts`)."""
