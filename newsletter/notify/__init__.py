"""Notes to the editor, kept until delivered."""
