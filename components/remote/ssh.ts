/**
 * The SSH client behind every remote resource: exec with stdin, and SFTP writes. The server
 * must present exactly the pinned host key; anything else fails before a byte is sent.
 *
 * This module runs inside Pulumi's dynamic-provider process (see command.ts), so it keeps to
 * Node built-ins and ssh2 and captures nothing from the program.
 */
import { Client } from "ssh2";

/** Where and as whom to connect. `privateKey` is an OpenSSH private key (PEM text). */
export interface SshTarget {
    host: string;
    port: number;
    user: string;
    privateKey: string;
    /** Pinned server key in OpenSSH form: `ssh-ed25519 AAAA... [comment]`. */
    hostKey: string;
    /** How long to keep retrying a refused or timed-out connection, in ms. Default 120000. */
    connectTimeoutMs?: number;
}

export interface ExecResult {
    /** Exit status; null when the process was killed by a signal or the session was cut. */
    code: number | null;
    signal?: string;
    stdout: string;
    stderr: string;
}

const MAX_CAPTURE = 1 << 20;

/** The key blob inside an OpenSSH public key line, which is what the server presents. */
export function hostKeyBlob(hostKey: string): Buffer {
    const parts = hostKey.trim().split(/\s+/);
    if (parts.length < 2 || !/^[A-Za-z0-9+/]+={0,3}$/.test(parts[1])) {
        throw new Error(`pinned host key is not an OpenSSH public key ("type base64"): ${parts[0] ?? ""}`);
    }
    return Buffer.from(parts[1], "base64");
}

function describe(t: SshTarget): string {
    return `${t.user}@${t.host}:${t.port}`;
}

// Plain arrays, not Sets: this module is serialized into the dynamic provider by value.
const RETRYABLE = ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"];

function connectOnce(t: SshTarget, expected: Buffer): Promise<Client> {
    return new Promise((resolve, reject) => {
        const client = new Client();
        let keyMismatch = false;
        client.once("ready", () => resolve(client));
        client.once("error", (err: Error & { code?: string; level?: string }) => {
            client.end();
            if (keyMismatch) {
                const e = new Error(`host key of ${t.host}:${t.port} does not match the pinned key; refusing to connect`);
                (e as Error & { fatal?: boolean }).fatal = true;
                reject(e);
                return;
            }
            reject(err);
        });
        client.connect({
            host: t.host,
            port: t.port,
            username: t.user,
            privateKey: t.privateKey,
            readyTimeout: 20000,
            keepaliveInterval: 10000,
            keepaliveCountMax: 6,
            hostVerifier: (key: Buffer) => {
                keyMismatch = !key.equals(expected);
                return !keyMismatch;
            },
        });
    });
}

/** Connects, retrying refused and timed-out attempts until `connectTimeoutMs` has passed. */
export async function connect(t: SshTarget): Promise<Client> {
    const expected = hostKeyBlob(t.hostKey);
    const deadline = Date.now() + (t.connectTimeoutMs ?? 120000);
    for (let attempt = 1; ; attempt++) {
        try {
            return await connectOnce(t, expected);
        } catch (err) {
            const e = err as Error & { code?: string; fatal?: boolean; level?: string };
            const retryable = !e.fatal && (RETRYABLE.includes(e.code ?? "") || e.level === "client-timeout");
            if (!retryable || Date.now() > deadline) {
                throw new Error(`ssh ${describe(t)}: ${e.message}${attempt > 1 ? ` (after ${attempt} attempts)` : ""}`);
            }
            await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
        }
    }
}

function capture(acc: { text: string }, chunk: Buffer): void {
    acc.text += chunk.toString("utf8");
    if (acc.text.length > MAX_CAPTURE) {
        acc.text = acc.text.slice(acc.text.length - MAX_CAPTURE);
    }
}

/**
 * Runs `command` (already rendered for a POSIX shell) and resolves with its exit status and
 * output; a non-zero exit is a result, not an error. `stdin`, when given, is written to the
 * command's standard input and closed: that is how secrets reach the host.
 */
export async function exec(t: SshTarget, command: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const client = await connect(t);
    try {
        return await new Promise<ExecResult>((resolve, reject) => {
            const out = { text: "" };
            const err = { text: "" };
            const timer = setTimeout(() => {
                client.end();
                reject(new Error(`ssh ${describe(t)}: command did not finish within ${opts.timeoutMs} ms`));
            }, opts.timeoutMs ?? 30 * 60 * 1000);
            client.exec(command, (e, stream) => {
                if (e) {
                    clearTimeout(timer);
                    reject(new Error(`ssh ${describe(t)}: ${e.message}`));
                    return;
                }
                let code: number | null = null;
                let signal: string | undefined;
                stream.on("data", (c: Buffer) => capture(out, c));
                stream.stderr.on("data", (c: Buffer) => capture(err, c));
                stream.on("exit", (c: number | null, s?: string) => {
                    code = c;
                    signal = s;
                });
                stream.on("close", () => {
                    clearTimeout(timer);
                    resolve({ code, signal, stdout: out.text, stderr: err.text });
                });
                stream.end(opts.stdin ?? "");
            });
        });
    } finally {
        client.end();
    }
}

/** Writes `content` to `path` over SFTP: a temporary file in the same directory, chmod, rename. */
export async function writeFile(t: SshTarget, path: string, content: string, mode: number): Promise<void> {
    const client = await connect(t);
    try {
        await new Promise<void>((resolve, reject) => {
            client.sftp((e, sftp) => {
                if (e) {
                    reject(new Error(`sftp ${describe(t)}: ${e.message}`));
                    return;
                }
                const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
                const fail = (step: string) => (err: Error) => reject(new Error(`sftp ${describe(t)}: ${step} ${path}: ${err.message}`));
                sftp.writeFile(tmp, content, { mode }, (err) => {
                    if (err) return fail("write")(err);
                    sftp.chmod(tmp, mode, (err2) => {
                        if (err2) return fail("chmod")(err2);
                        sftp.ext_openssh_rename(tmp, path, (err3) => (err3 ? fail("rename")(err3) : resolve()));
                    });
                });
            });
        });
    } finally {
        client.end();
    }
}

/** Removes `path` over SFTP; a file that is already gone is not an error. */
export async function removeFile(t: SshTarget, path: string): Promise<void> {
    const client = await connect(t);
    try {
        await new Promise<void>((resolve, reject) => {
            client.sftp((e, sftp) => {
                if (e) {
                    reject(new Error(`sftp ${describe(t)}: ${e.message}`));
                    return;
                }
                sftp.unlink(path, (err: (Error & { code?: number }) | undefined | null) => {
                    // SFTP status 2 is "no such file".
                    if (err && err.code !== 2) {
                        reject(new Error(`sftp ${describe(t)}: remove ${path}: ${err.message}`));
                        return;
                    }
                    resolve();
                });
            });
        });
    } finally {
        client.end();
    }
}
