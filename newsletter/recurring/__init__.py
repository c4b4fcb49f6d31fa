"""The optional monthly rule: send each month's edition automatically, or tell the editor why not."""
