"""The Starlette API: drilldowns, one-click actions, incidents, webhooks."""
