/**
 * Turns a schema library's issues into Tokenwarden's `invalid_config` error, whose
 * message and `issues` name each field the way a person would write it
 * (`tokenPlacement.template: must contain {token}`).
 */
import type { z } from "zod";
import { type FieldIssue, TokenwardenError } from "./errors.js";

export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  prefix = "",
): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw invalidConfigFromIssues(result.error.issues, prefix);
}

export function invalidConfigFromIssues(
  zodIssues: readonly z.core.$ZodIssue[],
  prefix = "",
): TokenwardenError {
  const issues = zodIssues.flatMap((issue) => describeIssue(issue, prefix));
  const first = issues[0] ?? { field: prefix || "(input)", message: "is invalid" };
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
  return new TokenwardenError("invalid_config", `${first.field}: ${first.message}${more}`, {
    field: first.field,
    issues,
  });
}

function describeIssue(issue: z.core.$ZodIssue, prefix: string): FieldIssue[] {
  const field = fieldPath(prefix, issue.path);
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => ({
        field: fieldPath(prefix, [...issue.path, key]),
        message: "unknown field",
      }));
    case "invalid_type":
      // zod reports a missing field as "expected string, received undefined".
      if (issue.message.endsWith("received undefined")) return [{ field, message: "is required" }];
      return [{ field, message: `must be ${article(issue.expected)}` }];
    case "invalid_value":
      return [{ field, message: `must be one of ${issue.values.map(String).join(", ")}` }];
    default:
      return [{ field, message: issue.message }];
  }
}

function fieldPath(prefix: string, path: readonly PropertyKey[]): string {
  const parts = path.map(String);
  if (prefix !== "") parts.unshift(prefix);
  return parts.join(".") || "(input)";
}

function article(expected: string): string {
  if (expected === "int") return "an integer";
  if (expected === "array" || expected === "object") return `an ${expected}`;
  return `a ${expected}`;
}
