/**
 * The check that runs before anything is created: every image the stack's hosts will pull exists
 * in its registry, seen with the login the hosts will use (coop:registries). It speaks the
 * registry's HTTP API (the distribution spec's manifest GET, with Basic or Bearer auth as the
 * registry asks), as `docker pull` does before it downloads a layer.
 */
import type { RegistryLogin, StackConfig } from "./config";
import { imageRegistry } from "./rules";

/** One image the stack pulls, and the config path that names it. */
export interface ImageUse {
    path: string;
    image: string;
}

/** A login with its token, for one registry. */
export interface Credential extends RegistryLogin {
    password: string;
    /** Its config path, for messages (`coop:registries[0]`). */
    path: string;
}

/** What a registry said about one image. */
export type ImageAnswer = { kind: "found" } | { kind: "refused"; message: string } | { kind: "unreachable"; message: string };

/** Every image a release of this stack pulls, with the path that names it, each once. */
export function imagesOf(cfg: Pick<StackConfig, "agent" | "proxy" | "coops" | "backups">): ImageUse[] {
    const uses: ImageUse[] = [
        { path: "coop:agent", image: cfg.agent },
        { path: "coop:proxy.image", image: cfg.proxy.image },
        ...(cfg.backups ? [{ path: "coop:backups.image", image: cfg.backups.image }] : []),
        ...cfg.coops.map((c, i) => ({ path: `coop:coops[${i}].image`, image: c.image })),
    ];
    return uses.filter((u, i) => uses.findIndex((x) => x.image === u.image) === i);
}

/** Where the registry's API is: https, except a loopback registry, which Docker reaches over plain http. */
function apiBase(registry: string): string {
    if (registry === "docker.io") return "https://registry-1.docker.io";
    const host = registry.replace(/:[0-9]+$/, "");
    const loopback = host === "localhost" || /^127\.[0-9.]+$/.test(host) || host === "[::1]";
    return `${loopback ? "http" : "https"}://${registry}`;
}

/** The repository and reference (digest or tag) of an image, as the registry's API names them. */
export function manifestPath(image: string): { repository: string; reference: string } {
    const registry = imageRegistry(image);
    let rest = registry === "docker.io" && !/^docker\.io\//i.test(image) ? image : image.slice(image.indexOf("/") + 1);
    let reference: string;
    const at = rest.indexOf("@");
    if (at >= 0) {
        reference = rest.slice(at + 1);
        rest = rest.slice(0, at).replace(/:[^/]*$/, "");
    } else {
        const colon = rest.lastIndexOf(":");
        reference = colon > rest.lastIndexOf("/") ? rest.slice(colon + 1) : "latest";
        rest = colon > rest.lastIndexOf("/") ? rest.slice(0, colon) : rest;
    }
    const repository = registry === "docker.io" && !rest.includes("/") ? `library/${rest}` : rest;
    return { repository, reference };
}

/** The manifest types `docker pull` accepts: a single-platform image or a list of them. */
const ACCEPT = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** The parameters of a `WWW-Authenticate: Bearer realm="...",service="..."` challenge. */
function bearerChallenge(header: string | null): Record<string, string> | undefined {
    if (!header || !/^bearer\s/i.test(header)) return undefined;
    const out: Record<string, string> = {};
    for (const m of header.slice(header.indexOf(" ") + 1).matchAll(/([a-z]+)="([^"]*)"/gi)) out[m[1].toLowerCase()] = m[2];
    return out.realm ? out : undefined;
}

function basic(c: Credential): string {
    return `Basic ${Buffer.from(`${c.username}:${c.password}`, "utf8").toString("base64")}`;
}

/** The registry's own words about a refusal: the first error of its JSON body, else the status. */
async function answerOf(res: Response): Promise<string> {
    const text = await res.text().catch(() => "");
    try {
        const body = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
        const e = body.errors?.[0];
        if (e) return `HTTP ${res.status} ${[e.code, e.message].filter(Boolean).join(": ")}`;
    } catch {
        // Not JSON: the status says enough.
    }
    return `HTTP ${res.status} ${res.statusText}`.trim();
}

