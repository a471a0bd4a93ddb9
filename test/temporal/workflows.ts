/** Bundled into the test worker: returns the webhook argument as it reached the workflow, decoded. */
export async function echoWebhook(argument: unknown): Promise<unknown> {
  return argument;
}
