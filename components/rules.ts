/**
 * The rules every part of the program agrees on, written once for TypeScript: the config schema,
 * the components and the policy pack import them from here, and the host agent has the same rules
 * in Go (host/internal/rules). test/rules/cases.json is one table of accepted and refused values
 * that both languages' tests run.
 *
 * Dependency-free (Node built-ins only), pure, and each rule is a predicate plus the hint that an
 * error message shows.
 */
import { isIP } from "node:net";

/** Path component of an image reference: lower-case alphanumerics joined by '.', '_', '__' or runs of '-'. */
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
/** A registry host: a domain (letters may be upper case) or an IPv4 address, with an optional port. */
const REGISTRY = "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?";
const TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
/** `name` as Docker parses it: an optional registry (it has a '.' or ':' or is localhost), then path components. */
const NAME = `(?:(?:${REGISTRY})/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;

const IMAGE_DIGEST_RE = new RegExp(`^${NAME}(?::${TAG})?@sha256:[a-f0-9]{64}$`);
const IMAGE_TAG_RE = new RegExp(`^${NAME}:${TAG}$`);

/**
 * Limits a release is held to, the same on the host (host/internal/release and Docker's own):
 * test/rules/cases.json's `_limits` is the one table both languages' tests compare with.
 */
export const LIMITS = {
    /** Domains of one co-op. */
    domainsPerCoop: 100,
    /** Characters of one argument of a command (a co-op's migrate). */
    argumentLength: 4096,
    /** Characters of an image's name (registry and path, without tag or digest): Docker's limit. */
    imageNameLength: 255,
} as const;

/** Docker's test of an image name's first component: a registry when it has a '.' or ':' or is localhost. */
function looksLikeRegistry(first: string): boolean {
    return first.includes(".") || first.includes(":") || first === "localhost";
}

/** The registry part of an image name as written (its first component, when Docker takes it for one), or undefined. */
function registryPart(name: string): string | undefined {
    const slash = name.indexOf("/");
    return slash >= 0 && looksLikeRegistry(name.slice(0, slash)) ? name.slice(0, slash) : undefined;
}

/** A registry's port, when it names one, is a TCP port: 1 to 65535. */
function registryPortOk(registry: string): boolean {
    const colon = registry.lastIndexOf(":");
    if (colon < 0) return true;
    const port = Number(registry.slice(colon + 1));
    return port >= 1 && port <= 65535;
}

/** An image pinned by digest: `[REGISTRY[:PORT]/]PATH[:TAG]@sha256:<64 lower-case hex>`, its name at most 255 characters. */
export function isImageDigest(value: string): boolean {
    if (!IMAGE_DIGEST_RE.test(value)) {
        return false;
    }
    const name = value.slice(0, value.indexOf("@"));
    const tagAt = name.lastIndexOf(":");
    if ((tagAt > name.lastIndexOf("/") ? name.slice(0, tagAt) : name).length > LIMITS.imageNameLength) {
        return false;
    }
    // The registry part may carry upper case; the repository path may not.
    const registry = registryPart(name);
    if (registry !== undefined && !registryPortOk(registry)) {
        return false;
    }
    const path = registry === undefined ? name : name.slice(registry.length + 1);
    return path === path.toLowerCase();
}
export const IMAGE_DIGEST_HINT = "must be pinned by digest: REPOSITORY@sha256:<64 hex digits>";

const REGISTRY_HOST_RE = new RegExp(`^${REGISTRY}$`);
/** A registry as image names start with it: `ghcr.io`, `registry.example.org:5000`, `127.0.0.1:5001`, `localhost`. */
export function isRegistryHost(value: string): boolean {
    return REGISTRY_HOST_RE.test(value) && looksLikeRegistry(value) && registryPortOk(value);
}
export const REGISTRY_HOST_HINT = "must be a registry as image names start with it, such as ghcr.io or registry.example.org:5000 (no scheme, no path)";

/**
 * The registry Docker pulls `image` from, lower-cased: the part before the first '/' when it has
 * a '.' or ':' or is localhost, else Docker Hub (`docker.io`).
 */
export function imageRegistry(image: string): string {
    return registryPart(image)?.toLowerCase() ?? "docker.io";
}

/** An image by tag (`REPOSITORY:TAG`): accepted only where a stack allows tags (local, dev). */
export function isImageTag(value: string): boolean {
    return IMAGE_TAG_RE.test(value) && !value.includes("@");
}

const COOP_ID_RE = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;
/** A co-op id: names its containers, volume and proxy service, and its database. */
export function isCoopId(value: string): boolean {
    return COOP_ID_RE.test(value);
}
export const COOP_ID_HINT = "must be DNS-safe: lower-case letters, digits and '-', at most 32 characters";

const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** One DNS label: host names, the Docker network. */
export function isDnsLabel(value: string): boolean {
    return DNS_LABEL_RE.test(value);
}
export const DNS_LABEL_HINT = "must be a DNS label (lower-case letters, digits, '-')";

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * An environment variable name. `__proto__` is refused: a JavaScript object cannot hold it as a
 * key, so it would be dropped on the way to the host.
 */
export function isEnvName(value: string): boolean {
    return ENV_NAME_RE.test(value) && value !== "__proto__";
}
export const ENV_NAME_HINT = "is not a valid environment variable name (a letter or '_', then letters, digits and '_')";

const DOMAIN_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A lower-case host name of two labels or more (no wildcard, no trailing dot), as co-op domains are. */
export function isDomain(value: string): boolean {
    if (value.length > 253) {
        return false;
    }
    const labels = value.split(".");
    return labels.length >= 2 && labels.every((l) => DOMAIN_LABEL_RE.test(l));
}
export const DOMAIN_HINT = "must be a lower-case domain name such as coop.example.org";

/**
 * `text` with each control, format or separator character that a terminal would act on or hide
 * (CR, ESC, bidi overrides, zero-width spaces...) written as `\u{HEX}`: an error shows exactly
 * what was written, and cannot be steered by it.
 */
export function printable(text: string): string {
    return text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/** True when the string holds a character no single-line value may hold: CR, LF or NUL. */
export function hasLineBreakOrNul(value: string): boolean {
    return /[\r\n\0]/.test(value);
}

// ---- SSH public keys --------------------------------------------------------------------------

/** Key types accepted for host keys and the deploy key. */
export const SSH_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"] as const;
export type SshKeyType = (typeof SSH_KEY_TYPES)[number];
/** RSA keys shorter than this are refused (OpenSSH and DigitalOcean consider them weak). */
export const MIN_RSA_BITS = 2048;
const ECDSA_POINT_BYTES: Record<string, number> = { nistp256: 65, nistp384: 97, nistp521: 133 };

/**
 * Reads SSH wire-format strings (uint32 length, bytes) from a key blob. A closure, not a class with
 * fields: this code also runs from Pulumi's serialization of a dynamic provider, which drops class
 * field initializers.
 */
function wireReader(buf: Buffer): { string(): Buffer | undefined; done(): boolean } {
    let offset = 0;
    return {
        string() {
            if (offset + 4 > buf.length) return undefined;
            const len = buf.readUInt32BE(offset);
            if (offset + 4 + len > buf.length) return undefined;
            const out = buf.subarray(offset + 4, offset + 4 + len);
            offset += 4 + len;
            return out;
        },
        done: () => offset === buf.length,
    };
}

function bitLength(mpint: Buffer): number {
    let i = 0;
    while (i < mpint.length && mpint[i] === 0) i++;
    if (i === mpint.length) return 0;
    return (mpint.length - i - 1) * 8 + mpint[i].toString(2).length;
}

/**
 * Checks an OpenSSH public key line (`TYPE BASE64 [COMMENT]`): the base64 must decode to a well-formed
 * key of TYPE (ed25519: 32 bytes; ECDSA: the curve's point; RSA: 2048 bits or more). Returns the
 * problem, or undefined when the key is good.
 */
export function sshPublicKeyProblem(line: string): string | undefined {
    if (hasLineBreakOrNul(line)) {
        return "must be one line";
    }
    // The comment is printable: cloud-init's YAML refuses a control character in it.
    const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: [^\p{Cc}]*)?$/u.exec(line);
    if (!m) {
        return 'must be "TYPE BASE64 [COMMENT]"';
    }
    const [, type, b64] = m;
    if (!(SSH_KEY_TYPES as readonly string[]).includes(type)) {
        return `type ${JSON.stringify(type)} is not one of ${SSH_KEY_TYPES.join(", ")}`;
    }
    const blob = Buffer.from(b64, "base64");
    if (b64.length % 4 !== 0 || blob.toString("base64") !== b64) {
        return "the key's base64 is malformed";
    }
    const r = wireReader(blob);
    const inner = r.string()?.toString("latin1");
    if (inner !== type) {
        return `the key's data is not a ${type} key`;
    }
    if (type === "ssh-ed25519") {
        const pk = r.string();
        return pk?.length === 32 && r.done() ? undefined : "the key's data is not a complete ed25519 key";
    }
    if (type.startsWith("ecdsa-sha2-")) {
        const curve = r.string()?.toString("latin1");
        const point = r.string();
        const want = curve === undefined ? undefined : ECDSA_POINT_BYTES[curve];
        return curve === type.slice("ecdsa-sha2-".length) && point !== undefined && point.length === want && point[0] === 4 && r.done()
            ? undefined
            : "the key's data is not a complete ECDSA key of its curve";
    }
    const e = r.string();
    const n = r.string();
    if (!e || !n || !r.done()) {
        return "the key's data is not a complete RSA key";
    }
    const bits = bitLength(n);
    return bits >= MIN_RSA_BITS ? undefined : `an RSA key of ${bits} bits is too short (${MIN_RSA_BITS} or more)`;
}

