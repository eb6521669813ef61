// GET /api/v3/artifacts/:id?expires=…&signature=… — files tools produced, served by the gateway
// itself. The signature is the credential (no API key): tampered or expired → 403.

import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../../core/errors.js';
import { ARTIFACT_ROUTE_PREFIX } from '../../core/artifacts/store.js';
import type { ToolService } from '../../core/tools/index.js';

const INLINE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

export function registerArtifactRoute(app: FastifyInstance, tools: ToolService): void {
  app.get<{ Params: { id: string }; Querystring: { expires?: string; signature?: string } }>(
    `${ARTIFACT_ROUTE_PREFIX}:id`,
    { config: { publicRoute: true } as Record<string, unknown> },
    async (request, reply) => {
      const local = tools.localArtifacts;
      if (!local) throw new GatewayError('not_found', 'Artifacts are stored in S3; use the presigned URL', { code: 'artifact_not_found' });
      const check = local.check(request.params.id, request.query.expires, request.query.signature);
      if (check === 'expired') throw new GatewayError('permission', 'This download URL has expired', { code: 'artifact_url_expired' });
      if (check !== 'ok') throw new GatewayError('permission', 'This download URL is not valid (bad signature)', { code: 'artifact_url_invalid' });
      const artifact = await local.read(request.params.id);
      if (!artifact) throw new GatewayError('not_found', 'The artifact no longer exists', { code: 'artifact_not_found' });
      // A tool names the type of what it returns: served from the gateway's own origin, an SVG or
      // HTML file could run script there. Nothing served here runs (sandbox, no sniffing), and only
      // raster images are shown inline; anything else is a download.
      return reply
        .header('content-type', artifact.mediaType)
        .header('cache-control', 'private, max-age=60')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .header('content-disposition', INLINE_TYPES.has(artifact.mediaType.toLowerCase()) ? 'inline' : 'attachment')
        .send(artifact.data);
    },
  );
}
