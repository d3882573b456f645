"""The webhook gateway worker (``opsdeck worker``): reliable outbound partner webhooks
(Standard Webhooks, signed, retried, logged, replayable), the processing of inbound PSP
webhooks the API stored, the platform-event tail and the gateway's metrics. The API uses its
outbox, endpoints and replay to enqueue and manage; nothing here imports the API."""
