// Seed 002: Eden AI-style multi-provider chat.

import type { Dialect } from '../../server/context.js';
import { edenErrorBody } from './errors.js';
import { registerEdenRoutes } from './routes.js';

export const edenDialect: Dialect = {
  name: 'eden',
  pathPrefixes: ['/v2/'],
  renderError: (error) => ({ status: error.status, body: edenErrorBody(error) }),
  register: registerEdenRoutes,
};
