// Every client-facing API surface. Adding one is one folder and one line here.

import type { Dialect } from '../server/context.js';
import { openAIDialect } from './openai/index.js';
import { edenDialect } from './eden/index.js';
import { orgDialect } from './org/index.js';
import { messagesDialect } from './messages/index.js';

export const dialects: Dialect[] = [openAIDialect, edenDialect, orgDialect, messagesDialect];
