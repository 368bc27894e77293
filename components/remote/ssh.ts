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
                throw new Error(`ssh ${describe(t)}: ${e.message}${attempt > 1 ? ` (after ${attempt} attempts)` : ""}`, { cause: err });
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

/** Runs `command` on an open connection (see {@link exec}). */
export function execOn(client: Client, t: SshTarget, command: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
        const out = { text: "" };
        const err = { text: "" };
        const timer = setTimeout(
            () => {
                client.end();
                reject(new Error(`ssh ${describe(t)}: command did not finish within ${opts.timeoutMs} ms`));
            },
            opts.timeoutMs ?? 30 * 60 * 1000,
        );
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
}

/**
 * Runs `command` and hands its output to `onData` as it comes (stdout and stderr apart), for a
 * command that goes on (`logs --follow`); resolves with its exit status when it ends, its
 * connection closed. With `holdStdin` the command's stdin stays open while this process lives, so
 * a command that watches it learns when the client has gone. `signal` aborted closes the
 * connection (the command sees its client go) and resolves with null.
 */
export function execStream(
    t: SshTarget,
    command: string,
    onData: (chunk: string, stream: "stdout" | "stderr") => void,
    opts: { holdStdin?: boolean; signal?: AbortSignal } = {},
): Promise<number | null> {
    if (opts.signal?.aborted) return Promise.resolve(null);
    return withConnection(
        t,
        (client) =>
            new Promise<number | null>((resolve, reject) => {
                let code: number | null = null;
                const abort = () => {
                    client.end();
                    resolve(null);
                };
                opts.signal?.addEventListener("abort", abort, { once: true });
                const settle = () => opts.signal?.removeEventListener("abort", abort);
                // A connection that drops before the command's end (or that abort ended) settles it.
                client.once("close", () => {
                    settle();
                    resolve(code);
                });
                client.exec(command, (e, stream) => {
                    if (e) {
                        settle();
                        reject(new Error(`ssh ${describe(t)}: ${e.message}`));
                        return;
                    }
                    stream.on("data", (c: Buffer) => onData(c.toString("utf8"), "stdout"));
                    stream.stderr.on("data", (c: Buffer) => onData(c.toString("utf8"), "stderr"));
                    stream.on("exit", (c: number | null) => (code = c));
                    stream.on("close", () => {
                        settle();
                        resolve(code);
                    });
                    if (!opts.holdStdin) stream.end();
                });
            }),
    );
}

/** Opens one connection, hands it to `fn`, and closes it whatever `fn` does. */
export async function withConnection<T>(t: SshTarget, fn: (client: Client) => Promise<T>): Promise<T> {
    const client = await connect(t);
    try {
        return await fn(client);
    } finally {
        client.end();
    }
}

/**
 * Runs `command` (already rendered for a POSIX shell) and resolves with its exit status and
 * output; a non-zero exit is a result, not an error. `stdin`, when given, is written to the
 * command's standard input and closed: that is how secrets and documents reach the host.
 */
export function exec(t: SshTarget, command: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return withConnection(t, (client) => execOn(client, t, command, opts));
}

/** The SFTP operations the remote resources need, on one open connection. */
export interface Files {
    /** Creates `path` (and its parents) and sets its mode. */
    mkdir(path: string, mode: number): Promise<void>;
    /** Writes `content` to `path`: a temporary file in the same directory, chmod, rename. */
    write(path: string, content: string, mode: number): Promise<void>;
    /** Removes `path`; a file that is already gone is not an error. */
    remove(path: string): Promise<void>;
    /** The names in a directory; none when it does not exist. */
    list(path: string): Promise<string[]>;
}

/** Opens an SFTP session on `client`. */
export function files(client: Client, t: SshTarget): Promise<Files> {
    return new Promise((resolve, reject) => {
        client.sftp((e, sftp) => {
            if (e) {
                reject(new Error(`sftp ${describe(t)}: ${e.message}`));
                return;
            }
            const fail = (step: string, path: string, reject: (e: Error) => void) => (err: Error) => reject(new Error(`sftp ${describe(t)}: ${step} ${path}: ${err.message}`));
            const NO_SUCH_FILE = 2;
            const ops: Files = {
                async mkdir(path, mode) {
                    const parts = path.split("/").filter((p) => p !== "");
                    for (let i = 1; i <= parts.length; i++) {
                        const dir = `/${parts.slice(0, i).join("/")}`;
                        await new Promise<void>((res) => sftp.mkdir(dir, () => res()));
                    }
                    await new Promise<void>((res, rej) => sftp.chmod(path, mode, (err) => (err ? fail("chmod", path, rej)(err) : res())));
                },
                write(path, content, mode) {
                    return new Promise((res, rej) => {
                        const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
                        sftp.writeFile(tmp, content, { mode }, (err) => {
                            if (err) return fail("write", path, rej)(err);
                            sftp.chmod(tmp, mode, (err2) => {
                                if (err2) return fail("chmod", path, rej)(err2);
                                sftp.ext_openssh_rename(tmp, path, (err3) => (err3 ? fail("rename", path, rej)(err3) : res()));
                            });
                        });
                    });
                },
                remove(path) {
                    return new Promise((res, rej) =>
                        sftp.unlink(path, (err: (Error & { code?: number }) | undefined | null) => (err && err.code !== NO_SUCH_FILE ? fail("remove", path, rej)(err) : res())),
                    );
                },
                list(path) {
                    return new Promise((res, rej) =>
                        sftp.readdir(path, (err: (Error & { code?: number }) | undefined | null, entries) =>
                            err ? (err.code === NO_SUCH_FILE ? res([]) : fail("list", path, rej)(err)) : res(entries.map((x) => x.filename)),
                        ),
                    );
                },
            };
            resolve(ops);
        });
    });
}

/** Writes `content` to `path` over SFTP: a temporary file in the same directory, chmod, rename. */
export function writeFile(t: SshTarget, path: string, content: string, mode: number): Promise<void> {
    return withConnection(t, async (client) => (await files(client, t)).write(path, content, mode));
}

/** Removes `path` over SFTP; a file that is already gone is not an error. */
export function removeFile(t: SshTarget, path: string): Promise<void> {
    return withConnection(t, async (client) => (await files(client, t)).remove(path));
}