/** Never a token in a message: whatever the registry echoed back is cut where a secret appears. */
function scrub(message: string, c?: Credential): string {
    return c && c.password !== "" ? message.split(c.password).join("<token>") : message;
}

/**
 * Asks `image`'s registry whether it holds the image, with `login` when the stack has one for
 * that registry. Never throws: a registry it cannot reach is `unreachable`, with why.
 */
export async function checkImage(image: string, login: Credential | undefined, opts: { timeoutMs?: number; fetch?: typeof fetch } = {}): Promise<ImageAnswer> {
    const get = opts.fetch ?? fetch;
    const registry = imageRegistry(image);
    const { repository, reference } = manifestPath(image);
    const url = `${apiBase(registry)}/v2/${repository}/manifests/${reference}`;
    const signal = AbortSignal.timeout(opts.timeoutMs ?? 15000);
    const as = login ? `as ${login.username} (${login.path})` : `anonymously (coop:registries has no login for ${registry})`;
    try {
        // GET, not HEAD: a manifest is a few KB, and a refusal's body says why.
        const manifest = (authorization?: string) =>
            get(url, { method: "GET", headers: { Accept: ACCEPT, ...(authorization ? { Authorization: authorization } : {}) }, signal, redirect: "follow" });
        let res = await manifest(login ? basic(login) : undefined);
        const challenge = res.status === 401 ? bearerChallenge(res.headers.get("www-authenticate")) : undefined;
        if (challenge) {
            const tokenUrl = new URL(challenge.realm);
            if (challenge.service) tokenUrl.searchParams.set("service", challenge.service);
            tokenUrl.searchParams.set("scope", `repository:${repository}:pull`);
            const tokenRes = await get(tokenUrl, { headers: login ? { Authorization: basic(login) } : {}, signal });
            if (!tokenRes.ok) return { kind: "refused", message: scrub(`${registry} refused a pull token ${as}: ${await answerOf(tokenRes)}`, login) };
            const body = (await tokenRes.json()) as { token?: string; access_token?: string };
            const token = body.token ?? body.access_token;
            if (!token) return { kind: "refused", message: `${registry} gave no pull token ${as}` };
            res = await manifest(`Bearer ${token}`);
        }
        if (res.ok) return { kind: "found" };
        if (res.status === 404) return { kind: "refused", message: `${registry} has no such image (${await answerOf(res)}): publish it, or fix the digest` };
        if (res.status === 401 || res.status === 403) {
            const fix = login ? `check the token in coop:${login.passwordKey}` : `add a login for ${registry} to coop:registries`;
            return { kind: "refused", message: scrub(`${registry} refused the pull ${as}: ${await answerOf(res)}; ${fix}`, login) };
        }
        return { kind: "refused", message: scrub(`${registry} answered ${await answerOf(res)} ${as}`, login) };
    } catch (e) {
        const err = e as Error & { cause?: { code?: string; message?: string } };
        const why = err.name === "TimeoutError" ? "no answer in time" : (err.cause?.code ?? err.cause?.message ?? err.message);
        return { kind: "unreachable", message: scrub(`${registry} could not be reached from here (${why})`, login) };
    }
}

/**
 * Checks every image of the stack, all at once. Returns the refusals as errors by config path,
 * and what could not be checked (a registry this machine cannot reach: one line each, with the paths).
 */
export async function checkImages(
    uses: ImageUse[],
    logins: Credential[],
    opts: { timeoutMs?: number; fetch?: typeof fetch } = {},
): Promise<{ errors: string[]; unchecked: string[] }> {
    const loginOf = (image: string) => logins.find((l) => l.server.toLowerCase() === imageRegistry(image));
    const answers = await Promise.all(uses.map(async (u) => ({ use: u, answer: await checkImage(u.image, loginOf(u.image), opts) })));
    const errors: string[] = [];
    const unreachable = new Map<string, string[]>();
    for (const { use, answer } of answers) {
        if (answer.kind === "refused") errors.push(`${use.path}: ${use.image}: ${answer.message}`);
        else if (answer.kind === "unreachable") unreachable.set(answer.message, [...(unreachable.get(answer.message) ?? []), use.path]);
    }
    return { errors, unchecked: [...unreachable].map(([message, paths]) => `${message}: ${paths.join(", ")} not checked`) };
}
