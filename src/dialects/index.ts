// Every client-facing API surface. Adding one is one folder and one line here.

import type { Dialect } from '../server/context.js';
import { openAIDialect } from './openai/index.js';

export const dialects: Dialect[] = [openAIDialect];
