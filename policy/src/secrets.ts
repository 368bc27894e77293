/**
 * Which input values are Pulumi secrets.
 *
 * What @pulumi/policy 1.21.0 does with secrets (read in node_modules/@pulumi/policy, server.js and
 * deserialize.js, and checked end to end by test/preview.test.ts):
 * - The CLI (3.248, pkg/resource/plugin/analyzer_plugin.go) sends a resource's properties with
 *   secrets kept: each secret is `{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
 *   "value": ...}` in the gRPC Struct.
 * - For `validateResource` and `validateStack` the SDK calls `deserializeProperties(struct, false)`,
 *   which replaces each secret by its plaintext value and keeps no mark. A rule therefore sees a
 *   secret exactly like a plaintext string: there is no public way to tell them apart.
 *   (`args.opts.additionalSecretOutputs` names outputs to encrypt, not whether an input is secret.)
 * - Only `remediateResource` gets secrets marked (`deserializeProperties(struct, true)`, values
 *   wrapped in the exported `Secret` class behind a proxy that unwraps on read), and a remediation
 *   cannot report a violation.
 *
 * So this module wraps the SDK's internal `deserializeProperties` (module
 * `@pulumi/policy/deserialize`, which server.js calls through its exports object on every request):
 * before delegating, it lists the paths of the secrets in the raw Struct and attaches that list to
 * the object it returns, under a non-enumerable symbol that the SDK's unknown-checking proxy hands
 * through unchanged. `no-plaintext-secrets` reads it with {@link secretPathsOf}. This depends on
 * SDK internals: @pulumi/policy is pinned to an exact version, and when the hook cannot be
 * installed or finds nothing attached, every value counts as plaintext (the rule fails loudly
 * rather than passing silently).
 */
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { joinIndex, joinKey } from "./values";

const SECRET_PATHS = Symbol.for("coop-policies.secretPaths");

/** The paths (`connection.privateKey`, `triggers[0]`) of every secret in raw wire-format properties. */
export function secretPathsInWire(raw: unknown, path = ""): string[] {
    if (raw === null || typeof raw !== "object") {
        return [];
    }
    if (Array.isArray(raw)) {
        return raw.flatMap((v, i) => secretPathsInWire(v, joinIndex(path, i)));
    }
    const obj = raw as Record<string, unknown>;
    if (obj[specialSigKey] === specialSecretSig) {
        return [path];
    }
    if (typeof obj[specialSigKey] === "string") {
        return []; // an asset, archive or resource reference: no secrets inside that matter here
    }
    return Object.keys(obj).flatMap((k) => secretPathsInWire(obj[k], joinKey(path, k)));
}

interface StructLike {
    toJavaScript(): unknown;
}

type Deserialize = (struct: StructLike, proxySecrets: boolean) => unknown;

let installed = false;

/**
 * Wraps @pulumi/policy's internal `deserializeProperties` so that every property bag a rule gets
 * carries the paths of its secrets. Idempotent. Returns false when the internal module does not
 * have the expected shape (then {@link secretPathsOf} returns undefined).
 */
export function installSecretTracking(): boolean {
    if (installed) {
        return true;
    }

    const mod = require("@pulumi/policy/deserialize") as { deserializeProperties?: Deserialize };
    const original = mod.deserializeProperties;
    if (typeof original !== "function") {
        return false;
    }
    mod.deserializeProperties = (struct: StructLike, proxySecrets: boolean): unknown => {
        const result = original(struct, proxySecrets);
        if (!proxySecrets && result !== null && typeof result === "object" && !Object.isFrozen(result)) {
            const paths = Object.freeze(secretPathsInWire(struct.toJavaScript()));
            // Not writable and not configurable: the SDK's proxy then returns it as it is.
            Object.defineProperty(result, SECRET_PATHS, { value: paths, enumerable: false, writable: false, configurable: false });
        }
        return result;
    };
    installed = true;
    return true;
}

/** The secret paths attached by the hook, or undefined when the properties carry none. */
export function secretPathsOf(props: unknown): readonly string[] | undefined {
    if (props === null || typeof props !== "object") {
        return undefined;
    }
    const v = (props as Record<symbol, unknown>)[SECRET_PATHS];
    return Array.isArray(v) ? (v as readonly string[]) : undefined;
}
