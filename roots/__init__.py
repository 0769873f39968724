"""corehour's two composition roots: the only modules that import across features.

``roots/hub.py`` wires the hub process (from ``roots/jupyterhub_config.py``); ``roots/billing.py``
is the billing service's entry point.  Nothing imports them.
"""
