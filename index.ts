// Wiring only: read and validate the stack config, then build the components.
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { ConfigError, DEFAULT_ENV_NAMES, parseStackConfig, readConfig } from "./components/config";
import { readLocalData } from "./components/config/localData";
import { readLocalMachine, withLocalMachine } from "./components/config/localMachine";
import { Coop } from "./components/coop";
import { infrastructure } from "./components/digitalocean";
import { behindLoadBalancer } from "./components/digitalocean/dns";
import { HostBootstrap } from "./components/host";
import { dockerConfig } from "./components/hostCommands";
import { LocalBalancer } from "./components/local/balancer";
import { plainStackTraces, staleBuild } from "./components/programSource";
import type { BackupSection } from "./components/release";
import { checkImages, imagesOf } from "./components/registryCheck";
import { LocalDatabase } from "./components/remote/localDatabase";

plainStackTraces();
/** The repository: the program runs from build/index.js. */
const ROOT = path.resolve(__dirname, "..");
const stale = staleBuild(ROOT);
if (stale) {
    throw new pulumi.RunError(stale);
}

// Which config keys hold secrets; the runtime knows, its typings do not say so.
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };
const all = pulumi.runtime.allConfig();
const read = readConfig(all, Object.keys(all).filter(isConfigSecret));
// The local stack's hosts, deploy key and images are this machine's (.local/), not the stack file's.
const local = withLocalMachine(read.raw, read.secretKeys, read.ctx, read.raw.environment === "local" ? readLocalMachine(ROOT, pulumi.getStack()) : undefined);
const cfg = (() => {
    try {
        return parseStackConfig(local.raw, local.secretKeys, { ...local.ctx, stack: pulumi.getStack() });
    } catch (e) {
        // RunError: Pulumi prints the message (every error by path) without a stack trace.
        throw e instanceof ConfigError ? new pulumi.RunError(e.message) : e;
    }
})();

const coopConfig = new pulumi.Config("coop");

// The local stack's co-ops get a database in the cluster scripts/local-data.sh runs, as the cloud
// co-ops get one in the managed cluster (DATABASE_URL), unless their own config sets one. Read
// before anything is registered: backups without it are refused here, not after the hosts'.
const localData = cfg.environment === "local" ? readLocalData(ROOT) : undefined;
if (cfg.backups && cfg.environment === "local" && !localData) {
    throw new pulumi.RunError("coop:backups: the local stack's PostgreSQL and S3 server are not set up on this machine (run scripts/local-data.sh up)");
}

/**
 * The program: the images the hosts will pull are checked first (nothing is registered before
 * that), then the components are built; what it returns are the stack's outputs.
 */
