"""Editors' accounts: add, list, remove, sign in, change the password, set up and reset 2FA.

Every change is written to the audit log in the same transaction. The first editor is an owner;
the last owner cannot be removed or demoted, so someone can always manage editors.
"""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ContentError
from ..text import line_problem
from . import audit, sessions
from .models import Editor, RecoveryCode, Role
from .passwords import dummy_verify, hash_password, needs_rehash, password_problem, verify_password
from .totp import SecretBox, accepted_step, new_recovery_codes, recovery_hash

MAX_NAME = 200


class EditorError(ContentError):
    """An editor change that cannot be made, naming the field it is about (`reason` is the
    message without it, for a form that shows it beside the field)."""


def normal_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as err:
        raise EditorError(f"{email!r} is not an email address: {err}", field="email") from None


def _checked_name(name: str) -> str:
    name = name.strip()
    problem = line_problem(name, name=True)
    if not name or len(name) > MAX_NAME or problem:
        raise EditorError(f"the name must be one line of 1 to {MAX_NAME} characters"
                          + (f" ({problem})" if problem else ""), field="name")
    return name


def _checked_password(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise EditorError(problem, field="password")
    return password


def find_editor(session: Session, email: str) -> Editor | None:
    try:
        address = normal_email(email)
    except EditorError:
        return None
    return session.scalar(select(Editor).where(Editor.email == address))


def list_editors(session: Session) -> list[Editor]:
    return list(session.scalars(select(Editor).order_by(Editor.created_at, Editor.id)))


def _owners(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Editor).where(
        Editor.role == Role.OWNER, Editor.disabled_at.is_(None))) or 0


def add_editor(session: Session, email: str, *, name: str, password: str, role: Role | None = None,
               actor: str = "", client: str = audit.CLI_CLIENT) -> Editor:
    """A new editor; the first one is an owner whatever `role` says."""
    address = normal_email(email)
    name = _checked_name(name)
    _checked_password(password)
    if session.scalar(select(Editor.id).where(Editor.email == address)) is not None:
        raise EditorError(f"there is already an editor {address}", field="email")
    first = session.scalar(select(func.count()).select_from(Editor)) == 0
    editor = Editor(email=address, name=name, role=Role.OWNER if first else role or Role.EDITOR,
                    password_hash=hash_password(password), created_at=utcnow())
    session.add(editor)
    session.flush()
    audit.record(session, "editor.add", actor=actor or address, client=client,
                 detail={"editor": address, "role": editor.role.value})
    return editor


def _existing(session: Session, email: str) -> Editor:
    editor = find_editor(session, email)
    if editor is None:
        raise EditorError(f"there is no editor {email!r}", field="email")
    return editor


def remove_editor(session: Session, email: str, *, actor: str = "",
                  client: str = audit.CLI_CLIENT) -> None:
    editor = _existing(session, email)
    if editor.role is Role.OWNER and _owners(session) <= 1:
        raise EditorError(f"{editor.email} is the last owner; add another owner first",
                          field="email")
    session.execute(delete(RecoveryCode).where(RecoveryCode.editor_id == editor.id))
    sessions.revoke_all(session, editor.id)
    editor.disabled_at = utcnow()
    editor.email = f"removed-{editor.id}.{editor.email}"[:254]
    audit.record(session, "editor.remove", actor=actor or "cli", client=client,
                 detail={"editor": email.strip().lower()})


def reset_second_factor(session: Session, email: str, *, actor: str = "",
                        client: str = audit.CLI_CLIENT) -> Editor:
    """For an editor who lost their authenticator: 2FA off, recovery codes gone, sessions ended."""
    editor = _existing(session, email)
    editor.totp_secret, editor.totp_last_step = None, None
    session.execute(delete(RecoveryCode).where(RecoveryCode.editor_id == editor.id))
    sessions.revoke_all(session, editor.id)
    audit.record(session, "editor.reset_2fa", actor=actor or "cli", client=client,
                 detail={"editor": editor.email})
    return editor


def authenticate(session: Session, email: str, password: str) -> Editor | None:
    """The editor if the password is theirs. Unknown addresses cost the same as wrong passwords;
    a good password under old argon2 parameters is rehashed."""
    editor = find_editor(session, email)
    if editor is None or editor.disabled_at is not None:
        dummy_verify(password)
        return None
    if not verify_password(editor.password_hash, password):
        return None
    if needs_rehash(editor.password_hash):
        editor.password_hash = hash_password(password)
    return editor


def change_password(session: Session, editor: Editor, *, current: str, new: str,
                    keep_session: int | None, client: str) -> int:
    """Set a new password after proving the current one; ends every other session (how many)."""
    if not verify_password(editor.password_hash, current):
        raise EditorError("the current password is not right", field="current")
    _checked_password(new)
    editor.password_hash = hash_password(new)
    ended = sessions.revoke_all(session, editor.id, keep=keep_session)
    audit.record(session, "editor.password", actor=editor.email, client=client,
                 detail={"sessions_ended": ended})
    return ended


def check_second_factor(session: Session, editor: Editor, code: str, box: SecretBox) -> str | None:
    """How the code was accepted ("totp" or "recovery"), or None. Each is accepted once."""
    if editor.totp_secret is None:
        return None
    step = accepted_step(box.open(editor.totp_secret), code, editor.totp_last_step)
    if step is not None:
        editor.totp_last_step = step
        return "totp"
    if len(code) > 40:
        return None
    found = session.scalar(select(RecoveryCode).where(
        RecoveryCode.editor_id == editor.id, RecoveryCode.code_hash == recovery_hash(code),
        RecoveryCode.used_at.is_(None)))
    if found is None:
        return None
    found.used_at = utcnow()
    return "recovery"


@dataclass(frozen=True)
class SecondFactorSet:
    recovery_codes: tuple[str, ...]
    sessions_ended: int


def enable_second_factor(session: Session, editor: Editor, *, secret: str, code: str,
                         box: SecretBox, keep_session: int | None, client: str) -> SecondFactorSet:
    """Turn on (or replace) TOTP once the editor proves a code from the new secret; new recovery
    codes (shown once); every other session ends."""
    step = accepted_step(secret, code, None)
    if step is None:
        raise EditorError("that code does not match; check the authenticator's clock and try the "
                          "current code", field="code")
    editor.totp_secret, editor.totp_last_step = box.seal(secret), step
    session.execute(delete(RecoveryCode).where(RecoveryCode.editor_id == editor.id))
    codes = new_recovery_codes()
    session.add_all(RecoveryCode(editor_id=editor.id, code_hash=h) for h in codes.hashes)
    ended = sessions.revoke_all(session, editor.id, keep=keep_session)
    audit.record(session, "editor.2fa_on", actor=editor.email, client=client,
                 detail={"sessions_ended": ended})
    return SecondFactorSet(codes.shown, ended)
