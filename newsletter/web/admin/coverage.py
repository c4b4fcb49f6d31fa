"""Topic coverage: the 36 topics against the last 12 editions and who follows each (placeholder: being built)."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from .auth import current_editor, requires
from .views import blueprint


@blueprint.route("/topics")
@requires()
def coverage(db: Session) -> ResponseReturnValue:
    return render_template("admin/base.html", signed_in=True, editor=current_editor())
