// A real app written by others, deployed, upgraded and rolled back under load: Ory Hydra (an
// OAuth2 and OpenID Connect server, Go, PostgreSQL, real SQL migrations), v2.2.0 and v2.3.0 as
// scripts/build-images.sh builds them from the Go module proxy. A stack of its own on the suite's
// host, its own file backend; the real CLI, the real agent, the real proxy, the local PostgreSQL.
//
// Hydra serves its public API (4444) behind the proxy. Its admin API (4445) is not routed by the
// proxy, but Hydra listens on every interface of the container, so it answers on the slot's
// address on the co-op network (to every container there too): the test reaches it over SSH on the
// suite's host, with curl, to register an OAuth2 client, read /version (admin only) and introspect
// tokens. A token is taken through the proxy with the client's credentials, as a relying party would.
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { buildLoadgen, images, initLocalStack, startLoad } from "../../bench/common";
import { exec } from "../../components/remote/ssh";
import { ROOT, loopbackRelay, pulumi, run, suiteGet, suiteHost, suiteHostUp, suiteTarget } from "../support";

const STACK = "it-hydra";
const COOP = "it-hydra";
const SITE = `${COOP}.localhost`;
/** The co-op's database, as the program names it (coop_STACK_COOP). */
const DATABASE = "coop_it_hydra_it_hydra";
const AGENT = "/opt/coop/bin/coop-agent";
/**
 * The keep-alive loads under every change, each its own loadgen: Hydra's readiness (which asks the
 * database) at a rate the machine sustains beside a deploy, and its OpenID discovery document (built
 * from its signing keys) at a lower one. Not the key set itself: alone against one v2.3.0 container
 * (built with Go 1.26.8, 2 cores, 2026-12-07) /.well-known/jwks.json answered 17 requests a second,
 * the discovery document some 150; /health/ready took 200 with a p99 of 7 ms.
 */
const LOADS = [
    { name: "ready", path: "/health/ready", rate: 200, connections: 16 },
    { name: "discovery", path: "/.well-known/openid-configuration", rate: 20, connections: 4 },
] as const;

const admin = () => ({ PGPASSWORD: readFileSync(path.join(ROOT, ".local", "postgres", "admin-password"), "utf8").trim() });
const sql = (q: string, db = DATABASE) => run("psql", ["--no-psqlrc", "-tA", "-h", "127.0.0.1", "-p", "5433", "-U", "postgres", "-d", db, "-c", q], { env: admin() });

/** The slot the proxy routes the co-op to (the agent's `state`), and that container's address on the co-op network. */
async function liveSlot(): Promise<{ container: string; address: string }> {
    const s = await exec(suiteTarget(), `${AGENT} state ${COOP}`);
    assert.equal(s.code, 0, s.stderr);
    const slot = (JSON.parse(s.stdout) as { live: { slot: string } | null }).live?.slot;
    assert.ok(slot, `the proxy routes ${COOP} somewhere: ${s.stdout}`);
    const container = `coop-${COOP}-${slot}`;
    const ip = await exec(suiteTarget(), `docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' ${container}`);
    assert.equal(ip.code, 0, ip.stderr);
    return { container, address: ip.stdout.trim() };
}

/** A request to Hydra's admin API of the live slot, from the suite's host; the body goes on stdin, never in a command line. */
async function adminApi(method: "GET" | "POST", pathname: string, body?: { type: string; data: string }): Promise<{ status: number; json: Record<string, unknown> }> {
    const { address } = await liveSlot();
    const data = body ? ` -H 'Content-Type: ${body.type}' --data-binary @-` : "";
    const r = await exec(suiteTarget(), `curl -sS --max-time 10 -o - -w '\\n%{http_code}' -X ${method}${data} 'http://${address}:4445${pathname}'`, { stdin: body?.data ?? "" });
    assert.equal(r.code, 0, r.stderr);
    const at = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(at + 1)), json: JSON.parse(r.stdout.slice(0, at) || "{}") };
}

/** The version the serving release reports (Hydra's admin /version of the slot the proxy routes to). */
async function servingVersion(): Promise<string> {
    const v = await adminApi("GET", "/version");
    assert.equal(v.status, 200, JSON.stringify(v.json));
    return String(v.json.version);
}

