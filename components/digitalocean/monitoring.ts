import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import type { AlertsSpec } from "../config";

/** A co-op domain to watch: the co-op's uptime path over HTTPS (never its health path, which the proxy answers itself while the co-op is held). */
export interface WatchedDomain {
    domain: string;
    uptimePath: string;
}

export interface MonitoringArgs {
    /** Stack name; names of the checks and alerts derive from it. */
    stack: string;
    /** Every co-op domain, with the co-op's uptime path. */
    domains: WatchedDomain[];
    /** Tag of the app droplets: the droplet alerts cover every droplet that carries it. */
    hostTag: pulumi.Input<string>;
    /** The managed clusters (Postgres, Valkey) the database alerts watch. */
    clusterIds: pulumi.Input<string>[];
    /** Thresholds, regions and recipients. */
    alerts: AlertsSpec;
    /** The Slack webhook URL (a secret), when alerts.slack is set. */
    slackUrl?: pulumi.Output<string>;
}

/** The uptime checks of a stack's co-op domains: what each checks. Pure. */
export function uptimeTargets(domains: WatchedDomain[]): Array<{ domain: string; target: string }> {
    const seen = new Set<string>();
    return domains.filter((d) => !seen.has(d.domain) && seen.add(d.domain)).map((d) => ({ domain: d.domain, target: `https://${d.domain}${d.uptimePath}` }));
}

/** The metric alerts of a stack: droplets' CPU, memory and disk; the clusters' CPU, memory and disk. Pure. */
export function metricAlerts(a: AlertsSpec): Array<{ key: string; type: string; value: number; description: string; on: "droplets" | "clusters" }> {
    return [
        { key: "droplet-cpu", type: "v1/insights/droplet/cpu", value: a.cpuPercent, description: `CPU above ${a.cpuPercent}%`, on: "droplets" },
        { key: "droplet-memory", type: "v1/insights/droplet/memory_utilization_percent", value: a.memoryPercent, description: `memory above ${a.memoryPercent}%`, on: "droplets" },
        { key: "droplet-disk", type: "v1/insights/droplet/disk_utilization_percent", value: a.diskPercent, description: `disk above ${a.diskPercent}%`, on: "droplets" },
        { key: "database-cpu", type: "v1/dbaas/alerts/cpu_alerts", value: a.cpuPercent, description: `database CPU above ${a.cpuPercent}%`, on: "clusters" },
        {
            key: "database-memory",
            type: "v1/dbaas/alerts/memory_utilization_alerts",
            value: a.memoryPercent,
            description: `database memory above ${a.memoryPercent}%`,
            on: "clusters",
        },
        { key: "database-disk", type: "v1/dbaas/alerts/disk_utilization_alerts", value: a.diskPercent, description: `database disk above ${a.diskPercent}%`, on: "clusters" },
    ];
}

/**
 * What the operators hear about: an uptime check of every co-op domain (its health path, from the
 * configured regions) with an alert when it is down everywhere, and alerts on the droplets' and the
 * clusters' CPU, memory and disk, sent to the stack's emails and Slack channel. The metric alerts
 * select droplets by tag, so a droplet added later is covered; their count does not grow with
 * the droplets or the co-ops.
 */
export class Monitoring extends pulumi.ComponentResource {
    constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:do:Monitoring", name, {}, opts);
        const a = args.alerts;
        const slacks = a.slack && args.slackUrl ? [{ channel: a.slack.channel, url: args.slackUrl }] : [];
        const recipients = { emails: a.emails, slacks };
        // With nobody to tell (dev may name no one), the checks still run and show in the console.
        const alerting = a.emails.length > 0 || slacks.length > 0;

        for (const { domain, target } of uptimeTargets(args.domains)) {
            const check = new digitalocean.UptimeCheck(
                `${name}/${domain}`,
                { name: `coop-${args.stack} ${domain}`, target, type: "https", regions: a.uptimeRegions, enabled: true },
                { parent: this },
            );
            if (!alerting) continue;
            new digitalocean.UptimeAlert(
                `${name}/${domain}/down`,
                { name: `coop-${args.stack} ${domain} is down`, checkId: check.id, type: "down_global", period: "2m", notifications: [recipients] },
                // The provider updates an alert's check in place with the old alert's id: replace it instead.
                { parent: this, replaceOnChanges: ["checkId"] },
            );
        }
        for (const m of alerting ? metricAlerts(a) : []) {
            new digitalocean.MonitorAlert(
                `${name}/${m.key}`,
                {
                    type: m.type,
                    compare: "GreaterThan",
                    value: m.value,
                    window: "5m",
                    description: `coop-${args.stack}: ${m.description}`,
                    ...(m.on === "droplets" ? { tags: [args.hostTag] } : { entities: args.clusterIds }),
                    alerts: recipients,
                    enabled: true,
                },
                { parent: this },
            );
        }
        this.registerOutputs({});
    }
}