export function isSshPublicKey(line: string): boolean {
    return sshPublicKeyProblem(line) === undefined;
}

// ---- addresses and ranges ---------------------------------------------------------------------

/** An IP address (v4 or v6), in the form Node and Docker accept. */
export function isIpAddress(value: string): boolean {
    // A zone (fe80::1%eth0) is the host's own interface name: no bind address of a stack's.
    return isIP(value) !== 0 && !value.includes("%");
}

/** A parsed CIDR: its address as bytes (4 or 16) and its prefix length. */
export interface Cidr {
    version: 4 | 6;
    bytes: number[];
    prefix: number;
}

function parseIPv4(s: string): number[] | undefined {
    const parts = s.split(".");
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
        return undefined;
    }
    return parts.map(Number);
}

function parseIPv6(s: string): number[] | undefined {
    if (isIP(s) !== 6 || s.includes(".")) {
        return undefined;
    }
    const [head, tail] = s.includes("::") ? s.split("::") : [s, undefined];
    const groups = (x: string) => (x === "" ? [] : x.split(":"));
    const h = groups(head);
    const t = tail === undefined ? [] : groups(tail);
    const words = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
    if (words.length !== 8) {
        return undefined;
    }
    return words.flatMap((w) => {
        const n = parseInt(w, 16);
        return [n >> 8, n & 255];
    });
}

