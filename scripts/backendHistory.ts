// The newest updates of a stack in a file backend, read from the backend's own files, in the
// shape `pulumi stack history --json` prints them. Rollback's fast path switches on this page
// without starting the CLI (under load the CLI's half second of CPU was the longest wait before
// the switch); the CLI's reading of the whole history follows the switch and must plan the same
// rollback, or rollback says so. Anything this reader does not expect (another backend, another
// layout, a compressed file, a field of another type) makes it answer undefined: the caller asks
// the CLI instead. Nothing heavy imported: it runs while the rest of the command loads.
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";

/** One update as the CLI prints it (the fields a release record reads, and the rest as they are). */
export interface CliUpdate {
    version: number;
    kind: string;
    startTime: string;
    message: string;
    environment: Record<string, string>;
    config: Record<string, { value?: string; secret: boolean; objectValue?: unknown }>;
    result: string;
    endTime?: string;
    resourceChanges?: Record<string, number>;
}

/** The backend's directory when PULUMI_BACKEND_URL is a file backend with an absolute path. */
export function fileBackendDir(url: string | undefined): string | undefined {
    const dir = url?.startsWith("file://") ? url.slice("file://".length) : undefined;
    return dir && path.isAbsolute(dir) ? dir : undefined;
}

/** The project's name, from the `name:` line of its Pulumi.yaml (undefined when it has none or cannot be read). */
export function projectName(root: string): string | undefined {
    try {
        return /^name:\s*([A-Za-z0-9_.-]+)\s*$/m.exec(readFileSync(path.join(root, "Pulumi.yaml"), "utf8"))?.[1];
    } catch {
        return undefined;
    }
}

/** Go's encoding/json text of a value: keys sorted, <, > and & escaped (the CLI prints object config this way). */
function goJson(v: unknown): string {
    const sorted = (x: unknown): unknown =>
        Array.isArray(x)
            ? x.map(sorted)
            : x !== null && typeof x === "object"
              ? Object.fromEntries(
                    Object.keys(x)
                        .sort()
                        .map((k) => [k, sorted((x as Record<string, unknown>)[k])]),
                )
              : x;
    return JSON.stringify(sorted(v)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A value holds a secret: a `{"secure": ...}` anywhere in it. */
function holdsSecret(v: unknown): boolean {
    if (Array.isArray(v)) return v.some(holdsSecret);
    if (v === null || typeof v !== "object") return false;
    const o = v as Record<string, unknown>;
    return (Object.keys(o).length === 1 && typeof o.secure === "string") || Object.values(o).some(holdsSecret);
}

/** One config value of a history file as the CLI prints it without --show-secrets; undefined for a type it does not expect. */
function configValue(v: unknown): CliUpdate["config"][string] | undefined {
    if (holdsSecret(v)) return { secret: true };
    if (typeof v === "string") return { value: v, secret: false };
    if (typeof v === "number" || typeof v === "boolean") return { value: String(v), secret: false };
    if (v !== null && typeof v === "object") return { value: goJson(v), secret: false, objectValue: v };
    return undefined;
}

const time = (seconds: number) => new Date(seconds * 1000).toISOString();

/** One history file's update as the CLI prints it; undefined when a field is not what the CLI writes. */
export function cliUpdate(file: unknown): CliUpdate | undefined {
    const f = file as Record<string, unknown>;
    if (f === null || typeof f !== "object") return undefined;
    if (typeof f.kind !== "string" || typeof f.result !== "string" || typeof f.startTime !== "number") return undefined;
    const config: CliUpdate["config"] = {};
    for (const [k, v] of Object.entries((f.config ?? {}) as Record<string, unknown>)) {
        const c = configValue(v);
        if (!c) return undefined;
        config[k] = c;
    }
    const done = f.result !== "in-progress";
    return {
        version: typeof f.version === "number" ? f.version : 0,
        kind: f.kind,
        startTime: time(f.startTime),
        message: typeof f.message === "string" ? f.message : "",
        environment: (f.environment ?? {}) as Record<string, string>,
        config,
        result: f.result,
        ...(done ? { endTime: time(typeof f.endTime === "number" ? f.endTime : 0), resourceChanges: (f.resourceChanges ?? {}) as Record<string, number> } : {}),
    };
}

/**
 * The newest `count` updates of `stack`, newest first, from the file backend at `dir`
 * (.pulumi/history/PROJECT/STACK/STACK-UNIXNANO.history.json: the names sort as the updates
 * ran); undefined when the backend keeps them any other way.
 */
export function backendHistory(dir: string, project: string, stack: string, count: number): CliUpdate[] | undefined {
    const historyDir = path.join(dir, ".pulumi", "history", project, stack);
    let names: string[];
    try {
        names = readdirSync(historyDir);
    } catch {
        return undefined;
    }
    const files = names.filter((n) => /\.history\.json(\.gz|\.zst)?$/.test(n)).sort();
    const page = files.slice(-count).reverse();
    if (page.some((n) => !n.startsWith(`${stack}-`) || !n.endsWith(".json"))) return undefined;
    const updates: CliUpdate[] = [];
    for (const n of page) {
        let u: CliUpdate | undefined;
        try {
            u = cliUpdate(JSON.parse(readFileSync(path.join(historyDir, n), "utf8")));
        } catch {
            return undefined;
        }
        if (!u) return undefined;
        updates.push(u);
    }
    return updates;
}
