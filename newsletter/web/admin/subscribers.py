"""Subscribers: search, a person's record, suppress, import with a dry run, export, erase (placeholder: being built)."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from .auth import current_editor, requires
from .views import blueprint


@blueprint.route("/subscribers")
@requires()
def subscribers(db: Session) -> ResponseReturnValue:
    return render_template("admin/base.html", signed_in=True, editor=current_editor())
