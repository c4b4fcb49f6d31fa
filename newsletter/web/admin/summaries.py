"""The month's summaries: list, the form, DOI autofill, preview, autosave, revisions (placeholder: being built)."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from .auth import current_editor, requires
from .views import blueprint


@blueprint.route("/summaries")
@requires()
def summaries(db: Session) -> ResponseReturnValue:
    return render_template("admin/base.html", signed_in=True, editor=current_editor())