export = async () => {
    const check = await checkImages(
        imagesOf(cfg),
        cfg.registries.map((l, i) => ({ ...l, path: `coop:registries[${i}]`, password: all[`coop:${l.passwordKey}`] ?? "" })),
    );
    if (check.errors.length > 0) {
        throw new pulumi.RunError(`an image the hosts would pull is not there for them:\n  ${check.errors.join("\n  ")}`);
    }
    for (const u of check.unchecked) {
        void pulumi.log.warn(`${u}; the hosts' pulls will say whether they are there`);
    }

    const privateKey = local.deployKey !== undefined ? pulumi.secret(local.deployKey) : coopConfig.requireSecret("sshPrivateKey");

    // Cloud stacks get their hosts (and each co-op's database and cache URLs) from DigitalOcean;
    // the local stack lists its hosts in config.
    const infra =
        cfg.digitalocean && cfg.environment !== "local"
            ? infrastructure({
                  environment: cfg.environment,
                  spec: cfg.digitalocean,
                  coops: cfg.coops,
                  deployUser: cfg.sshUser,
                  hostRoot: cfg.hostRoot,
                  slackWebhookUrl: cfg.digitalocean.alerts.slack ? coopConfig.requireSecret(cfg.digitalocean.alerts.slack.webhookKey) : undefined,
                  backups: cfg.backups !== undefined,
              })
            : undefined;
    const endpoints = infra?.hosts ?? cfg.hosts;

    // The registry logins every host pulls with (a secret: it holds the tokens).
    const registryLogins =
        cfg.registries.length === 0
            ? undefined
            : pulumi.secret(
                  pulumi
                      .all(cfg.registries.map((l) => coopConfig.requireSecret(l.passwordKey).apply((password) => ({ server: l.server, username: l.username, password }))))
                      .apply(dockerConfig),
              );

    const bootstrapped = endpoints.map(
        (h) =>
            new HostBootstrap(h.name, {
                connection: { host: h.address, port: h.port, user: cfg.sshUser, privateKey, hostKey: h.hostKey },
                root: cfg.hostRoot,
                network: cfg.network,
                proxy: cfg.proxy,
                agentImage: cfg.agent,
                waitForBoot: infra !== undefined,
                registryLogins,
            }),
    );

    const localDatabaseUrls: Record<string, pulumi.Output<string>> = {};
    if (localData) {
        const pg = localData.postgres;
        const admin = pulumi.secret({ host: pg.adminHost, port: pg.port, user: pg.adminUser, password: pg.adminPassword });
        for (const c of cfg.coops) {
            const envName = c.databaseEnvName ?? DEFAULT_ENV_NAMES.database;
            if (envName in c.env || envName in c.secretEnv) continue;
            const name = `coop_${pulumi.getStack()}_${c.id}`
                .toLowerCase()
                .replace(/[^a-z0-9_]/g, "_")
                .slice(0, 63);
            localDatabaseUrls[c.id] = new LocalDatabase(`${c.id}/database`, { name, admin, appHost: pg.host }).url;
        }
    }

    /** A co-op's backup section (its database URL and the store's keys: a secret), when backups are on. */
    function backupOf(id: string): pulumi.Output<BackupSection> | undefined {
        const b = cfg.backups;
        if (!b) return undefined;
        if (infra?.backupBucket) {
            const bucket = infra.backupBucket;
            return pulumi.secret(
                pulumi
                    .all([bucket.name, infra.directDatabaseUrls[id], coopConfig.requireSecret("spacesAccessKeyId"), coopConfig.requireSecret("spacesSecretAccessKey")])
                    .apply(([name, database, accessKeyId, secretAccessKey]) => ({
                        image: b.image,
                        keep: b.keep,
                        database,
                        store: { endpoint: bucket.endpoint, region: bucket.region, bucket: name, prefix: cfg.environment, accessKeyId, secretAccessKey },
                    })),
            );
        }
        const url = localDatabaseUrls[id];
        if (localData && url) {
            const s = localData.store;
            return pulumi.secret(url.apply((database) => ({ image: b.image, keep: b.keep, database, store: { ...s, prefix: pulumi.getStack() } })));
        }
        return undefined;
    }

    const coops = cfg.coops.map(
        (c) =>
            new Coop(c.id, {
                coop: c,
                hosts: bootstrapped,
                secrets: {
                    ...Object.fromEntries(Object.entries(c.secretEnv).map(([name, key]) => [name, coopConfig.requireSecret(key)])),
                    ...infra?.coopSecrets[c.id],
                    ...(localDatabaseUrls[c.id] ? { [c.databaseEnvName ?? DEFAULT_ENV_NAMES.database]: localDatabaseUrls[c.id] } : {}),
                },
                root: cfg.hostRoot,
                tls: cfg.proxy.tls,
                backup: backupOf(c.id),
            }),
    );

    // A local stack whose hosts have a load balancer in front (.local/machine.STACK.json names it):
    // like the cloud edge, it sends traffic to a host only once every co-op is released there, and
    // stops sending it to a host the stack drops before that host's co-ops are deleted.
    const localBalancer = local.balancer
        ? new LocalBalancer(
              "local-lb",
              { adminSocket: local.balancer.adminSocket, backend: local.balancer.backend, serversFile: local.balancer.serversFile, servers: endpoints.map((h) => h.name) },
              { dependsOn: coops.flatMap((c) => Object.values(c.releases)) },
          )
        : undefined;

    const loadBalanced = behindLoadBalancer(cfg.digitalocean);
    const scheme = cfg.proxy.tls || loadBalanced ? "https" : "http";
    const port = loadBalanced ? 443 : cfg.proxy.tls ? cfg.proxy.httpsPort : cfg.proxy.httpPort;
    const portSuffix = port === (scheme === "https" ? 443 : 80) ? "" : `:${port}`;

    const environment = cfg.environment;
    /** Where the co-op domains point; the edge comes last, once every host serves every co-op. */
    const publicIp = infra?.edge(Object.fromEntries(bootstrapped.map((h) => [h.hostName, coops.map((c) => c.releases[h.hostName])]))) ?? null;
    /** The local load balancer, when the stack has one (the hosts it sends traffic to: its `servers`). */
    const balancer = localBalancer ? { url: `http://${local.balancer!.address}/`, servers: localBalancer.servers } : null;
    const proxyUrls = endpoints.map((h) => pulumi.interpolate`http://${cfg.proxy.bindAddress === "0.0.0.0" ? h.address : cfg.proxy.bindAddress}:${cfg.proxy.httpPort}/`);
    /** Where rollback, status, logs and `releases --host` reach a cloud stack's hosts (only here). */
    const hosts = endpoints.map((h) => ({ name: h.name, address: h.address, port: h.port, hostKey: h.hostKey }));
    /** Each host's agent as this update installed it (the commands in scripts/ run the host's current one, ROOT/bin/coop-agent). */
    const agents = Object.fromEntries(endpoints.map((h, i) => [h.name, bootstrapped[i].agent]));
    const coopUrls = Object.fromEntries(cfg.coops.map((c) => [c.id, c.domains.map((d) => `${scheme}://${d}${portSuffix}/`)]));
    const releases = Object.fromEntries(
        coops.map((c, i) => [
            cfg.coops[i].id,
            Object.fromEntries(
                Object.entries(c.reports).map(([h, r]) => [h, r.apply((x) => ({ slot: x.slot, image: x.image, ...(x.changed && x.backup ? { backup: x.backup } : {}) }))]),
            ),
        ]),
    );
    /** Each co-op's backup section (its database and the store's keys; a secret): `rollback --restore-db` reads it. */
    const backupSections = pulumi.secret(pulumi.all(Object.fromEntries(cfg.coops.flatMap((c) => (backupOf(c.id) ? [[c.id, backupOf(c.id)!]] : [])))));

    return { environment, publicIp, balancer, proxyUrls, hosts, agents, coopUrls, releases, backupSections };
};
