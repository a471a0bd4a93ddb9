"""A Python Temporal worker (the official `temporalio` SDK) for the exact-payload test: its workflow reads the webhook
argument with the SDK's default converter (Python's json, which keeps integers of any size) and answers what it read,
as strings, so the TypeScript test can compare digits without going through JS numbers.

usage: exact_worker.py <host:port> <task queue>
Prints "ready" once polling; runs until stdin closes.
"""
import asyncio
import sys
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker


@workflow.defn(name="exactWebhook")
class ExactWebhook:
    @workflow.run
    async def run(self, argument: dict) -> dict:
        data = argument["data"]
        return {
            "id": str(data["id"]),
            "idType": type(data["id"]).__name__,
            "f": repr(data["f"]),
            "s": data["s"],
            "webhookId": argument["headers"]["webhook-id"],
        }


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue, workflows=[ExactWebhook], graceful_shutdown_timeout=timedelta(seconds=1)):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
