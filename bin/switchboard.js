#!/usr/bin/env node
// Runs the compiled CLI (npm run build first; `npm start` does both).
import '../dist/cli/index.js';
