/**
 * LocalDatabase: a co-op's role and database in the local stack's PostgreSQL cluster
 * (scripts/local-data.sh), what DatabaseDb + DatabaseUser are on the managed cluster of a cloud
 * stack. Created with a random password; deleting it drops both. psql runs on this machine with
 * the admin password in its environment and the SQL on its stdin: no secret is an argument.
 *
 * A dynamic resource: its code is serialized into the state, so it imports only Node's modules.
 */
import * as pulumi from "@pulumi/pulumi";

export interface LocalDatabaseArgs {
    /** Role and database name (a plain identifier). */
    name: string;
    /** How this machine reaches the cluster as its admin (a secret: it holds the password). */
    admin: pulumi.Input<{ host: string; port: number; user: string; password: string }>;
    /** Where the co-ops' containers reach the cluster. */
    appHost: string;
}

interface State {
    name: string;
    admin: { host: string; port: number; user: string; password: string };
    appHost: string;
    password?: string;
    url?: string;
}

async function psql(admin: State["admin"], sql: string): Promise<void> {
    const { spawn } = await import("node:child_process");
    await new Promise<void>((resolve, reject) => {
        const child = spawn(
            "psql",
            ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--host", admin.host, "--port", String(admin.port), "--username", admin.user, "--dbname", "postgres"],
            {
                env: { ...process.env, PGPASSWORD: admin.password, PGCONNECT_TIMEOUT: "10" },
                stdio: ["pipe", "ignore", "pipe"],
            },
        );
        let err = "";
        child.stderr.on("data", (c: Buffer) => (err += c.toString()));
        child.on("error", (e) => reject(new Error(`psql: ${e.message} (scripts/setup.sh installs postgresql-client)`)));
        child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`psql exited ${code}: ${err.trim().split("\n").slice(-3).join(" ")}`))));
        child.stdin.end(sql);
    });
}

/**
 * The co-op's DATABASE_URL. `sslmode=disable` says what the local cluster offers (no TLS): a
 * driver whose default is `require` (Go's lib/pq) would refuse it otherwise, one whose default
 * is `prefer` (libpq, psycopg, pgx) is not changed by it.
 */
function urlOf(name: string, password: string, host: string, port: number): string {
    return `postgresql://${name}:${password}@${host}:${port}/${name}?sslmode=disable`;
}

function ident(name: string): string {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`${name} is not a plain PostgreSQL identifier`);
    return name;
}

const provider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: State) {
        const { randomBytes } = await import("node:crypto");
        const name = ident(inputs.name);
        const password = randomBytes(24).toString("hex");
        // The role first (or its password anew), then the database it owns.
        await psql(
            inputs.admin,
            `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${name}') THEN CREATE ROLE ${name} LOGIN; END IF; END $$;\n` +
                `ALTER ROLE ${name} LOGIN PASSWORD '${password}';\n` +
                `SELECT 'CREATE DATABASE ${name} OWNER ${name}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${name}')\\gexec\n` +
                `REVOKE CONNECT ON DATABASE ${name} FROM PUBLIC;\n`,
        );
        return { id: name, outs: { ...inputs, password, url: urlOf(name, password, inputs.appHost, inputs.admin.port) } };
    },
    async diff(_id: string, olds: State, news: State) {
        const replaces = (["name", "appHost"] as const).filter((k) => olds[k] !== news[k]);
        // A URL written before it said sslmode is written again (same role, same password).
        const stale = olds.url !== urlOf(olds.name, olds.password ?? "", olds.appHost, news.admin.port);
        const changes = replaces.length > 0 || stale || JSON.stringify(olds.admin) !== JSON.stringify(news.admin);
        return { changes, replaces, deleteBeforeReplace: true };
    },
    async update(_id: string, olds: State, news: State) {
        return { outs: { ...news, password: olds.password, url: urlOf(news.name, olds.password ?? "", news.appHost, news.admin.port) } };
    },
    async delete(_id: string, s: State) {
        const name = ident(s.name);
        await psql(s.admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE);\nDROP ROLE IF EXISTS ${name};\n`);
    },
};

export class LocalDatabase extends pulumi.dynamic.Resource {
    /** The co-op's DATABASE_URL (a secret). */
    declare public readonly url: pulumi.Output<string>;

    constructor(name: string, args: LocalDatabaseArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            { ...args, password: undefined, url: undefined },
            pulumi.mergeOptions(opts, { additionalSecretOutputs: ["admin", "password", "url"] }),
            "coop",
            "LocalDatabase",
        );
    }
}
