"""Message templates: Jinja files in ``templates/``, rendered in the sandbox.

One file per template, ``templates/<name>.j2``, with blocks::

    {% block subject %}{{ name }}님, 결제가 아직 완료되지 않았어요{% endblock %}
    {% block text %}...plain text body...{% endblock %}
    {% block html %}...optional HTML body (autoescaped)...{% endblock %}
    {% block json %}...optional webhook body: JSON, values through |tojson...{% endblock %}

Undefined variables are errors (StrictUndefined), and nothing from a cell is
executed: cells are values in the context, never template source.

The package:

* ``folder``: the template folder (``Templates``): files read as UTF-8, what a
  template extends, includes and imports followed at load, blocks rendered;
* ``sandbox``: the Jinja environment, the immutable sandbox with every operation
  that can build a large value intercepted;
* ``limits``: how big such a value would be, worked out before it is built, and the
  work budget of one block;
* ``korean``: the filters that make Korean read right: ``josa`` (은/는, 이/가, ...),
  ``kdate`` (``11월 1일 (일)``) and ``won`` (``39,000원``).

This module is the public face: import from ``sheetcrm.templates``.
"""

from __future__ import annotations

from sheetcrm.templates.folder import SUFFIX, Rendered, Templates
from sheetcrm.templates.limits import MAX_TEXT, MAX_WORK

__all__ = ["MAX_TEXT", "MAX_WORK", "SUFFIX", "Rendered", "Templates"]
