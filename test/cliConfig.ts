// The config map a program receives from the Pulumi CLI (3.248), built the way the CLI builds it,
// for the engine-mocked harness (test/mockProgram.ts):
//  - the stack file's values: strings as they are, numbers and booleans as JSON text, objects and
//    lists as JSON, `{secure: ...}` decrypted (here: the caller's plaintext) and marked secret;
//  - Pulumi.yaml's declarations: a declared key the stack does not set gets the declaration's
//    `value` or `default` (on every stack); a declared key of the project's namespace with neither
//    fails the run ("Stack 'dev' is missing configuration value 'x'");
//  - declared types are checked against the stack's values, and `secret: true` keys must be secure.
// Written from the CLI's sources (sdk/go/common/workspace/config.go, resource/config/object.go);
// test/integration/cliConfig.test.ts proves it against the real CLI.
import { readFileSync } from "node:fs";
import * as path from "node:path";

const yaml = require("js-yaml") as { load(text: string, opts?: { schema?: unknown }): unknown; CORE_SCHEMA: unknown };

/** The map the language host hands the program (PULUMI_CONFIG) and its secret keys (PULUMI_CONFIG_SECRET_KEYS). */
export interface CliConfig {
    config: Record<string, string>;
    secretKeys: string[];
}

/** What the CLI refuses before the program runs. */
export class CliConfigError extends Error {}

interface Declaration {
    type?: string;
    items?: { type: string };
    default?: unknown;
    value?: unknown;
    secret?: boolean;
}

function isSecure(v: unknown): v is { secure: string } {
    return v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { secure?: unknown }).secure === "string";
}

/** JSON as Go's encoding/json writes a map: keys sorted, no spaces. */
function goJson(v: unknown): string {
    if (Array.isArray(v)) return `[${v.map(goJson).join(",")}]`;
    if (v !== null && typeof v === "object") {
        return `{${Object.keys(v)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${goJson((v as Record<string, unknown>)[k])}`)
            .join(",")}}`;
    }
    return JSON.stringify(v);
}

/** Replaces each `{secure: ...}` inside a value with its plaintext; reports whether there was one. */
function decrypt(v: unknown, plaintext: (path: string) => string, at: string): { value: unknown; secret: boolean } {
    if (isSecure(v)) return { value: plaintext(at), secret: true };
    if (Array.isArray(v)) {
        const items = v.map((x, i) => decrypt(x, plaintext, `${at}[${i}]`));
        return { value: items.map((x) => x.value), secret: items.some((x) => x.secret) };
    }
    if (v !== null && typeof v === "object") {
        let secret = false;
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
            const d = decrypt(x, plaintext, `${at}.${k}`);
            // Defined, not assigned: a key named __proto__ stays a key, as it does in Go.
            Object.defineProperty(out, k, { value: d.value, enumerable: true, writable: true, configurable: true });
            secret ||= d.secret;
        }
        return { value: out, secret };
    }
    return { value: v, secret: false };
}

/** The text the program receives for a value (object.MarshalString / plaintext.marshalText). */
function text(v: unknown): string {
    return typeof v === "string" ? v : v !== null && typeof v === "object" ? goJson(v) : JSON.stringify(v);
}

function validType(type: string, items: Declaration["items"], v: unknown): boolean {
    switch (type) {
        case "string":
            return typeof v === "string";
        case "integer":
            return (typeof v === "number" && Number.isInteger(v)) || (typeof v === "string" && /^[+-]?[0-9]+$/.test(v));
        case "boolean":
            return typeof v === "boolean" || v === "true" || v === "false";
        case "array":
            return Array.isArray(v) && (!items || v.every((x) => validType(items.type, undefined, x)));
        default:
            return false;
    }
}

/** A default as the CLI sets it (createConfigValue): strings, integers and booleans as text, the rest as JSON. */
function defaultText(v: unknown): string {
    return typeof v === "string" ? v : typeof v === "boolean" || (typeof v === "number" && Number.isInteger(v)) ? String(v) : goJson(v);
}

/**
 * The config the CLI hands a program for `stack`, from the project's Pulumi.yaml in `projectDir`
 * and the stack file (default `Pulumi.<stack>.yaml` beside it). `plaintext(key)` gives the value of
 * each secure entry (the harness makes them up; the CLI decrypts them).
 */
export function cliConfig(
    projectDir: string,
    stack: string,
    opts: { stackFile?: string; stackDoc?: { config?: Record<string, unknown> }; plaintext?: (key: string) => string } = {},
): CliConfig {
    const project = yaml.load(readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8"), { schema: yaml.CORE_SCHEMA }) as {
        name: string;
        config?: Record<string, Declaration | unknown>;
    };
    const stackFile = opts.stackFile ?? path.join(projectDir, `Pulumi.${stack}.yaml`);
    const doc = opts.stackDoc ?? ((yaml.load(readFileSync(stackFile, "utf8"), { schema: yaml.CORE_SCHEMA }) ?? {}) as { config?: Record<string, unknown> });
    const plaintext = opts.plaintext ?? ((key: string) => `mock-secret-of-${key}`);

    const config: Record<string, string> = {};
    const secure = new Set<string>();
    const parsed: Record<string, unknown> = {};
    for (const [key, raw] of Object.entries(doc.config ?? {})) {
        if (!key.includes(":")) {
            throw new CliConfigError(`could not parse ${key} as a configuration key (configuration keys should be of the form \`<namespace>:<name>\`)`);
        }
        const d = decrypt(raw, plaintext, key);
        config[key] = text(d.value);
        parsed[key] = d.value;
        if (d.secret) secure.add(key);
    }

    const declared = Object.entries(project.config ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const missing: string[] = [];
    for (const [name, raw] of declared) {
        const decl: Declaration = raw !== null && typeof raw === "object" && !Array.isArray(raw) ? (raw as Declaration) : { value: raw };
        const key = name.includes(":") ? name : `${project.name}:${name}`;
        if (key in config) continue;
        const fallback = decl.default !== undefined ? decl.default : decl.value;
        if (fallback !== undefined) {
            config[key] = defaultText(fallback);
            parsed[key] = typeof fallback === "object" && fallback !== null ? fallback : config[key];
        } else if (key.startsWith(`${project.name}:`)) {
            missing.push(name);
        }
    }
    if (missing.length === 1) throw new CliConfigError(`Stack '${stack}' is missing configuration value '${missing[0]}'`);
    if (missing.length > 1) {
        // formatMissingKeys: 'a', 'b' and 'c'
        const keys = missing.sort().map((k, i, all) => (i === all.length - 1 ? `and '${k}'` : i === all.length - 2 ? `'${k}' ` : `'${k}', `));
        throw new CliConfigError(`Stack '${stack}' is missing configuration values ${keys.join("")}`);
    }

    for (const [name, raw] of declared) {
        const decl = (raw ?? {}) as Declaration;
        const key = name.includes(":") ? name : `${project.name}:${name}`;
        if (typeof decl !== "object" || decl.type === undefined) continue;
        if (decl.secret && !secure.has(key)) throw new CliConfigError(`Stack '${stack}' with configuration key '${name}' must be encrypted as it's secret`);
        // Scalars reach the check as their text, objects as themselves.
        const v = parsed[key] !== null && typeof parsed[key] === "object" ? parsed[key] : config[key];
        if (!validType(decl.type, decl.items, v)) {
            throw new CliConfigError(
                `Stack '${stack}' with configuration key '${name}' must be of type '${decl.type === "array" && decl.items ? `array<${decl.items.type}>` : decl.type}'`,
            );
        }
    }
    return { config, secretKeys: [...secure].sort() };
}
