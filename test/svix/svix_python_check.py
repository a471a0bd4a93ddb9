"""Drives hookrelay with the official Svix Python SDK (PyPI `svix`, 2.x), unchanged; run by python.test.ts.

Usage: svix_python_check.py <server url> <token> <receiver url>. Prints one JSON object with what the SDK got back;
any SDK error (an HTTP status hookrelay should not have answered) ends it with a traceback and exit status 1.
"""

import json
import sys
from datetime import datetime, timedelta, timezone

from svix.api import (
    ApplicationIn,
    ApplicationPatch,
    EndpointIn,
    EndpointPatch,
    EndpointSecretRotateIn,
    EventTypeIn,
    MessageIn,
    Svix,
    SvixOptions,
)
from svix.api.message import message_in_raw

server_url, token, receiver_url = sys.argv[1:4]
svix = Svix(token, SvixOptions(server_url=server_url, retry_schedule=[]))
out = {}

# The SDK sends "metadata": null (and other nulls) for every field not given.
app = svix.application.create(ApplicationIn(name="python app"))
out["app_metadata"] = app.metadata
svix.event_type.create(EventTypeIn(name="py.event", description="from Python"))
endpoint = svix.endpoint.create(app.id, EndpointIn(url=receiver_url, eventTypes=["py.event"], channels=["project:123", "a+b"]))
out["endpoint_event_types"] = endpoint.event_types
out["endpoint_channels"] = sorted(endpoint.channels or [])
out["endpoint_metadata"] = endpoint.metadata
patched = svix.endpoint.patch(app.id, endpoint.id, EndpointPatch(description="patched"))
out["patched_event_types"] = patched.event_types
out["patched_description"] = patched.description
out["app_patched_name"] = svix.application.patch(app.id, ApplicationPatch(name="renamed")).name

msg = svix.message.create(app.id, MessageIn(eventType="py.event", payload={"from": "python"}, channels=["project:123"]))
out["message_id"] = msg.id
raw_in = message_in_raw("py.event", '{"raw":  true}')
raw_in.channels = ["a+b"]
raw = svix.message.create(app.id, raw_in)
out["raw_id"] = raw.id

inline = svix.message.create(
    "py-inline-app",
    MessageIn(eventType="py.event", payload={"inline": True}, application=ApplicationIn(name="inline from python", uid="py-inline-app")),
)
out["inline_app_name"] = svix.application.get("py-inline-app").name
out["inline_message_id"] = inline.id

later = datetime.now(timezone.utc) + timedelta(hours=1)
scheduled = svix.message.create(app.id, MessageIn(eventType="py.event", payload={"later": True}, channels=["a+b"], deliverAt=later))
destinations = svix.message_attempt.list_attempted_destinations(app.id, scheduled.id)
out["scheduled_status"] = int(destinations.data[0].status)
out["scheduled_next_attempt_ms"] = int(destinations.data[0].next_attempt.timestamp() * 1000)
out["scheduled_at_ms"] = int(later.timestamp() * 1000)

out["secret"] = svix.endpoint.get_secret(app.id, endpoint.id).key
rotated = svix.endpoint.rotate_secret(app.id, endpoint.id, EndpointSecretRotateIn())
out["rotated_is_current"] = rotated.key == svix.endpoint.get_secret(app.id, endpoint.id).key
out["rotated_is_new"] = rotated.key != out["secret"]
out["stats"] = svix.endpoint.get_stats(app.id, endpoint.id).model_dump(mode="json")
print(json.dumps(out, default=str))
