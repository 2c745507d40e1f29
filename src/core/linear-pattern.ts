/**
 * `expiredBodyPattern` runs on API answers, so on text an API (or whoever answers in
 * its place) chooses: it is compiled by RE2 (re2js, pure JavaScript), whose matching
 * time is linear in the text, never by the backtracking `RegExp`. A pattern RE2
 * refuses (backreferences, lookaround) is refused when written.
 */
import { RE2JS, RE2JSException } from "re2js";

export type LinearPattern = RE2JS;

export const MAX_PATTERN_LENGTH = 1000;

/** The compiled pattern, or why RE2 refuses it. */
export function compileLinearPattern(
  pattern: string,
): { ok: true; pattern: LinearPattern } | { ok: false; reason: string } {
  if (pattern.length > MAX_PATTERN_LENGTH)
    return { ok: false, reason: `is longer than ${MAX_PATTERN_LENGTH} characters` };
  try {
    return { ok: true, pattern: RE2JS.compile(pattern) };
  } catch (error) {
    if (error instanceof RE2JSException) return { ok: false, reason: error.message };
    throw error;
  }
}
