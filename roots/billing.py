"""The billing service's composition root: the service, with courses and notifications as
its plugins.

The hub starts it as ``python -m roots.billing --site SITE`` (roots/hub.py).
"""

from billing_hooks.service.app import main
from extensions.courses.service_plugin import CoursesPlugin
from extensions.notify.service_plugin import NotifyPlugin
from roots.malloc import limit_malloc_arenas

PLUGINS = [CoursesPlugin(), NotifyPlugin()]


def run() -> None:
    """``corehour-billing``: the service, as ``python -m roots.billing`` starts it."""
    limit_malloc_arenas()  # its meter and pages work on threads (roots/malloc.py)
    main(PLUGINS)


if __name__ == "__main__":
    run()
