import { apiKeyProvider, basicAuthProvider, hmacProvider, noneProvider } from './generic.js';
import { githubProvider } from './github.js';
import { clerkProvider, standardWebhooksProvider, svixProvider } from './standard-webhooks.js';
import { stripeProvider } from './stripe.js';
// providers: batch A imports
// providers: batch B imports
// providers: batch C imports
import type { Provider } from '../verifier.js';

/** Every verifier type a source can have, by its `type` name. */
export const PROVIDERS: ReadonlyMap<string, Provider> = new Map(
  (
    [
      standardWebhooksProvider,
      svixProvider,
      clerkProvider,
      githubProvider,
      stripeProvider,
      hmacProvider,
      basicAuthProvider,
      apiKeyProvider,
      noneProvider,
      // providers: batch A
      // providers: batch B
      // providers: batch C
    ] as Provider[]
  ).map((p) => [p.type, p]),
);
