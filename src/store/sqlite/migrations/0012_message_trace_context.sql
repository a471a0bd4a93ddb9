-- The W3C trace context (traceparent) of the span that accepted a message, when tracing is on: its attempts' spans
-- are children of it (src/observability/tracing.ts). NULL when tracing is off.
ALTER TABLE message ADD COLUMN trace_context TEXT;
