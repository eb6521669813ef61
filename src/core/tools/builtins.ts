// Built-in tools that need no network: clock, arithmetic, echo.

import type { ExecutableTool } from './types.js';
import { textOutput } from './types.js';

/** Evaluates + - * / % ^ and parentheses over numbers; nothing else (no eval). */
export function evaluateArithmetic(expression: string): number {
  const tokens = expression.match(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|[-+*/%^()]|\S/gi) ?? [];
  let pos = 0;
  const peek = () => tokens[pos];
  const take = () => tokens[pos++];
  const primary = (): number => {
    const token = take();
    if (token === '(') {
      const value = sum();
      if (take() !== ')') throw new Error('missing )');
      return value;
    }
    if (token === '-') return -primary();
    if (token === '+') return primary();
    if (token !== undefined && /^\d/.test(token)) return Number(token);
    throw new Error(`unexpected ${token ?? 'end of expression'}`);
  };
  const power = (): number => {
    const base = primary();
    if (peek() === '^') {
      take();
      return base ** power();
    }
    return base;
  };
  const product = (): number => {
    let value = power();
    while (peek() === '*' || peek() === '/' || peek() === '%') {
      const op = take();
      const right = power();
      value = op === '*' ? value * right : op === '/' ? value / right : value % right;
    }
    return value;
  };
  const sum = (): number => {
    let value = product();
    while (peek() === '+' || peek() === '-') value = take() === '+' ? value + product() : value - product();
    return value;
  };
  const result = sum();
  if (pos !== tokens.length) throw new Error(`unexpected ${tokens[pos]}`);
  return result;
}

const currentTime: ExecutableTool = {
  name: 'current_time',
  description: 'The current date and time (ISO 8601), optionally in an IANA time zone.',
  parameters: { type: 'object', properties: { timezone: { type: 'string', description: 'IANA time zone, e.g. Australia/Sydney' } } },
  source: 'builtin',
  async execute(input) {
    const now = new Date();
    const timezone = typeof input.timezone === 'string' ? input.timezone : 'UTC';
    try {
      const local = now.toLocaleString('en-AU', { timeZone: timezone, dateStyle: 'full', timeStyle: 'long' });
      return textOutput(`${local} (${now.toISOString()})`, { iso: now.toISOString(), timezone, local });
    } catch {
      return textOutput(`Unknown time zone '${timezone}'`, undefined, true);
    }
  },
};

const calculator: ExecutableTool = {
  name: 'calculator',
  description: 'Evaluates an arithmetic expression (+ - * / % ^ and parentheses).',
  parameters: { type: 'object', properties: { expression: { type: 'string' } }, required: ['expression'] },
  source: 'builtin',
  async execute(input) {
    const expression = String(input.expression ?? '');
    try {
      const value = evaluateArithmetic(expression);
      return textOutput(String(value), { expression, value });
    } catch (err) {
      return textOutput(`Cannot evaluate '${expression}': ${(err as Error).message}`, undefined, true);
    }
  },
};

const echo: ExecutableTool = {
  name: 'echo',
  description: 'Returns its input unchanged.',
  parameters: { type: 'object', properties: { text: { type: 'string' } } },
  source: 'builtin',
  async execute(input) {
    return textOutput(JSON.stringify(input), input);
  },
};

export const builtinTools: ExecutableTool[] = [currentTime, calculator, echo];
