import { apiKeyProvider, basicAuthProvider, hmacProvider, noneProvider } from './generic.js';
import { githubProvider } from './github.js';
import { clerkProvider, standardWebhooksProvider, svixProvider } from './standard-webhooks.js';
import { stripeProvider } from './stripe.js';
import { hubspotProvider } from './hubspot.js';
import { paddleProvider } from './paddle.js';
import { shopifyProvider } from './shopify.js';
import { slackProvider } from './slack.js';
import { squareProvider } from './square.js';
import { twilioProvider } from './twilio.js';
// providers: batch A imports
// providers: batch B imports
import { discordProvider } from './discord.js';
import { linearProvider } from './linear.js';
import { mailgunProvider } from './mailgun.js';
import { sendgridProvider } from './sendgrid.js';
import { typeformProvider } from './typeform.js';
import { zoomProvider } from './zoom.js';
// providers: batch C imports
import { adyenProvider } from './adyen.js';
import { bitbucketProvider } from './bitbucket.js';
import { gitlabProvider } from './gitlab.js';
import { intercomProvider } from './intercom.js';
import { razorpayProvider } from './razorpay.js';
import { twitchProvider } from './twitch.js';
import { woocommerceProvider } from './woocommerce.js';
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
      shopifyProvider,
      slackProvider,
      twilioProvider,
      paddleProvider,
      squareProvider,
      hubspotProvider,
      // providers: batch A
      // providers: batch B
      linearProvider,
      zoomProvider,
      discordProvider,
      sendgridProvider,
      mailgunProvider,
      typeformProvider,
      // providers: batch C
      gitlabProvider,
      bitbucketProvider,
      twitchProvider,
      woocommerceProvider,
      razorpayProvider,
      intercomProvider,
      adyenProvider,
    ] as Provider[]
  ).map((p) => [p.type, p]),
);
