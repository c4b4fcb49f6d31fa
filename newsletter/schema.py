"""Import every mapped module so that `Base.metadata` knows the whole schema."""

from newsletter.clicks import models as click_models
from newsletter.content import autosave as autosave_models
from newsletter.content import history_models
from newsletter.content import models as content_models
from newsletter.db import jobs as scheduler_jobs
from newsletter.db import models as taxonomy_models
from newsletter.editors import models as editor_models
from newsletter.feedback import models as feedback_models
from newsletter.notify import outbox
from newsletter.schedule import models as recurring_models
from newsletter.sending import models as sending_models
from newsletter.webhooks import models as webhook_models
from subscribers import models as subscriber_models

__all__ = ["autosave_models",
           "click_models", "content_models", "history_models", "editor_models", "feedback_models", "outbox",
           "recurring_models", "scheduler_jobs", "sending_models", "subscriber_models", "taxonomy_models",
           "webhook_models"]
