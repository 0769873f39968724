"""corehour-client: the portal's public API from a laptop (stdlib only, Python >= 3.11).

``client.api.Portal`` calls the API; ``corehour-client`` (client.cli) is its command line.
"""
