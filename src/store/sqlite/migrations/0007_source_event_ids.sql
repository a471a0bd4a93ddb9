-- A source message's eventId is the provider's delivery id (X-GitHub-Delivery, X-Shopify-Webhook-Id, the Stripe event
-- id, …), which the provider repeats when it redelivers after the source's dedupe window: such a repeat is a message of
-- its own. A client's eventId stays unique per app. The second index finds either kind by eventId.
DROP INDEX message_event_id;
CREATE UNIQUE INDEX message_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL AND source_id IS NULL;
CREATE INDEX message_event_id_lookup ON message (app_id, event_id) WHERE event_id IS NOT NULL;
