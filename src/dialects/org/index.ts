import type { Dialect } from '../../server/context.js';
import { orgErrorBody } from './errors.js';
import { registerOrgRoutes } from './routes.js';

export const orgDialect: Dialect = {
  name: 'org',
  pathPrefixes: ['/api/v3/organizations/', '/api/v3/artifacts/'],
  renderError: (error, request) => ({ status: error.status, body: orgErrorBody(error, String(request.id)) }),
  register: registerOrgRoutes,
};
