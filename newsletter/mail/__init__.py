"""Every kind of mail is built here: render once per variant, personalise per recipient, compose,
and hand one message over outside the ledger."""
