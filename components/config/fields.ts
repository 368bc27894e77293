/**
 * Field builders for the config schema: each one a zod schema whose every failure carries the
 * message a person reads (`must be an integer from 1 to 65535`), and {@link formatIssues}, which
 * turns zod's issues into `coop:PATH: message` lines.
 */
import { z } from "zod";

type Test = (value: string) => boolean;

const required = (what: string) => (iss: { input?: unknown }) => (iss.input === undefined ? "is required" : what);

/** A non-empty string, optionally checked by `test` (failing with `hint`). */
export function str(hint?: string, test?: Test) {
    const base = z.string({ error: required("must be a non-empty string") }).min(1, { error: "must be a non-empty string", abort: true });
    // abort: later checks (a schema's own refinements) see only values that passed this one.
    return test ? base.refine(test, { error: hint ?? "is not valid", abort: true }) : base;
}

/** A whole number from `min` to `max`. */
export function int(min: number, max: number) {
    const msg = `must be an integer from ${min} to ${max}`;
    return z
        .number({ error: required(msg) })
        .int({ error: msg })
        .min(min, { error: msg })
        .max(max, { error: msg });
}

export function bool() {
    return z.boolean({ error: required("must be true or false") });
}

/** A list; `empty` is the message for a missing or empty list when one item at least is needed. */
export function list<T extends z.ZodType>(item: T, empty?: string) {
    const base = z.array(item, { error: (iss) => (iss.input === undefined && empty ? empty : iss.input === undefined ? "is required" : "must be a list") });
    return empty ? base.min(1, { error: empty }) : base;
}

/** A map whose keys pass `keyTest`. */
export function record<V extends z.ZodType>(keyTest: Test, keyHint: string, value: V) {
    return z.record(z.string().refine(keyTest, { error: keyHint }), value, { error: "must be a map of names to values" });
}

/** An object that refuses keys it does not declare, naming the ones it knows. */
export function object<S extends z.ZodRawShape>(shape: S) {
    const known = Object.keys(shape).join(", ");
    return z.strictObject(shape, {
        error: (iss) => (iss.code === "unrecognized_keys" ? `unknown key (known: ${known})` : iss.input === undefined ? "is required" : "must be an object"),
    });
}

/** `coop:coops[2].domains[0]` from `["coops", 2, "domains", 0]` (the first element names the key). */
export function formatPath(path: readonly PropertyKey[], namespace = "coop"): string {
    let out = namespace;
    path.forEach((p, i) => {
        if (typeof p === "number") out += `[${p}]`;
        else out += i === 0 ? `:${String(p)}` : `.${String(p)}`;
    });
    return out;
}

/** One line per problem: unknown keys one by one, a bad map key by its own message. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[]): string[] {
    const out: string[] = [];
    // Unknown keys first, as a person reads an object: what does not belong, then what is wrong.
    const ordered = [...issues.filter((i) => i.code === "unrecognized_keys"), ...issues.filter((i) => i.code !== "unrecognized_keys")];
    for (const iss of ordered) {
        const path = [...prefix, ...iss.path];
        if (iss.code === "unrecognized_keys") {
            for (const key of iss.keys) out.push(`${formatPath([...path, key])}: ${iss.message}`);
        } else if (iss.code === "invalid_key") {
            out.push(`${formatPath(path)}: ${iss.issues[0]?.message ?? iss.message}`);
        } else {
            out.push(`${formatPath(path)}: ${iss.message}`);
        }
    }
    return out;
}

/** Parses `value` with `schema`; on failure adds its problems under `path` to `errors` and returns undefined. */
export function parseInto<T extends z.ZodType>(schema: T, value: unknown, path: readonly PropertyKey[], errors: string[]): z.output<T> | undefined {
    const r = schema.safeParse(value);
    if (r.success) {
        return r.data;
    }
    errors.push(...formatIssues(r.error.issues, path));
    return undefined;
}
