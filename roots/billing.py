"""The billing service's composition root: the service, with courses as its plugin.

The hub starts it as ``python -m roots.billing --site SITE`` (roots/hub.py).
"""

from billing_hooks.service.app import main
from extensions.courses.service_plugin import CoursesPlugin

PLUGINS = [CoursesPlugin()]


def run() -> None:
    """``corehour-billing``: the service, as ``python -m roots.billing`` starts it."""
    main(PLUGINS)


if __name__ == "__main__":
    run()
