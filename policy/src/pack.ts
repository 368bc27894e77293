/**
 * The policies of the coop-policies pack: the rules of rules.ts wired into @pulumi/policy
 * (../index.ts starts the pack; tests import this module, which serves nothing).
 *
 * Every policy is mandatory unless the config says otherwise: config/dev.json turns them all to
 * advisory, config/uat.json and config/prod.json keep them mandatory. @pulumi/policy config is per
 * policy (there is no pack-wide key), so the environment the pack enforces for is the
 * `environment` of `droplet-backups-in-prod` (default "prod": without a config file the pack is
 * as strict as for prod).
 */
import { PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import * as rules from "./rules";
import { installSecretTracking, secretPathsOf } from "./secrets";
import { plainProps, Props } from "./values";

export const PACK_NAME = "coop-policies";

export const ENVIRONMENTS = ["local", "dev", "uat", "prod"] as const;

// Before the SDK deserializes any request (see secrets.ts for why and how).
const secretTracking = installSecretTracking();

/** A resource policy for one resource type (or every type when `type` is undefined). */
function resourcePolicy(
    name: string,
    description: string,
    type: string | undefined,
    check: (props: Props, args: ResourceValidationArgs) => string[],
    extra: Partial<ResourceValidationPolicy> = {},
): ResourceValidationPolicy {
    return {
        name,
        description,
        ...extra,
        validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
            if (type !== undefined && args.type !== type) {
                return;
            }
            for (const message of check(plainProps(args.props), args)) {
                reportViolation(message);
            }
        },
    };
}

function stackResource(r: PolicyResource): rules.StackResource {
    const propertyDependencies: Record<string, string[]> = {};
    for (const [k, deps] of Object.entries(r.propertyDependencies)) {
        propertyDependencies[k] = deps.map((d) => d.urn);
    }
    return {
        urn: r.urn,
        name: r.name,
        type: r.type,
        props: plainProps(r.props),
        dependencies: r.dependencies.map((d) => d.urn),
        propertyDependencies,
    };
}

const databaseBehindFirewall: StackValidationPolicy = {
    name: "database-behind-firewall",
    description: "Managed databases and caches have a DatabaseFirewall whose clusterId is the cluster.",
    validateStack: (args, reportViolation) => {
        const relevant = args.resources.filter((r) => r.type === rules.TYPES.databaseCluster || r.type === rules.TYPES.databaseFirewall);
        for (const v of rules.databaseBehindFirewall(relevant.map(stackResource))) {
            reportViolation(v.message, v.urn);
        }
    },
};

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
    resourcePolicy(
        "no-ssh-from-anywhere",
        "Firewalls do not open SSH (TCP 22, or a range including it) to every address: no source range of prefix length 0 (0.0.0.0/0, ::/0, 1.2.3.4/0), none wider than an IPv4 /8 or an IPv6 /16, and not all of IPv4, IPv6 or 2000::/3 by the sources together (0.0.0.0/1 and 128.0.0.0/1).",
        rules.TYPES.firewall,
        rules.sshFromAnywhere,
    ),
    resourcePolicy("database-in-vpc", "Managed databases and caches are inside a VPC (privateNetworkUuid set).", rules.TYPES.databaseCluster, rules.databaseInVpc),
    databaseBehindFirewall,
    resourcePolicy("droplet-monitoring", "Droplets have monitoring: true.", rules.TYPES.droplet, rules.dropletMonitoring),
    resourcePolicy(
        "droplet-backups-in-prod",
        "Droplets have backups: true when the pack enforces for prod (config: environment).",
        rules.TYPES.droplet,
        (props, args) => rules.dropletBackups(props, args.getConfig<{ environment?: string }>().environment ?? "prod"),
        {
            configSchema: {
                properties: { environment: { type: "string", enum: [...ENVIRONMENTS], default: "prod" } },
            },
        },
    ),
    resourcePolicy(
        "coop-image-pinned-by-digest",
        "Co-op releases name their image by digest (release.image: REPOSITORY@sha256:<64 hex digits>), never by tag.",
        rules.TYPES.coopRelease,
        rules.coopImagePinned,
    ),
    resourcePolicy("coop-health-check", "Co-op releases give the proxy an absolute health path (release.healthPath: /...).", rules.TYPES.coopRelease, rules.coopHealthCheck),
    resourcePolicy(
        "coop-release-retention",
        "Co-op releases keep at least one previous release for rollback (release.retain >= 1).",
        rules.TYPES.coopRelease,
        rules.coopReleaseRetention,
    ),
    resourcePolicy(
        "no-plaintext-secrets",
        "No plaintext secret-looking value (private key, URL password, DigitalOcean token, password/secret/token key) in resource inputs; Pulumi secrets are fine.",
        undefined,
        (props, args) => rules.plaintextSecrets(props, (secretTracking && secretPathsOf(args.props)) || []),
    ),
    resourcePolicy("load-balancer-https-redirect", "Load balancers redirect HTTP to HTTPS (redirectHttpToHttps: true).", rules.TYPES.loadBalancer, rules.loadBalancerHttpsRedirect),
];