/** A client-credentials grant at the token endpoint, through the proxy (HTTP Basic with the client's id and secret). */
function token(client: { id: string; secret: string }): Promise<{ status: number; json: Record<string, unknown> }> {
    const [host, port] = suiteHost().proxy.split(":");
    const form = "grant_type=client_credentials&scope=coop.read";
    return new Promise((resolve, reject) => {
        const req = request(
            {
                host,
                port: Number(port),
                method: "POST",
                path: "/oauth2/token",
                agent: false,
                timeout: 10000,
                headers: {
                    host: SITE,
                    "content-type": "application/x-www-form-urlencoded",
                    "content-length": Buffer.byteLength(form),
                    authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString("base64")}`,
                },
            },
            (res) => {
                let b = "";
                res.on("data", (c) => (b += c));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, json: b ? JSON.parse(b) : {} }));
            },
        );
        req.on("error", reject);
        req.on("timeout", () => req.destroy(new Error("token request timed out")));
        req.end(form);
    });
}

/** What bench/loadgen's JSON summary says (the fields read here). */
interface LoadSummary {
    requests: number;
    ok_2xx: number;
    failed_requests: number;
    dropped_by_client: number;
    p99_ms: number;
    max_ms: number;
    status_codes: Record<string, number>;
    errors: string[];
}

/** Rows of Hydra's migration table: one per migration applied. */
function migrations(): number {
    const r = sql("SELECT count(*) FROM schema_migration");
    assert.equal(r.status, 0, r.stderr);
    return Number(r.stdout.trim());
}

describe("a third-party app (Ory Hydra v2.2.0 -> v2.3.0 -> rollback -> v2.3.0) under keep-alive load, 0 failed", () => {
    let backend = "";
    let env: NodeJS.ProcessEnv = {};
    let loadgen = "";
    const cf = ["--stack", STACK];
    const setImage = (key: string) => assert.equal(pulumi(["config", "set", ...cf, "--path", "coop:coops[0].image", images()[key]], { env }).status, 0);
    const client = { id: "", secret: "" };
    let firstToken = "";
    const count: Record<string, number> = {};
    /** The figures measured, `name=value`, printed as they come and as each step's diagnostic. */
    const figures: string[] = [];
    let reported = 0;
    const figure = (...f: string[]) => {
        figures.push(...f);
        for (const x of f) console.log(x);
    };
    const report = (t: { diagnostic: (m: string) => void }) => {
        for (const f of figures.slice(reported)) t.diagnostic(f);
        reported = figures.length;
    };
    /** Everything the CLI printed, searched for secrets at the end. */
    const printed: string[] = [];
    const keep = <R extends { stdout: string; stderr: string }>(r: R): R => {
        printed.push(r.stdout, r.stderr);
        return r;
    };

    /** Runs `step` under the load (through a loopback relay to the suite host's proxy) and returns loadgen's summary with the step's wall time. */
    async function underLoad<T>(name: string, step: () => T): Promise<{ result: T; loads: Record<string, LoadSummary>; ms: number }> {
        const relay = await loopbackRelay(suiteHost().proxy);
        const running = LOADS.map((l) => ({
            ...l,
            load: startLoad(loadgen, [
                ...["-url", `http://127.0.0.1:${relay.port}${l.path}`, "-host", SITE],
                ...["-rate", String(l.rate), "-connections", String(l.connections), "-duration", "30m"],
            ]),
        }));
        try {
            await new Promise((r) => setTimeout(r, 2000));
            const started = Date.now();
            const result = step();
            const ms = Date.now() - started;
            await new Promise((r) => setTimeout(r, 2000));
            const loads: Record<string, LoadSummary> = {};
            figure(`${name}_ms=${ms}`);
            for (const l of running) {
                const summary = (await l.load.stop()) as unknown as LoadSummary;
                loads[l.name] = summary;
                figure(
                    `${name}_${l.name}_requests=${summary.requests}`,
                    `${name}_${l.name}_failed=${summary.failed_requests}`,
                    `${name}_${l.name}_dropped_by_client=${summary.dropped_by_client}`,
                    `${name}_${l.name}_p99_ms=${summary.p99_ms}`,
                    `${name}_${l.name}_max_ms=${summary.max_ms}`,
                );
            }
            return { result, loads, ms };
        } finally {
            for (const l of running) if (l.load.proc.exitCode === null) l.load.proc.kill("SIGTERM");
            await relay.stop();
        }
    }

    /** Every request of every load got a 2xx, and the loads were sent (4 s of each at the least). */
    const noFailures = (loads: Record<string, LoadSummary>, what: string) => {
        for (const l of LOADS) {
            const s = loads[l.name];
            assert.ok(s.requests >= 4 * l.rate, `${what}, ${l.path}: the load was sent (${s.requests} requests)`);
            assert.equal(s.failed_requests, 0, `${what}, ${l.path}: ${JSON.stringify({ status_codes: s.status_codes, errors: s.errors.slice(0, 5) })}`);
            assert.equal(s.ok_2xx, s.requests, `${what}, ${l.path}`);
        }
    };

    /** The client registered before the upgrade is still there, a new token can be had through the proxy, and the first token is still active. */
    async function clientSurvives(what: string): Promise<void> {
        const got = await adminApi("GET", `/admin/clients/${encodeURIComponent(client.id)}`);
        assert.equal(got.status, 200, `${what}: the client is still registered: ${JSON.stringify(got.json)}`);
        assert.equal(got.json.client_id, client.id);
        const t = await token(client);
        assert.equal(t.status, 200, `${what}: a token through the proxy: ${JSON.stringify(t.json)}`);
        const seen = await adminApi("POST", "/admin/oauth2/introspect", { type: "application/x-www-form-urlencoded", data: `token=${encodeURIComponent(firstToken)}` });
        assert.equal(seen.status, 200);
        assert.deepEqual([seen.json.active, seen.json.client_id], [true, client.id], `${what}: the token issued before the upgrade is still active`);
    }

    before(() => {
        suiteHostUp();
        for (const key of ["hydra", "hydra:v2"]) assert.ok(images()[key], `.local/images.json has ${key} (scripts/build-images.sh)`);
        loadgen = buildLoadgen();
        backend = mkdtempSync(path.join(tmpdir(), "coop-hydra-"));
        env = { PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: "hydra-test-only" };
        // A database left by an interrupted run would hold its migrations already.
        sql(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`, "postgres");
        initLocalStack(
            STACK,
            [
                {
                    id: COOP,
                    domains: [SITE],
                    image: images()["hydra"],
                    port: 4444,
                    healthPath: "/health/ready",
                    uptimePath: "/.well-known/openid-configuration",
                    healthTimeout: 60,
                    // Hydra reads its database from DSN: the co-op names the variable its database URL reaches it as.
                    databaseEnvName: "DSN",
                    // Hydra's entrypoint stays; `migrate sql -e` reads the database from the environment.
                    migrate: ["migrate", "sql", "-e", "--yes"],
                    env: {
                        // Outside --dev Hydra wants an https issuer: the proxy (or the balancer) terminates TLS in front of it.
                        URLS_SELF_ISSUER: `https://${SITE}/`,
                        LOG_LEVEL: "warn",
                    },
                    // At least 16 characters, random once and then stable (it encrypts what Hydra stores).
                    generatedSecrets: ["SECRETS_SYSTEM"],
                },
            ],
            env,
            suiteHost(),
        );
    });

    after(async () => {
        pulumi(["destroy", ...cf, "--yes", "--skip-preview"], { env });
        pulumi(["stack", "rm", ...cf, "--yes", "--force"], { env });
        rmSync(path.join(ROOT, `Pulumi.${STACK}.yaml`), { force: true });
        rmSync(backend, { recursive: true, force: true });
        await exec(suiteTarget(), `docker rm -f coop-${COOP}-blue coop-${COOP}-green >/dev/null 2>&1; docker volume rm coop-${COOP}-data >/dev/null 2>&1; true`);
        sql(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`, "postgres");
    });

    it("v2.2.0: its migrations run against the local PostgreSQL, it serves behind the proxy, and an OAuth2 client gets a token", async (t) => {
        const started = Date.now();
        const r = keep(pulumi(["up", ...cf, "--yes", "--skip-preview"], { env }));
        figure(`up_v2_2_0_first_ms=${Date.now() - started}`);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.equal(await servingVersion(), "v2.2.0");
        count.v220 = migrations();
        figure(`migrations_v2_2_0=${count.v220}`);
        assert.ok(count.v220 > 0, "v2.2.0's migrations are recorded");
        assert.equal((await suiteGet("/health/ready", SITE)).status, 200);
        assert.equal((await suiteGet("/.well-known/openid-configuration", SITE)).status, 200, "the uptime path answers 2xx to anyone");
        const discovery = JSON.parse((await suiteGet("/.well-known/openid-configuration", SITE)).body);
        assert.equal(discovery.issuer, `https://${SITE}/`);

        // A real client, registered through the admin API; Hydra makes its secret.
        const made = await adminApi("POST", "/admin/clients", {
            type: "application/json",
            data: JSON.stringify({ client_name: "coop e2e", grant_types: ["client_credentials"], scope: "coop.read", token_endpoint_auth_method: "client_secret_basic" }),
        });
        assert.equal(made.status, 201, JSON.stringify({ ...made.json, client_secret: undefined }));
        client.id = String(made.json.client_id);
        client.secret = String(made.json.client_secret);
        assert.ok(client.id && client.secret.length >= 16);
        const issued = await token(client);
        assert.equal(issued.status, 200, JSON.stringify(issued.json));
        assert.equal(issued.json.token_type, "bearer");
        firstToken = String(issued.json.access_token);
        await clientSurvives("v2.2.0");
        report(t);
    });

    /** `pulumi up` of v2.3.0 under the loads (figures as `name`): it succeeds, no request fails, v2.3.0 serves. */
    async function upToV230(name: string, message: string): Promise<void> {
        setImage("hydra:v2");
        const { result: r, loads } = await underLoad(name, () => keep(pulumi(["up", ...cf, "--yes", "--skip-preview", "--message", `hydra ${message}`], { env })));
        assert.equal(r.status, 0, r.stdout + r.stderr);
        noFailures(loads, `up to ${message}`);
        assert.equal(await servingVersion(), "v2.3.0");
    }

    it("up to v2.3.0 under load: its new migrations run, 0 failed requests, v2.3.0 serves and the client survives", async (t) => {
        await upToV230("up_v2_3_0", "v2.3.0");
        count.v230 = migrations();
        figure(`migrations_v2_3_0=${count.v230}`);
        assert.ok(count.v230 > count.v220, `v2.3.0 ran new migrations (${count.v220} -> ${count.v230})`);
        await clientSurvives("v2.3.0");
        report(t);
    });

    it("rollback (fast path, inside the window) to v2.2.0 under load: 0 failed, v2.2.0 serves on v2.3.0's schema, the client survives", async (t) => {
        const { result: r, loads, ms } = await underLoad("rollback", () => keep(run(path.join(ROOT, "scripts", "node-env.sh"), ["rollback", "--stack", STACK], { env })));
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const fast = new RegExp(`fast path: ${COOP} on ${suiteHost().name} switched to the retained release in (\\d+) ms`).exec(r.stdout);
        assert.ok(fast, `the switch to the idle slot, before the up:\n${r.stdout}`);
        figure(`rollback_switch_ms=${fast[1]}`, `rollback_command_ms=${ms}`);
        assert.match(r.stdout, new RegExp(`warning: ${COOP}: migrations ran with update \\d+`), "it says the migrations are not rolled back");
        noFailures(loads, "rollback");
        assert.equal(await servingVersion(), "v2.2.0");
        assert.equal(migrations(), count.v230, "migrations are never rolled back");
        await clientSurvives("rolled back to v2.2.0");
        report(t);
    });

    it("up to v2.3.0 again under load: 0 failed, v2.3.0 serves, no migration is new, the client survives", async (t) => {
        await upToV230("up_v2_3_0_again", "v2.3.0 again");
        assert.equal(migrations(), count.v230);
        await clientSurvives("v2.3.0 again");
        report(t);
    });

    it("neither the database password nor the system secret appears in Hydra's logs or the CLI's output", async () => {
        // The env file the agent wrote (0600, the deploy user's), read over SSH: the secrets to look for.
        const file = await exec(suiteTarget(), `cat /opt/coop/coops/${COOP}/env`);
        assert.equal(file.code, 0, file.stderr);
        const vars = Object.fromEntries(
            file.stdout
                .split("\n")
                .filter((l) => l.includes("="))
                .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
        );
        assert.equal(vars.DATABASE_URL, undefined, "the database URL reaches Hydra as DSN only");
        const password = new URL(vars.DSN).password;
        assert.ok(password.length >= 16 && vars.SECRETS_SYSTEM.length >= 16);
        const logs = await exec(suiteTarget(), `for c in coop-${COOP}-blue coop-${COOP}-green; do docker logs $c 2>&1; done; cat /opt/coop/coops/${COOP}/releases.log`);
        const history = pulumi(["stack", "history", ...cf, "--json"], { env }).stdout;
        for (const [place, text] of Object.entries({ "Hydra's logs and the release log": logs.stdout, "stack history": history, "the CLI's output": printed.join("\n") })) {
            assert.ok(!text.includes(password), `the database password is in ${place}`);
            assert.ok(!text.includes(vars.SECRETS_SYSTEM), `the system secret is in ${place}`);
        }
    });
});
