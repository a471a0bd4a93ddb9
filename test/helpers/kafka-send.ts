import type { Message, Producer } from 'kafkajs';

/**
 * Puts `messages` on a topic, 1,000 per request, all acknowledged (acks=all). A topic just created may not be served by
 * every part of the broker yet: a failed request is sent again, 250 ms later, up to `tries` times — safe with an
 * idempotent producer, which is what the callers use.
 */
export async function sendInBatches(producer: Producer, topic: string, messages: Message[], tries = 20): Promise<void> {
  for (let i = 0; i < messages.length; i += 1000) {
    const batch = messages.slice(i, i + 1000);
    for (let attempt = 1; ; attempt++) {
      try {
        await producer.send({ topic, acks: -1, messages: batch });
        break;
      } catch (error) {
        if (attempt === tries) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }
}
