import type { Dialect } from '../../server/context.js';
import { openAIErrorBody } from './errors.js';
import { registerOpenAIRoutes } from './routes.js';

export const openAIDialect: Dialect = {
  name: 'openai',
  pathPrefixes: ['/v1/chat/', '/api/v3/inference/', '/v1/sessions/'],
  renderError: (error) => ({ status: error.status, body: openAIErrorBody(error) }),
  register: registerOpenAIRoutes,
};
