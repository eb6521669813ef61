// Prepared statements, compiled once per SQL text: preparing on every call was a measurable share
// of a request's CPU on the hot path.

import type Database from 'better-sqlite3';

export type StatementCache = (sql: string) => Database.Statement;

export function statementCache(db: Database.Database): StatementCache {
  const statements = new Map<string, Database.Statement>();
  return (sql) => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
}
