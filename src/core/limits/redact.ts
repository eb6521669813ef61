// Request bodies for the request log: media bytes summarised, secrets replaced. Nothing that
// looks like a credential is ever written.

const SECRET_FIELD = /^(api[-_]?key|x[-_]api[-_]key|authorization|proxy[-_]authorization|secret|client[-_]?secret|password|token|access[-_]?token|refresh[-_]?token|session[-_]?token|aws[-_]?secret[-_]?access[-_]?key)$/i;
/** Switchboard keys, bearer tokens and common vendor key shapes inside free text. */
const SECRET_TEXT = /(sb-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9_-]{16,}|Bearer\s+[A-Za-z0-9._~+/=-]{8,})/g;

export const REDACTED = '[redacted]';

export function redactText(text: string): string {
  return text.replace(SECRET_TEXT, REDACTED);
}

/** JSON text of a value with secret fields and secret-looking strings redacted. */
export function redactedJson(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => {
    if (key && SECRET_FIELD.test(key)) return REDACTED;
    if (v instanceof Uint8Array) return `[${v.byteLength} bytes]`;
    if (typeof v === 'string') return redactText(v);
    return v;
  });
}