/** Parses `ADDRESS/PREFIX` strictly (no leading zeros in IPv4 octets); undefined when it is no CIDR. */
export function parseCidr(value: string): Cidr | undefined {
    const m = /^([0-9a-fA-F.:]+)\/(0|[1-9][0-9]{0,2})$/.exec(value);
    if (!m) {
        return undefined;
    }
    const prefix = Number(m[2]);
    const v4 = parseIPv4(m[1]);
    if (v4) {
        return prefix <= 32 ? { version: 4, bytes: v4, prefix } : undefined;
    }
    const v6 = parseIPv6(m[1].toLowerCase());
    return v6 && prefix <= 128 ? { version: 6, bytes: v6, prefix } : undefined;
}

/** The range with its host bits cleared, written out (`10.1.2.3/8` -> `10.0.0.0/8`). */
export function canonicalCidr(c: Cidr): string {
    const bytes = c.bytes.map((b, i) => {
        const keep = Math.max(0, Math.min(8, c.prefix - i * 8));
        return b & (0xff << (8 - keep)) & 0xff;
    });
    if (c.version === 4) {
        return `${bytes.join(".")}/${c.prefix}`;
    }
    const words = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] << 8) | bytes[2 * i + 1]).toString(16));
    // The longest run of zero words becomes '::'.
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8;) {
        let j = i;
        while (j < 8 && words[j] === "0") j++;
        if (j - i > bestLen) {
            best = i;
            bestLen = j - i;
        }
        i = j === i ? i + 1 : j;
    }
    const text = best < 0 ? words.join(":") : `${words.slice(0, best).join(":")}::${words.slice(best + bestLen).join(":")}`;
    return `${text}/${c.prefix}`;
}

/** True when the range has no host bits set (`10.0.0.0/8`, not `10.1.2.3/8`). */
export function isCanonicalCidr(c: Cidr): boolean {
    const canon = canonicalCidr(c);
    const again = parseCidr(canon)!;
    return again.bytes.every((b, i) => b === c.bytes[i]);
}

/**
 * True when the range admits every address of its family: a prefix length of 0, whatever address
 * is written before it (`1.2.3.4/0` admits the whole IPv4 internet, as `0.0.0.0/0` does).
 */
export function admitsEveryAddress(value: string): boolean {
    const c = parseCidr(value.trim());
    return c !== undefined && c.prefix === 0;
}

const PRIVATE_V4: Cidr[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].map((c) => parseCidr(c)!);

/** True when an IPv4 range lies inside one of the RFC 1918 private ranges. */
export function isPrivateIPv4Range(c: Cidr): boolean {
    if (c.version !== 4) {
        return false;
    }
    const addr = (b: number[]) => ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    const mask = (p: number) => (p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0);
    return PRIVATE_V4.some((p) => c.prefix >= p.prefix && (addr(c.bytes) & mask(p.prefix)) >>> 0 === addr(p.bytes));
}

