"""The webhook gateway: reliable outbound partner webhooks (Standard Webhooks, signed, retried,
logged, replayable) and idempotent inbound PSP webhooks (Stripe, Paystack)."""
