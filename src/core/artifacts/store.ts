// Files produced by tools (an image a tool made, say): kept on local disk and served by the
// gateway through signed URLs, or put in S3 and served through S3 presigned URLs.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { makeDir } from '../make-dir.js';
import { awsEndpoint, proxiedAwsRequestHandler } from '../proxy.js';
import type { ArtifactsConfig } from './config.js';
import { checkSignature, loadSigningSecret, signedUrl, type SignatureCheck } from './signing.js';

/** The gateway's own download route; `:id` is the artifact id. */
export const ARTIFACT_ROUTE_PREFIX = '/api/v3/artifacts/';

export interface SavedArtifact {
  id: string;
  mediaType: string;
  /** A signed, expiring download URL; relative (gateway route) or absolute (S3). */
  url: string;
}

export interface ArtifactStore {
  save(organisation: string, data: Uint8Array, mediaType: string): Promise<SavedArtifact>;
  /** A fresh signed URL for a saved artifact (one read later than its save, an execution polled). */
  urlFor(organisation: string, id: string): Promise<string>;
}

const ID = /^art_[A-Za-z0-9_-]{16,64}$/;

function newArtifactId(): string {
  return `art_${randomBytes(18).toString('base64url')}`;
}

export class LocalArtifactStore implements ArtifactStore {
  private readonly secret: string;

  constructor(
    private readonly dir: string,
    dataDir: string,
    env: NodeJS.ProcessEnv,
    private readonly config: ArtifactsConfig,
  ) {
    this.secret = loadSigningSecret(dataDir, env, config.secretEnv);
  }

  async save(organisation: string, data: Uint8Array, mediaType: string): Promise<SavedArtifact> {
    const id = newArtifactId();
    makeDir(this.dir);
    await fs.writeFile(path.join(this.dir, id), data);
    await fs.writeFile(path.join(this.dir, `${id}.json`), JSON.stringify({ mediaType, organisation, createdAt: Date.now() }));
    return { id, mediaType, url: await this.urlFor(organisation, id) };
  }

  async urlFor(_organisation: string, id: string): Promise<string> {
    return signedUrl(this.secret, `${ARTIFACT_ROUTE_PREFIX}${id}`, this.config.ttlSeconds);
  }

  check(id: string, expires: unknown, signature: unknown): SignatureCheck {
    if (!ID.test(id)) return 'invalid';
    return checkSignature(this.secret, `${ARTIFACT_ROUTE_PREFIX}${id}`, expires, signature);
  }

  /** The file and its media type; undefined when it is gone. */
  async read(id: string): Promise<{ data: Buffer; mediaType: string } | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      const meta = JSON.parse(await fs.readFile(path.join(this.dir, `${id}.json`), 'utf8')) as { mediaType: string };
      return { data: await fs.readFile(path.join(this.dir, id)), mediaType: meta.mediaType };
    } catch {
      return undefined;
    }
  }
}

/**
 * The URL the S3 client will call, for the proxy choice: the configured endpoint, else the
 * endpoint variables the SDK reads, else the bucket's AWS endpoint.
 */
export function s3Endpoint(s3: NonNullable<ArtifactsConfig['s3']>, env: NodeJS.ProcessEnv = process.env): string {
  const standard = s3.forcePathStyle ? `https://s3.${s3.region}.amazonaws.com` : `https://${s3.bucket}.s3.${s3.region}.amazonaws.com`;
  return awsEndpoint(s3.endpoint, 'S3', standard, env);
}

export class S3ArtifactStore implements ArtifactStore {
  private readonly client: S3Client;

  constructor(
    private readonly s3: NonNullable<ArtifactsConfig['s3']>,
    private readonly ttlSeconds: number,
    env: NodeJS.ProcessEnv,
  ) {
    const accessKeyId = s3.accessKeyIdEnv ? env[s3.accessKeyIdEnv] : undefined;
    const secretAccessKey = s3.secretAccessKeyEnv ? env[s3.secretAccessKeyEnv] : undefined;
    const requestHandler = proxiedAwsRequestHandler(s3Endpoint(s3), 's3');
    this.client = new S3Client({
      region: s3.region,
      endpoint: s3.endpoint,
      forcePathStyle: s3.forcePathStyle,
      credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
      ...(requestHandler ? { requestHandler } : {}),
    });
  }

  async save(organisation: string, data: Uint8Array, mediaType: string): Promise<SavedArtifact> {
    const id = newArtifactId();
    const key = `${this.s3.prefix}${organisation}/${id}`;
    await this.client.send(new PutObjectCommand({ Bucket: this.s3.bucket, Key: key, Body: data, ContentType: mediaType }));
    return { id, mediaType, url: await this.urlFor(organisation, id) };
  }

  urlFor(organisation: string, id: string): Promise<string> {
    const key = `${this.s3.prefix}${organisation}/${id}`;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.s3.bucket, Key: key }), { expiresIn: this.ttlSeconds });
  }
}
