// One BedrockRuntimeClient per distinct (region, endpoint, credentials, attempts) configuration.
//
// region: deployment.region ?? AWS_REGION ?? AWS_DEFAULT_REGION ?? 'us-east-1'; endpoint:
// deployment.baseUrl when set. Credentials: static keys from deployment.options (accessKeyId +
// the secret read from the variable named by secretAccessKeyEnv), a Bedrock API key (the
// deployment's apiKey, sent as Bearer), or else the SDK's default provider chain. Transport: the
// SDK's own HTTP/2, or HTTP/1.1 through a CONNECT tunnel when the environment names an egress
// proxy for the endpoint (a tunnel for node:http cannot carry the SDK's HTTP/2; Bedrock's
// Converse API answers HTTP/1.1 as well, as botocore speaks it), or HTTP/1.1 direct with the
// deployment's `http1` option.

import { createHash } from 'node:crypto';
import { BedrockRuntimeClient, type BedrockRuntimeClientConfig } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { GatewayError } from '../../core/errors.js';
import { awsEndpoint, proxiedAwsRequestHandler } from '../../core/proxy.js';
import type { ResolvedDeployment } from '../../core/models.js';
import type { BedrockDeploymentOptions } from './options.js';

export function bedrockRegion(deployment: ResolvedDeployment, env: NodeJS.ProcessEnv = process.env): string {
  return deployment.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
}

export function bedrockClientConfig(
  deployment: ResolvedDeployment,
  options: BedrockDeploymentOptions,
  env: NodeJS.ProcessEnv = process.env,
): BedrockRuntimeClientConfig {
  const config: BedrockRuntimeClientConfig = {
    region: bedrockRegion(deployment, env),
    maxAttempts: options.maxAttempts,
  };
  if (deployment.baseUrl) config.endpoint = deployment.baseUrl;
  if (options.accessKeyId) {
    const secretAccessKey = options.secretAccessKeyEnv ? env[options.secretAccessKeyEnv] : undefined;
    if (!secretAccessKey) {
      throw new GatewayError(
        'auth',
        `Deployment '${deployment.name}' sets accessKeyId but the secret variable ${options.secretAccessKeyEnv ?? '(secretAccessKeyEnv unset)'} is empty`,
        { provider: 'bedrock', status: 502, code: 'upstream_credentials_missing', retryable: false },
      );
    }
    const sessionToken = options.sessionTokenEnv ? env[options.sessionTokenEnv] : undefined;
    config.credentials = { accessKeyId: options.accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  } else if (deployment.apiKey) {
    config.token = { token: deployment.apiKey };
    config.authSchemePreference = ['httpBearerAuth'];
  }
  return config;
}

/**
 * The URL the client will call, for the proxy choice: the deployment's baseUrl, else the endpoint
 * variables the SDK reads, else the region's public endpoint.
 */
export function bedrockEndpoint(config: BedrockRuntimeClientConfig, env: NodeJS.ProcessEnv = process.env): string {
  const configured = typeof config.endpoint === 'string' ? config.endpoint : undefined;
  return awsEndpoint(configured, 'BEDROCK_RUNTIME', `https://bedrock-runtime.${String(config.region)}.amazonaws.com`, env);
}

export class BedrockClientPool {
  private readonly clients = new Map<string, BedrockRuntimeClient>();

  get(deployment: ResolvedDeployment, options: BedrockDeploymentOptions): BedrockRuntimeClient {
    const config = bedrockClientConfig(deployment, options);
    const creds = config.credentials as { accessKeyId?: string; secretAccessKey?: string; sessionToken?: string } | undefined;
    // Hashed so that no secret is kept as a map key.
    const key = createHash('sha256').update(JSON.stringify([
      config.region,
      config.endpoint ?? null,
      config.maxAttempts,
      creds?.accessKeyId ?? null,
      creds?.secretAccessKey ?? null,
      creds?.sessionToken ?? null,
      deployment.apiKey && !creds ? deployment.apiKey : null,
      deployment.headers ?? null,
      options.http1,
    ])).digest('hex');
    let client = this.clients.get(key);
    if (!client) {
      const requestHandler = proxiedAwsRequestHandler(bedrockEndpoint(config), 'bedrock') ?? (options.http1 ? new NodeHttpHandler() : undefined);
      client = new BedrockRuntimeClient(requestHandler ? { ...config, requestHandler } : config);
      const headers = deployment.headers;
      if (headers && Object.keys(headers).length) {
        // Extra upstream headers (a proxy's), added before signing so they are signed too.
        client.middlewareStack.add(
          (next) => async (args) => {
            const req = args.request as { headers?: Record<string, string> };
            if (req.headers) Object.assign(req.headers, headers);
            return next(args);
          },
          { step: 'build', name: 'switchboardExtraHeaders' },
        );
      }
      this.clients.set(key, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
  }
}
