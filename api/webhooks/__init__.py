"""The webhook gateway's HTTP face: endpoint management and replay routes, the inbound PSP
webhook endpoint (verify, store, acknowledge) and the delivery and inbound-event pages. The
work itself is the gateway worker's (``gateway/``)."""
