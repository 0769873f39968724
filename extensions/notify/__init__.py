"""Notifications: what happened to a person's jobs and money, in the portal, by mail and by
webhook (docs/notifications.md)."""
