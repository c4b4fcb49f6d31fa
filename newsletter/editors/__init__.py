"""The people who run the newsletter: editors and owners, their passwords, second factors,
server-side sessions and the audit log. Library code (no Flask, no click): the console's views
and the `newsletter editors` commands call the same functions."""

from __future__ import annotations

from .accounts import (
    EditorError,
    add_editor,
    authenticate,
    change_password,
    find_editor,
    list_editors,
    remove_editor,
    reset_second_factor,
)
from .models import AuditEntry, Editor, EditorSession, RecoveryCode, Role

__all__ = ["AuditEntry", "Editor", "EditorError", "EditorSession", "RecoveryCode", "Role",
           "add_editor", "authenticate", "change_password", "find_editor", "list_editors",
           "remove_editor", "reset_second_factor"]