/** True when two IPv4 ranges share an address. */
export function ipv4RangesOverlap(a: Cidr, b: Cidr): boolean {
    const addr = (x: number[]) => ((x[0] << 24) | (x[1] << 16) | (x[2] << 8) | x[3]) >>> 0;
    const p = Math.min(a.prefix, b.prefix);
    const mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
    return (addr(a.bytes) & mask) >>> 0 === (addr(b.bytes) & mask) >>> 0;
}

// ---- SSH source ranges ------------------------------------------------------------------------

/**
 * The widest single range an SSH allowlist may hold in uat and prod: a /8 of IPv4 (the largest
 * block ever assigned to one organisation) and a /16 of IPv6 (wider than any one network's
 * allocation; the registries themselves hold /12s). An operator's or a CI runner's network is
 * far narrower; a wider range is most of the internet.
 */
export const SSH_MIN_PREFIX = { 4: 8, 6: 16 } as const;

/** A range as a number: its first address (host bits kept) and its prefix length. */
interface Span {
    version: 4 | 6;
    addr: bigint;
    prefix: number;
}

const spanOf = (c: Cidr): Span => ({ version: c.version, addr: c.bytes.reduce((a, b) => (a << 8n) | BigInt(b), 0n), prefix: c.prefix });
const bitsOf = (v: 4 | 6) => (v === 4 ? 32 : 128);

/** True when every address of `inner` is in `outer`. */
function spanContains(outer: Span, inner: Span): boolean {
    if (outer.version !== inner.version || outer.prefix > inner.prefix) return false;
    const shift = BigInt(bitsOf(outer.version) - outer.prefix);
    return outer.addr >> shift === inner.addr >> shift;
}

const V4_MAPPED = spanOf(parseCidr("::ffff:0:0/96")!);

/** IPv4-mapped IPv6 ranges (`::ffff:0:0/96` and inside it) as the IPv4 ranges they stand for. */
function asIPv4(s: Span): Span | undefined {
    if (s.version === 4) return s;
    if (spanContains(s, V4_MAPPED)) return { version: 4, addr: 0n, prefix: 0 };
    if (spanContains(V4_MAPPED, s)) return { version: 4, addr: s.addr & 0xffffffffn, prefix: s.prefix - 96 };
    return undefined;
}

/** True when the ranges together hold every address of `target` (it is halved until each half lies in one range or none). */
function covered(ranges: readonly Span[], target: Span): boolean {
    const relevant = ranges.filter((r) => spanContains(r, target) || spanContains(target, r));
    if (relevant.some((r) => spanContains(r, target))) return true;
    if (relevant.length === 0 || target.prefix === bitsOf(target.version)) return false;
    const prefix = target.prefix + 1;
    const base = (target.addr >> BigInt(bitsOf(target.version) - target.prefix)) << BigInt(bitsOf(target.version) - target.prefix);
    const high = base | (1n << BigInt(bitsOf(target.version) - prefix));
    return covered(relevant, { ...target, addr: base, prefix }) && covered(relevant, { ...target, addr: high, prefix });
}

/** Why one SSH source range is too wide for uat and prod (see {@link SSH_MIN_PREFIX}), or undefined. */
export function sshRangeTooWide(c: Cidr): string | undefined {
    const s = asIPv4(spanOf(c)) ?? spanOf(c);
    const min = SSH_MIN_PREFIX[s.version];
    if (s.prefix >= min) return undefined;
    const mapped = s.version !== c.version ? " (an IPv4-mapped IPv6 range)" : "";
    return `is wider than an IPv${s.version} /${min}${mapped}, wider than any one network of operators or CI runners`;
}

/**
 * What a list of ranges admits together that no SSH allowlist may: every IPv4 address, every
 * IPv6 address, or every global unicast IPv6 address (2000::/3, where the internet's IPv6 hosts
 * are); undefined when it admits none of these. The union is judged, not each range:
 * `0.0.0.0/1` and `128.0.0.0/1` are the whole IPv4 internet. IPv4-mapped IPv6 ranges count as
 * the IPv4 ranges they stand for.
 */
export function rangesAdmitEverything(cidrs: readonly Cidr[]): string | undefined {
    const spans = cidrs.map(spanOf);
    const v4 = spans.map(asIPv4).filter((s): s is Span => s !== undefined);
    if (covered(v4, { version: 4, addr: 0n, prefix: 0 })) return "every IPv4 address (0.0.0.0/0)";
    if (covered(spans, { version: 6, addr: 0n, prefix: 0 })) return "every IPv6 address (::/0)";
    if (covered(spans, spanOf(parseCidr("2000::/3")!))) return "every global unicast IPv6 address (2000::/3)";
    return undefined;
}
